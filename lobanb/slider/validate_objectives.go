package slider

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/loba-dev/loba/models/lora"
)

// Defaults and validation of the keys of LOBA's own objectives (docs/ALGORITHMS.md §5): masks and
// preservation per entry, U-LOBA's anchors, concept mask and layer multipliers, RC-LOBA's timestep
// schedule and ST-LOBA's style entries. Every check runs when the preset loads, before any model.

// fillObjectiveDefaults sets λ_keep per entry (1 with a mask, else 0), λ_anchor (1 with anchors, else
// 0), the anchors' multipliers and the concept mask's threshold and blur.
func (p *Preset) fillObjectiveDefaults() {
	preserve := func(keep **float64, m *Mask) {
		if m == nil {
			setPtr(keep, 0)
			return
		}
		if len(m.Boxes) == 0 {
			m.Boxes = nil
		}
		setPtr(keep, 1)
	}
	for i := range p.Prompts {
		preserve(&p.Prompts[i].Preserve, p.Prompts[i].Mask)
	}
	for i := range p.Targets {
		preserve(&p.Targets[i].Preserve, p.Targets[i].Mask)
	}
	if len(p.Anchors) == 0 {
		p.Anchors = nil
		setPtr(&p.AnchorWeight, 0)
	} else {
		setPtr(&p.AnchorWeight, 1)
	}
	for i := range p.Anchors {
		setPtr(&p.Anchors[i].Multiplier, 1)
	}
	p.ConceptMask.fillDefaults()
	if len(p.Network.LayerMultipliers) == 0 {
		p.Network.LayerMultipliers = nil
	}
}

// Values of style_stats.
const (
	StyleStatsMeanStd = "mean_std"
	StyleStatsMean    = "mean"
)

// validateObjectives checks the masks, preservation weights and style entries of every entry, the
// anchors, the concept mask, the timestep schedule and the layer multipliers.
func (p *Preset) validateObjectives(v *validator) {
	for i, e := range p.Prompts {
		path := fmt.Sprintf("prompts[%d]", i)
		p.validateMask(v, path, e.Mask, []Resolution{e.Resolution})
		v.check(finite(*e.Preserve) && *e.Preserve >= 0, path+".preserve", *e.Preserve, ">= 0 (λ_keep)")
		if e.Action == ActionStyle {
			validateStyle(v, path, e)
		}
	}
	for i, e := range p.Targets {
		path := fmt.Sprintf("targets[%d]", i)
		p.validateMask(v, path, e.Mask, e.Resolutions)
		v.check(finite(*e.Preserve) && *e.Preserve >= 0, path+".preserve", *e.Preserve, ">= 0 (λ_keep)")
	}
	p.validateAnchors(v)
	if p.StyleStats == "" {
		p.StyleStats = StyleStatsMeanStd
	}
	v.enum("style_stats", p.StyleStats, []string{StyleStatsMeanStd, StyleStatsMean})
	c := p.ConceptMask
	v.check(finite(*c.Threshold) && *c.Threshold > 0 && *c.Threshold < 1, "concept_mask.threshold", *c.Threshold, "in (0, 1)")
	v.check(*c.Blur >= 0, "concept_mask.blur", *c.Blur, ">= 0 (latent pixels; 0 = no blur)")
	for i, t := range c.Tokens {
		if strings.TrimSpace(t) == "" {
			v.add(fmt.Sprintf("concept_mask.tokens[%d]", i), "blank; want a word of the erased concept (or leave tokens out)")
		}
	}
	p.validateTimestepSchedule(v)
	p.validateLayerMultipliers(v)
}

// validateStyle checks a style entry: positive is the style prompt (non-blank, not the content
// prompt), neutral the style-free reference, and unconditional is not used.
func validateStyle(v *validator, path string, e Prompt) {
	if strings.TrimSpace(*e.Positive) == "" || *e.Positive == e.Target {
		v.add(path+".positive", "invalid value %q; action style needs positive: the style prompt (target is the content prompt)", *e.Positive)
	}
	if e.Unconditional != "" {
		v.add(path+".unconditional", "invalid value %q; action style does not use unconditional: the style-free reference is neutral", e.Unconditional)
	}
}

// validateAnchors checks each anchor (a finite non-zero multiplier) and λ_anchor. An empty prompt is
// a valid anchor: the unconditional prediction, which classifier-free guidance uses for every prompt.
func (p *Preset) validateAnchors(v *validator) {
	for i, a := range p.Anchors {
		path := fmt.Sprintf("anchors[%d]", i)
		v.check(finite(*a.Multiplier) && *a.Multiplier != 0, path+".multiplier", *a.Multiplier, "a non-zero number (the adapter multiplier the anchor is held at)")
	}
	w := *p.AnchorWeight
	v.check(finite(w) && w >= 0, "anchor_weight", w, ">= 0 (λ_anchor)")
	if len(p.Anchors) == 0 && w > 0 {
		v.add("anchor_weight", "invalid value %v; there are no anchors to weight (give anchors or leave anchor_weight out)", w)
	}
}

// validateLayerMultipliers checks each selector's syntax as network.selectors' and its multiplier.
func (p *Preset) validateLayerMultipliers(v *validator) {
	m := p.Network.LayerMultipliers
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		path := fmt.Sprintf("network.layer_multipliers[%q]", k)
		if k == "" {
			v.add(path, "empty selector; want a module type (attn1, attn2, ff, proj, resnet, sampler, ...), a block path (mid_block, up_blocks.*.attentions) or re:<regexp>")
		} else if err := (lora.Selector{Match: k}).Validate(); err != nil {
			v.add(path, "%v", err)
		}
		v.check(finite(m[k]) && m[k] >= 0, path, m[k], ">= 0 (the layer's adapter multiplier)")
	}
}

// validateMask checks an entry's mask: exactly one of png, boxes and region; the PNG exists and
// decodes; every box is inside the image at each of the entry's resolutions and non-empty; a region
// is a toy-world one, on the toy world.
func (p *Preset) validateMask(v *validator, path string, m *Mask, res []Resolution) {
	if m == nil {
		return
	}
	path += ".mask"
	switch set := m.kinds(); {
	case len(set) == 0:
		v.add(path, "empty; set one of png, boxes and region")
		return
	case len(set) > 1:
		v.add(path, "%s are given; set exactly one of png, boxes and region", strings.Join(set, " and "))
		return
	}
	switch {
	case m.PNG != "":
		if err := checkMaskPNG(m.PNG, p.presetDir()); err != nil {
			v.add(path+".png", "%v", err)
		}
	case m.Region != "":
		v.enum(path+".region", m.Region, validRegions)
		if p.Model.NameOrPath != "" {
			v.add(path+".region", "region masks are the toy world's scene masks, and model.name_or_path is %q; use png or boxes", p.Model.NameOrPath)
		}
	default:
		for _, r := range res {
			for i, b := range m.Boxes {
				if err := checkBox(b, r.H(), r.W()); err != nil {
					v.add(fmt.Sprintf("%s.boxes[%d]", path, i), "invalid value %v at resolution %s: %v", b, r, err)
				}
			}
		}
	}
}

// presetDir is the folder of the preset's file ("" when built in code).
func (p *Preset) presetDir() string {
	if p.src == nil || p.src.file == "" {
		return ""
	}
	return filepath.Dir(p.src.file)
}

// resolveMaskPaths expands "~" in every mask PNG path and makes a relative one absolute against the
// preset's folder, so that the preset saved into a run folder still finds it.
func (p *Preset) resolveMaskPaths(v *validator) {
	dir := p.presetDir()
	resolve := func(path string, m *Mask) {
		if m == nil || m.PNG == "" {
			return
		}
		s, err := ExpandHome(m.PNG)
		if err != nil {
			v.add(path+".mask.png", "%v", err)
			return
		}
		if !filepath.IsAbs(s) && dir != "" {
			if abs, err := filepath.Abs(filepath.Join(dir, s)); err == nil {
				s = abs
			}
		}
		m.PNG = s
	}
	for i := range p.Prompts {
		resolve(fmt.Sprintf("prompts[%d]", i), p.Prompts[i].Mask)
	}
	for i := range p.Targets {
		resolve(fmt.Sprintf("targets[%d]", i), p.Targets[i].Mask)
	}
}

// maskPNGChecked caches checkMaskPNG's result per file version (path, size, modification time):
// Normalize runs on every Entries call, and a mask PNG need not be decoded each time.
var maskPNGChecked sync.Map

// checkMaskPNG checks that the mask PNG exists and decodes to a non-empty image.
func checkMaskPNG(path, dir string) error {
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("mask png: %w", err)
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", path, st.Size(), st.ModTime().UnixNano())
	if e, ok := maskPNGChecked.Load(key); ok {
		if e == nil {
			return nil
		}
		return e.(error)
	}
	_, _, _, err = readMaskPNG(path)
	maskPNGChecked.Store(key, err)
	return err
}
