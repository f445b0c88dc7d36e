package train

import (
	"fmt"
	"path/filepath"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/clip"
)

// entryRegion are an entry's §5 settings on the host (region.go).
type entryRegion struct {
	// Mask is W at the latent size [h·w] (nil: 1 everywhere).
	Mask []float32
	// Preserve is λ_keep.
	Preserve float64
	// Style selects ST-LOBA's target.
	Style bool
	// Concept marks the erased concept's tokens in the positive prompt's token sequence [S] (U-LOBA's
	// concept mask; nil: none).
	Concept []float32
}

// regionTermsFor is what the graphs must compile in for the plan's entries (groups: Plan.Groups):
// a weight map when an entry has a mask or a concept mask (conceptTokens' rule: concept_mask on, an
// erase entry without a mask of its own), the preservation term when such an entry has λ_keep > 0,
// the style flag for style entries, and concept_mask's threshold and blur. It reads the preset only,
// so the plan's estimate (measureGraphs) compiles the same terms as the run.
func regionTermsFor(p *slider.Preset, groups [][]slider.Entry) regionTerms {
	var r regionTerms
	for _, g := range groups {
		for _, e := range g {
			concept := p.ConceptMask.Enabled && e.Mask == nil && e.Action == slider.ActionErase
			r.Masked = r.Masked || e.Mask != nil || concept
			r.Preserve = r.Preserve || ((e.Mask != nil || concept) && e.Preserve > 0)
			r.Style = r.Style || e.Style
			r.Concept = r.Concept || concept
		}
	}
	r.ConceptThreshold, r.ConceptBlur = conceptSettings(p)
	r.StyleMeanOnly = p.StyleStats == slider.StyleStatsMean
	return r
}

// regionOf resolves a normalized entry's mask at the latent size h×w (its image h·scale × w·scale):
// slider.Mask.Weights, a toy-world region being the exact mask of the entry's target prompt.
func regionOf(p *slider.Preset, e slider.Entry, h, w, scale int) (entryRegion, error) {
	r := entryRegion{Preserve: e.Preserve, Style: e.Style}
	if e.Mask == nil {
		return r, nil
	}
	var err error
	if r.Mask, err = e.Mask.Weights(h, w, h*scale, w*scale, presetDir(p), e.Target); err != nil {
		return r, fmt.Errorf("preset %s: %s: mask: %w", p.File(), e.Source, err)
	}
	return r, nil
}

// presetDir is the folder a preset's relative paths are relative to ("" when built in code).
func presetDir(p *slider.Preset) string {
	if p.File() == "" {
		return ""
	}
	return filepath.Dir(p.File())
}

// anchorEntries are U-LOBA's anchors (ai-toolkit's form) as entries of a group at latent size h×w:
// each anchor prompt held to the teacher (y = ε_0(anchor): guidance 0, neutral = the anchor) at its
// multiplier. Their loss weight is set by weighAnchors.
func anchorEntries(p *slider.Preset, h, w int, timeIDs []float32) []entry {
	var out []entry
	for _, a := range p.Anchors {
		m := 1.0
		if a.Multiplier != nil {
			m = *a.Multiplier
		}
		out = append(out, entry{Target: a.Prompt, Positive: a.Prompt, Neutral: a.Prompt, Unconditional: a.NegPrompt,
			Multiplier: m, BatchSize: 1, LatentH: h, LatentW: w, TimeIDs: timeIDs})
	}
	return out
}

// weighAnchors appends the anchors to a group and sets the loss weights so that the step's loss,
// mean_b(weight_b · loss_b) over the B samples, is the group's own loss (the mean over its n samples)
// plus λ_anchor·Σ_a loss_a (docs/ALGORITHMS.md §5): the group's weights are scaled by B/n (exactly 1
// without anchors) and each anchor's weight is λ_anchor·B. At λ_anchor = 0 the anchors change nothing.
func weighAnchors(group, anchors []entry, lambda float64) []entry {
	if len(anchors) == 0 {
		return group
	}
	n := 0
	for _, e := range group {
		n += max(e.BatchSize, 1)
	}
	b := n + len(anchors)
	out := make([]entry, 0, len(group)+len(anchors))
	for _, e := range group {
		e.Weight *= float64(b) / float64(n)
		out = append(out, e)
	}
	for _, a := range anchors {
		a.Weight = lambda * float64(b)
		out = append(out, a)
	}
	return out
}

// regionTensors are the §5 inputs of an assembled batch that r compiles in (nil otherwise): W
// [B, 1, h, w], λ_keep [B], the style flag [B] and the concept tokens [B, S] (seqLen S), one row per
// sample.
func regionTensors(group []entry, r regionTerms, seqLen int) (mask, preserve, style, concept *tensors.Tensor) {
	var ws, keep, flags, tokens []float32
	h, w := group[0].LatentH, group[0].LatentW
	for _, e := range group {
		for i := 0; i < max(e.BatchSize, 1); i++ {
			if r.Masked {
				if e.Region.Mask != nil {
					ws = append(ws, e.Region.Mask...)
				} else {
					for j := 0; j < h*w; j++ {
						ws = append(ws, 1)
					}
				}
			}
			keep = append(keep, float32(e.Region.Preserve))
			flag := float32(0)
			if e.Region.Style {
				flag = 1
			}
			flags = append(flags, flag)
			if e.Region.Concept != nil {
				tokens = append(tokens, e.Region.Concept...)
			} else {
				tokens = append(tokens, make([]float32, seqLen)...)
			}
		}
	}
	if r.Masked {
		mask = tensors.FromFlatDataAndDimensions(ws, len(keep), 1, h, w)
	}
	if r.Preserve {
		preserve = tensors.FromValue(keep)
	}
	if r.Style {
		style = tensors.FromValue(flags)
	}
	if r.Concept {
		concept = tensors.FromFlatDataAndDimensions(tokens, len(keep), seqLen)
	}
	return mask, preserve, style, concept
}

// conceptTokens marks, for every erase entry without a mask of its own when concept_mask is on, the
// tokens of its concept words (slider.ConceptMask.TokensFor) in its positive prompt's token sequence
// of length seqLen (BOS first, as the text encoder saw it): every BPE id of those words, matched
// in place.
func conceptTokens(p *slider.Preset, e slider.Entry, tok *clip.Tokenizer, seqLen int) ([]float32, error) {
	if !p.ConceptMask.Enabled || e.Mask != nil || e.Action != slider.ActionErase {
		return nil, nil
	}
	ids, err := tok.EncodeFixed(e.Positive, seqLen, 0)
	if err != nil {
		return nil, err
	}
	concept := map[int]bool{}
	for _, word := range p.ConceptMask.TokensFor(e) {
		wordIDs, err := tok.Encode(word)
		if err != nil {
			return nil, err
		}
		for _, id := range wordIDs {
			concept[id] = true
		}
	}
	row := make([]float32, seqLen)
	n := 0
	for i, id := range ids {
		if i > 0 && concept[id] { // position 0 is BOS
			row[i], n = 1, n+1
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("preset %s: %s: concept_mask: none of the concept words %q is in the positive prompt %q",
			p.File(), e.Source, p.ConceptMask.TokensFor(e), e.Positive)
	}
	return row, nil
}

// anchorWeight is λ_anchor: anchor_weight, default 1.
func anchorWeight(p *slider.Preset) float64 {
	if p.AnchorWeight != nil {
		return *p.AnchorWeight
	}
	return 1
}

// conceptSettings are concept_mask's threshold and blur (defaults 0.5 and 1, as slider fills them).
func conceptSettings(p *slider.Preset) (float64, int) {
	thr, blur := 0.5, 1
	if c := p.ConceptMask; c.Threshold != nil {
		thr = *c.Threshold
	}
	if c := p.ConceptMask; c.Blur != nil {
		blur = *c.Blur
	}
	return thr, blur
}
