package slider

// Mapping of an ai-toolkit sample section (SampleConfig, SampleItem, and GenerateImageConfig's prompt
// flags) onto LOBA's previews. Nothing here changes the trained LoRA.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// mapSample maps sample onto p.Sample; p.Train.Resolution must be set. disabled is
// train.disable_sampling.
func (imp *aitkImport) mapSample(s *aitkSample, disabled bool, p *Preset) error {
	path := imp.pp + ".sample"
	sp := &p.Sample
	sp.Every = deref(s.SampleEvery, 100)
	if sp.Every <= 0 {
		return imp.errAt(path+".sample_every", "invalid value %d; want >= 1 (ai-toolkit divides by it); set train.disable_sampling to render no previews", sp.Every)
	}
	if disabled {
		sp.Every = 0 // LOBA still renders the final grid
	}
	sp.Seed = deref(s.Seed, 0)
	if s.WalkSeed {
		imp.warnAt(path+".walk_seed", "ignored: LOBA renders every preview with sample.seed; previews only")
	}
	sp.GuidanceScale = deref(s.GuidanceScale, 7)
	sp.Steps = deref(s.SampleSteps, 20)
	sp.NegativePrompt = deref(s.Neg, "")
	if sp.NegativePrompt == "false" {
		sp.NegativePrompt = "" // SampleConfig's default is False, which some configs spell out
	}
	if w, h := deref(s.Width, 512), deref(s.Height, 512); (Resolution{h, w}) != p.Train.Resolution {
		imp.warnAt(path, "width %d, height %d ignored: LOBA renders its previews at the first slider resolution, %v", w, h, p.Train.Resolution)
	}
	items := s.Samples
	itemsPath := path + ".samples"
	if items == nil {
		itemsPath = path + ".prompts"
		for _, pr := range s.Prompts {
			items = append(items, aitkSampleItem{Prompt: pr})
		}
	}
	if len(items) == 0 {
		sp.Every = 0 // ai-toolkit renders nothing; LOBA's final grid shows each target's class prompt
		return nil
	}
	return imp.samplePrompts(items, itemsPath, deref(s.NetworkMultiplier, 1.0), sp)
}

// samplePrompts reads the preview prompts and their multipliers (--m / --network_multiplier flags,
// else the item's or the section's network_multiplier): LOBA renders every prompt at every
// multiplier, a grid.
func (imp *aitkImport) samplePrompts(items []aitkSampleItem, path string, defMult float64, sp *Sample) error {
	var prompts []string
	var strengths []float64
	var ignored []string
	for i, it := range items {
		text, flags := aitkPromptFlags(it.Prompt)
		m := deref(it.NetworkMultiplier, defMult)
		if it.Neg != nil && !slices.Contains(ignored, "neg") {
			ignored = append(ignored, "neg")
		}
		for _, f := range flags {
			switch f[0] {
			case "m", "network_multiplier":
				v, err := strconv.ParseFloat(f[1], 64)
				if err != nil {
					return imp.errAt(fmt.Sprintf("%s[%d]", path, i), "--%s %q is not a number (ai-toolkit stops on it when it samples)", f[0], f[1])
				}
				m = v
			default:
				if !slices.Contains(ignored, "--"+f[0]) {
					ignored = append(ignored, "--"+f[0])
				}
			}
		}
		if !slices.Contains(prompts, text) {
			prompts = append(prompts, text)
		}
		if !slices.Contains(strengths, m) {
			strengths = append(strengths, m)
		}
	}
	slices.Sort(strengths)
	sp.Prompts, sp.Strengths = prompts, strengths
	imp.warnAt(path, "LOBA renders each of the %d prompts at every multiplier (%v), a grid, where ai-toolkit renders each prompt at its own --m; previews only", len(prompts), strengths)
	if len(ignored) > 0 {
		imp.warnAt(path, "prompt flags and keys %s ignored: LOBA's previews share one negative prompt (sample.neg), size, seed, guidance and steps; previews only", strings.Join(ignored, ", "))
	}
	return nil
}

// aitkPromptFlags splits a sample prompt as GenerateImageConfig does: the text before the first "--"
// (trimmed), then each flag's name (up to the first space) and its content (trimmed).
func aitkPromptFlags(prompt string) (string, [][2]string) {
	parts := strings.Split(strings.TrimSpace(prompt), "--")
	var flags [][2]string
	for _, f := range parts[1:] {
		name, _, _ := strings.Cut(f, " ")
		name = strings.TrimSpace(name)
		flags = append(flags, [2]string{name, strings.TrimSpace(f[len(name):])})
	}
	return strings.TrimSpace(parts[0]), flags
}
