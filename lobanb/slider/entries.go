package slider

import (
	"fmt"
	"strings"
)

// Entry is one normalized training unit (docs/ALGORITHMS.md §1): the four prompts of the LECO target
// y = e_neu ± g·(e_pos − e_unc), trained on ε_m(x, t*, E[target]) at multiplier m.
type Entry struct {
	// Source names the preset entry it came from ("prompts[0]", "targets[1]").
	Source string
	// Group numbers the entries that belong together: the two or four directions of one slider target
	// at one neutral and resolution share a group (mode loba trains a group in one batch, with
	// per-sample multipliers); every other entry is a group of its own. Groups are numbered from 0 in
	// the order of Entries.
	Group int

	Target, Positive, Unconditional, Neutral string
	// Action is erase (y = e_neu − g·(e_pos − e_unc)), enhance (y = e_neu + g·(e_pos − e_unc)), keep
	// (enhance's form with neutral = target and g = 0) or style.
	Action string
	// Style marks an ST-LOBA style entry (action style): Target and Neutral are the content prompt,
	// Positive the style prompt, Unconditional the style-free reference, and the target is
	// y = normlike_channel(e_neu + g·(e_pos − e_unc), e_pos) (channel-wise mean/std over H, W).
	Style bool
	// Guidance is g (≥ 0); Multiplier the signed adapter multiplier m; Weight the loss weight.
	Guidance, Multiplier, Weight float64
	// Resolution [h, w] in pixels; BatchSize latents per step.
	Resolution        Resolution
	BatchSize         int
	DynamicResolution bool
	DynamicCrops      bool
	// Mask is the entry's region W (nil: W = 1 everywhere, or the concept mask); shared by every entry
	// of one preset entry, read-only. Preserve is λ_keep, the weight of the preservation term on 1 − W.
	Mask     *Mask
	Preserve float64
}

// SignedGuidance is −g for erase and +g for enhance, keep and style, so that
// y = e_neu + SignedGuidance·(e_pos − e_unc) (style: before normlike_channel).
func (e Entry) SignedGuidance() float64 {
	if e.Action == ActionErase {
		return -e.Guidance
	}
	return e.Guidance
}

// Entries normalizes p and expands it into training units, in order: the LECO prompt entries as they
// are (a style entry rearranged as Entry.Style says), then each slider target, every unit of a
// target carrying its mask and λ_keep. For objective slider (bidirectional, sd-scripts
// _expand_slider_target), per neutral and per resolution, with C = target_class, P = positive,
// N = negative and m = multiplier, the (positive, unconditional, action, multiplier) tuples are
//
//	P and N: (N, P, erase, +m) (P, N, enhance, +m) (P, N, erase, −m) (N, P, enhance, −m)
//	only P:  (P, "", enhance, +m) (P, "", erase, −m)
//	only N:  (N, "", erase, +m) (N, "", enhance, −m)
//
// all with target C, i.e. y = e_neu ± η·(e_P − e_N) at ±m. For objective slider_text (Concept Sliders),
// one entry per neutral and resolution: target C, positive P, unconditional N, enhance, +m.
func (p *Preset) Entries() ([]Entry, error) {
	if err := p.Normalize(); err != nil {
		return nil, err
	}
	var out []Entry
	group := 0
	for i, e := range p.Prompts {
		out = append(out, e.entry(fmt.Sprintf("prompts[%d]", i), group))
		group++
	}
	for i, t := range p.Targets {
		type tuple struct {
			pos, unc, action string
			mult             float64
		}
		m := *t.Multiplier
		P, N := t.Positive, t.Negative
		hasP, hasN := strings.TrimSpace(P) != "", strings.TrimSpace(N) != ""
		var tuples []tuple
		switch {
		case p.Objective == ObjectiveSliderText:
			if !hasP {
				P = ""
			}
			if !hasN {
				N = ""
			}
			tuples = []tuple{{P, N, ActionEnhance, m}}
		case hasP && hasN:
			tuples = []tuple{{N, P, ActionErase, m}, {P, N, ActionEnhance, m}, {P, N, ActionErase, -m}, {N, P, ActionEnhance, -m}}
		case hasN:
			tuples = []tuple{{N, "", ActionErase, m}, {N, "", ActionEnhance, -m}}
		default:
			tuples = []tuple{{P, "", ActionEnhance, m}, {P, "", ActionErase, -m}}
		}
		for _, neutral := range t.Neutrals {
			for _, res := range t.Resolutions {
				for _, tu := range tuples {
					out = append(out, Entry{
						Source: fmt.Sprintf("targets[%d]", i), Group: group,
						Target: t.TargetClass, Positive: tu.pos, Unconditional: tu.unc, Neutral: neutral,
						Action: tu.action, Guidance: *t.GuidanceScale, Multiplier: tu.mult, Weight: *t.Weight,
						Resolution: res, BatchSize: t.BatchSize,
						DynamicResolution: t.DynamicResolution, DynamicCrops: t.DynamicCrops,
						Mask: t.Mask, Preserve: *t.Preserve,
					})
					if p.Objective == ObjectiveSliderText {
						group++
					}
				}
				if p.Objective != ObjectiveSliderText {
					group++
				}
			}
		}
	}
	return out, nil
}

// Groups returns the entries as the trainer draws them, one group per step: in mode leco every entry
// is its own group (LECO and sd-scripts pick one prompt setting at random per step); in mode loba the
// entries sharing Entry.Group form one group (both slider directions in one batch, docs/ALGORITHMS.md §2).
func (p *Preset) Groups() ([][]Entry, error) {
	es, err := p.Entries()
	if err != nil {
		return nil, err
	}
	var out [][]Entry
	for i, e := range es {
		if p.Mode == ModeLECO || i == 0 || e.Group != es[i-1].Group {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], e)
	}
	return out, nil
}

// UniquePrompts lists, in order of first use and without repeats, every prompt whose text conditioning
// the run needs (the trainer encodes them once, before the loop): the four prompts of every entry,
// then each anchor's prompt and negative prompt, then the sample prompts and the sample negative prompt when samples are rendered during training
// (sample.every > 0) or sample prompts are given. A preset that does not normalize yields nil.
func (p *Preset) UniquePrompts() []string {
	entries, err := p.Entries()
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, e := range entries {
		add(e.Target)
		add(e.Positive)
		add(e.Unconditional)
		add(e.Neutral)
	}
	for _, a := range p.Anchors {
		add(a.Prompt)
		add(a.NegPrompt)
	}
	if p.Sample.Every > 0 || len(p.Sample.Prompts) > 0 {
		for _, s := range p.Sample.Prompts {
			add(s)
		}
		add(p.Sample.NegativePrompt)
	}
	return out
}

// entry expands a normalized prompt entry. A style entry maps its content prompt (target) to Target
// and Neutral, its style prompt to Positive and its style-free reference (neutral) to Unconditional,
// so that e_neu + g·(e_pos − e_unc) = e_content + η·(e_style − e_neutral).
func (e Prompt) entry(source string, group int) Entry {
	out := Entry{
		Source: source, Group: group,
		Target: e.Target, Positive: *e.Positive, Unconditional: e.Unconditional, Neutral: *e.Neutral,
		Action: e.Action, Guidance: *e.GuidanceScale, Multiplier: *e.Multiplier, Weight: *e.Weight,
		Resolution: e.Resolution, BatchSize: e.BatchSize,
		DynamicResolution: e.DynamicResolution, DynamicCrops: e.DynamicCrops,
		Mask: e.Mask, Preserve: *e.Preserve,
	}
	if e.Action == ActionStyle {
		out.Style = true
		out.Unconditional, out.Neutral = *e.Neutral, e.Target
	}
	return out
}
