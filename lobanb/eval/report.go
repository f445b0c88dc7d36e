package eval

// Reports computed from read-outs: the slider's effect and preservation, and erasure.

import (
	"fmt"
	"math"
	"slices"

	"github.com/loba-dev/loba/models/toyworld"
)

// Series is one (prompt, seed) of a slider evaluation: the read-outs of the images generated from
// the same initial noise at each strength.
type Series struct {
	Prompt    string
	Seed      uint64
	Strengths []float64
	Readouts  []Readout // Readouts[j] is the image at Strengths[j]
}

// SliderReport is the evaluation of a slider, written as eval.json. Its first four fields are the
// stable format: {"effect_spearman", "effect_slope", "offtarget", "samples"}.
type SliderReport struct {
	// EffectSpearman is the mean over (prompt, seed) of the Spearman rank correlation between the
	// strength and the target attribute (AttributeValue) across the strengths.
	EffectSpearman float64 `json:"effect_spearman"`
	// EffectSlope is the mean over (prompt, seed) of the least-squares slope of the target attribute
	// against the strength (attribute units per unit of strength).
	EffectSlope float64 `json:"effect_slope"`
	// OffTarget maps each preserved categorical attribute to the fraction of (prompt, seed) whose
	// read-out at either end of the strength range (|s| = max |s|, both signs) differs from s = 0.
	OffTarget map[string]float64 `json:"offtarget"`
	// Samples is the number of (prompt, seed) series.
	Samples int `json:"samples"`

	// Target is the attribute the effect is measured on.
	Target string `json:"target"`
	// Strengths are the strengths of every series, in generation order.
	Strengths []float64 `json:"strengths"`
	// Images is the number of images read (Samples × len(Strengths)).
	Images int `json:"images"`
	// TargetMean is the mean target value at each strength (over the series where it is defined;
	// null where it is nowhere).
	TargetMean []*float64 `json:"target_mean"`
	// Undefined counts the target values that were NaN (not measurable, e.g. no hue); they are left
	// out of that series' correlation and slope.
	Undefined int `json:"undefined"`
	// PerPrompt breaks the effect down by prompt, in the order of first appearance.
	PerPrompt []PromptEffect `json:"per_prompt"`
	// OffTargetAreaChange is the mean relative change of the shape's area, |area_s − area_0| / area_0,
	// over every (series, non-zero strength s) whose image at s = 0 has a shape (not Empty, area > 0);
	// an image with no shape at s counts as a change of 1. It is set whenever the target does not
	// measure size (DefaultOffTarget keeps "size"), and absent (nil) when it does or when no series has
	// a shape at s = 0.
	OffTargetAreaChange *float64 `json:"offtarget_area_change,omitempty"`
	// AreaPairs is the number of (series, strength) pairs OffTargetAreaChange averages.
	AreaPairs int `json:"offtarget_area_pairs,omitempty"`
	// Series lists every (prompt, seed) with what was read at each strength, as an erase report lists
	// its pairs.
	Series []SeriesValues `json:"series"`
}

// SeriesValues is what a slider evaluation read off one (prompt, seed) series, one entry per strength.
type SeriesValues struct {
	Prompt         string  `json:"prompt"`
	Seed           uint64  `json:"seed"`
	EffectSpearman float64 `json:"effect_spearman"`
	// Target is the target attribute at each strength (null where it is not defined).
	Target []*float64 `json:"target"`
	// Area is the shape's area (a fraction of the canvas) at each strength.
	Area []float64 `json:"area"`
	// Classes maps each categorical attribute to its class at each strength ("" where the image has
	// no shape).
	Classes map[string][]string `json:"classes"`
}

// PromptEffect is the effect of a slider on one prompt, averaged over its seeds.
type PromptEffect struct {
	Prompt         string             `json:"prompt"`
	EffectSpearman float64            `json:"effect_spearman"`
	EffectSlope    float64            `json:"effect_slope"`
	OffTarget      map[string]float64 `json:"offtarget"`
	Samples        int                `json:"samples"`
	// OffTargetAreaChange is SliderReport.OffTargetAreaChange over this prompt's series.
	OffTargetAreaChange *float64 `json:"offtarget_area_change,omitempty"`
}

// ComputeSlider computes the slider report of series (at least one; all with the same strengths,
// including 0 and at least one other) on the numeric attribute target (see AttributeValue).
// offTarget lists the categorical attributes checked for preservation; nil takes
// DefaultOffTarget(target).
//
// Per series, points whose target value is NaN are left out of the correlation and the slope; a
// series with fewer than two defined points scores 0 (no measurable effect) but still counts. An
// off-target attribute counts a series as changed when its class at any strength of largest
// magnitude (both s = −2 and s = +2 for −2…2; only +2 for 0…2) differs from its class at s = 0.
// The shape's area, a number, is compared at every non-zero strength (OffTargetAreaChange).
func ComputeSlider(target string, offTarget []string, series []Series) (*SliderReport, error) {
	if err := CheckTarget(target); err != nil {
		return nil, err
	}
	if offTarget == nil {
		offTarget = DefaultOffTarget(target)
	}
	if err := checkCategoricals(offTarget); err != nil {
		return nil, err
	}
	if len(series) == 0 {
		return nil, fmt.Errorf("eval: slider report of no series")
	}
	strengths := series[0].Strengths
	zero, ends, err := strengthIndices(strengths)
	if err != nil {
		return nil, err
	}
	r := &SliderReport{
		Target: target, Strengths: slices.Clone(strengths), OffTarget: zeroRates(offTarget),
		Samples: len(series), Images: len(series) * len(strengths),
	}
	acc := &sliderSums{target: target, offTarget: offTarget, strengths: strengths, zero: zero, ends: ends,
		sums: make([]float64, len(strengths)), counts: make([]int, len(strengths)), byPrompt: map[string]*PromptEffect{},
		measureArea: numericAttrs[target] != "size", areaBy: map[string]*areaSums{}}
	for i, s := range series {
		if err := checkSeries(i, s, strengths); err != nil {
			return nil, err
		}
		acc.add(r, s)
	}
	acc.finish(r)
	return r, nil
}

// sliderSums holds what ComputeSlider adds up over the series before it averages.
type sliderSums struct {
	target    string
	offTarget []string
	strengths []float64
	zero      int   // index of strength 0
	ends      []int // indices of the strengths of largest magnitude
	// sums and counts add up the defined target values at each strength.
	sums   []float64
	counts []int
	// byPrompt sums each prompt's effect; the report's PerPrompt keeps their order.
	byPrompt map[string]*PromptEffect
	// measureArea: the target does not measure size, so the area's relative change is summed, over
	// all series (area) and per prompt (areaBy).
	measureArea bool
	area        areaSums
	areaBy      map[string]*areaSums
}

// zeroRates returns a map from each attribute to 0.
func zeroRates(attrs []string) map[string]float64 {
	m := make(map[string]float64, len(attrs))
	for _, a := range attrs {
		m[a] = 0
	}
	return m
}

// checkSeries reports a series (number i) whose strengths or read-outs do not match strengths.
func checkSeries(i int, s Series, strengths []float64) error {
	if !slices.Equal(s.Strengths, strengths) {
		return fmt.Errorf("eval: series %d (%q, seed %d) has strengths %v, series 0 %v", i, s.Prompt, s.Seed, s.Strengths, strengths)
	}
	if len(s.Readouts) != len(strengths) {
		return fmt.Errorf("eval: series %d (%q, seed %d) has %d read-outs for %d strengths", i, s.Prompt, s.Seed, len(s.Readouts), len(strengths))
	}
	return nil
}

// add adds series s to the sums of r (overall) and of its prompt.
func (acc *sliderSums) add(r *SliderReport, s Series) {
	sv := seriesValues(s, acc.target)
	rho, slope := acc.effect(r, sv.Target)
	sv.EffectSpearman = rho
	r.Series = append(r.Series, sv)
	pe := acc.prompt(r, s.Prompt)
	pe.EffectSpearman += rho
	pe.EffectSlope += slope
	pe.Samples++
	r.EffectSpearman += rho
	r.EffectSlope += slope
	for _, a := range acc.offTarget {
		if acc.changed(s, a) {
			r.OffTarget[a]++
			pe.OffTarget[a]++
		}
	}
	if acc.measureArea {
		acc.area.add(s, acc.zero)
		if acc.areaBy[s.Prompt] == nil {
			acc.areaBy[s.Prompt] = &areaSums{}
		}
		acc.areaBy[s.Prompt].add(s, acc.zero)
	}
}

// seriesValues lists what was read off s: the target (nil where it is not defined), the area and
// every categorical class at each strength.
func seriesValues(s Series, target string) SeriesValues {
	sv := SeriesValues{Prompt: s.Prompt, Seed: s.Seed, Classes: map[string][]string{}}
	for _, ro := range s.Readouts {
		if v := AttributeValue(ro, target); !math.IsNaN(v) && !math.IsInf(v, 0) {
			sv.Target = append(sv.Target, &v)
		} else {
			sv.Target = append(sv.Target, nil)
		}
		sv.Area = append(sv.Area, ro.Area)
		for _, a := range CategoricalAttributes {
			c, _ := Categorical(ro, a)
			sv.Classes[a] = append(sv.Classes[a], c)
		}
	}
	return sv
}

// effect returns the Spearman correlation and the slope of the target values (seriesValues' Target,
// one per strength) against the strength over the defined points, adding those to the per-strength
// sums and counting the undefined ones in r.
func (acc *sliderSums) effect(r *SliderReport, target []*float64) (rho, slope float64) {
	var xs, ys []float64
	for j, v := range target {
		if v == nil {
			r.Undefined++
			continue
		}
		xs, ys = append(xs, acc.strengths[j]), append(ys, *v)
		acc.sums[j] += *v
		acc.counts[j]++
	}
	return Spearman(xs, ys), Slope(xs, ys)
}

// prompt returns the sums of prompt, creating them (and the prompt's place in r.PerPrompt) on its
// first appearance.
func (acc *sliderSums) prompt(r *SliderReport, prompt string) *PromptEffect {
	pe := acc.byPrompt[prompt]
	if pe == nil {
		pe = &PromptEffect{Prompt: prompt, OffTarget: zeroRates(acc.offTarget)}
		acc.byPrompt[prompt] = pe
		r.PerPrompt = append(r.PerPrompt, PromptEffect{Prompt: prompt}) // order; filled by finish
	}
	return pe
}

// changed reports whether the class of attribute a at any strength of largest magnitude differs from
// its class at s = 0.
func (acc *sliderSums) changed(s Series, a string) bool {
	base, _ := Categorical(s.Readouts[acc.zero], a)
	for _, j := range acc.ends {
		if c, _ := Categorical(s.Readouts[j], a); c != base {
			return true
		}
	}
	return false
}

// finish turns the sums in r into means: over the series, over each prompt's series, and of the
// target at each strength.
func (acc *sliderSums) finish(r *SliderReport) {
	n := float64(r.Samples)
	r.EffectSpearman /= n
	r.EffectSlope /= n
	for a := range r.OffTarget {
		r.OffTarget[a] /= n
	}
	for i := range r.PerPrompt {
		pe := acc.byPrompt[r.PerPrompt[i].Prompt]
		k := float64(pe.Samples)
		pe.EffectSpearman /= k
		pe.EffectSlope /= k
		for a := range pe.OffTarget {
			pe.OffTarget[a] /= k
		}
		if acc.measureArea {
			pe.OffTargetAreaChange = acc.areaBy[pe.Prompt].mean()
		}
		r.PerPrompt[i] = *pe
	}
	if acc.measureArea {
		r.OffTargetAreaChange, r.AreaPairs = acc.area.mean(), acc.area.n
	}
	r.TargetMean = make([]*float64, len(acc.strengths))
	for j := range acc.strengths {
		if acc.counts[j] > 0 {
			m := acc.sums[j] / float64(acc.counts[j])
			r.TargetMean[j] = &m
		}
	}
}

// strengthIndices returns the index of strength 0 and those of the largest |s|.
func strengthIndices(strengths []float64) (zero int, ends []int, err error) {
	zero = -1
	maxAbs := 0.0
	for j, s := range strengths {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return 0, nil, fmt.Errorf("eval: strength %v is not finite", s)
		}
		if s == 0 {
			if zero >= 0 {
				return 0, nil, fmt.Errorf("eval: strengths %v list 0 twice", strengths)
			}
			zero = j
		}
		maxAbs = max(maxAbs, math.Abs(s))
	}
	if zero < 0 || maxAbs == 0 {
		return 0, nil, fmt.Errorf("eval: strengths %v must include 0 and a non-zero strength", strengths)
	}
	for j, s := range strengths {
		if math.Abs(s) == maxAbs {
			ends = append(ends, j)
		}
	}
	return zero, ends, nil
}

// ErasePair is one (prompt, seed) of an erase evaluation: the read-outs of the image without the
// adapter (Before, strength 0) and with it (After), from the same initial noise.
type ErasePair struct {
	Prompt string
	Seed   uint64
	// Control marks a control prompt (one that does not ask for the erased value).
	Control       bool
	Before, After Readout
}

// EraseReport is the evaluation of an erasure, written as eval.json. Its first four fields are the
// stable format: {"erased_rate_before", "erased_rate_after", "control_change", "samples"}.
type EraseReport struct {
	// ErasedRateBefore and ErasedRateAfter are the fractions of the prompts asking for the erased
	// value (over prompts × seeds) whose read-out shows it, without and with the adapter.
	ErasedRateBefore float64 `json:"erased_rate_before"`
	ErasedRateAfter  float64 `json:"erased_rate_after"`
	// ControlChange is the fraction of control (prompt, seed) pairs whose read-out changes class in
	// any preserved categorical attribute (Preserved: by default background, colour, shape and size)
	// between before and after.
	ControlChange float64 `json:"control_change"`
	// Samples is the number of (prompt, seed) pairs, erased-value prompts and controls together
	// (each one read twice, before and after).
	Samples int `json:"samples"`

	Attribute string `json:"attribute"`
	Value     string `json:"value"`
	// Strength is the adapter strength of "after" (set by EvalErase; 0 when unknown).
	Strength       float64 `json:"strength"`
	TargetSamples  int     `json:"target_samples"`
	ControlSamples int     `json:"control_samples"`
	// Preserved are the attributes ControlChange counts.
	Preserved []string `json:"preserved"`
	// ControlChangeBy is the fraction of control pairs changing class, per attribute.
	ControlChangeBy map[string]float64 `json:"control_change_by_attribute"`
	// TargetChangeBy is the same for the erased-value prompts (what they turned into is in
	// AfterValues).
	TargetChangeBy map[string]float64 `json:"target_change_by_attribute"`
	// ErasedSizeKept and ErasedBackgroundKept are the fractions of the erased-value pairs whose size
	// class and background class are the same before and after (1 − TargetChangeBy of each): the
	// erased shapes should lose only the erased value.
	ErasedSizeKept       float64 `json:"erased_size_kept"`
	ErasedBackgroundKept float64 `json:"erased_background_kept"`
	// BeforeValues and AfterValues count the classes of Attribute read on the erased-value prompts.
	BeforeValues map[string]int `json:"before_values"`
	AfterValues  map[string]int `json:"after_values"`
	// Pairs lists every (prompt, seed) with its classes and foreground area before and after.
	Pairs []PairSummary `json:"pairs"`
}

// PairSummary is one erase pair as eval.json lists it.
type PairSummary struct {
	Prompt  string `json:"prompt"`
	Seed    uint64 `json:"seed"`
	Control bool   `json:"control"`
	// Before and After are the categorical read-outs ("color", "size", …) and "area".
	Before map[string]any `json:"before"`
	After  map[string]any `json:"after"`
}

func summarize(r Readout) map[string]any {
	m := map[string]any{"area": math.Round(r.Area*1e4) / 1e4}
	for _, a := range CategoricalAttributes {
		v, _ := Categorical(r, a)
		m[a] = v
	}
	return m
}

// ComputeErase computes the erase report of pairs (at least one erased-value pair and one control)
// for the categorical attribute attr and its erased class value. preserve lists the attributes whose
// change counts in ControlChange (nil: all of CategoricalAttributes); ControlChangeBy reports every
// attribute either way.
func ComputeErase(attr, value string, pairs []ErasePair, preserve []string) (*EraseReport, error) {
	if err := checkCategoricals([]string{attr}); err != nil {
		return nil, err
	}
	if len(preserve) == 0 {
		preserve = CategoricalAttributes
	}
	if err := checkCategoricals(preserve); err != nil {
		return nil, fmt.Errorf("preserved attributes: %w", err)
	}
	preserved := map[string]bool{}
	for _, a := range preserve {
		preserved[a] = true
	}
	r := &EraseReport{
		Attribute: attr, Value: value, Samples: len(pairs), Preserved: append([]string(nil), preserve...),
		ControlChangeBy: map[string]float64{}, TargetChangeBy: map[string]float64{},
		BeforeValues: map[string]int{}, AfterValues: map[string]int{},
	}
	for _, a := range CategoricalAttributes {
		r.ControlChangeBy[a] = 0
		r.TargetChangeBy[a] = 0
	}
	for _, p := range pairs {
		r.Pairs = append(r.Pairs, PairSummary{Prompt: p.Prompt, Seed: p.Seed, Control: p.Control,
			Before: summarize(p.Before), After: summarize(p.After)})
		changed := false
		by := r.TargetChangeBy
		if p.Control {
			by = r.ControlChangeBy
		}
		for _, a := range CategoricalAttributes {
			b, _ := Categorical(p.Before, a)
			c, _ := Categorical(p.After, a)
			if b != c {
				changed = changed || preserved[a]
				by[a]++
			}
		}
		if p.Control {
			r.ControlSamples++
			if changed {
				r.ControlChange++
			}
			continue
		}
		r.TargetSamples++
		b, _ := Categorical(p.Before, attr)
		c, _ := Categorical(p.After, attr)
		r.BeforeValues[b]++
		r.AfterValues[c]++
		if b == value {
			r.ErasedRateBefore++
		}
		if c == value {
			r.ErasedRateAfter++
		}
	}
	if r.TargetSamples == 0 || r.ControlSamples == 0 {
		return nil, fmt.Errorf("eval: erase report needs prompts asking for %s %q and control prompts (got %d and %d pairs)",
			attr, value, r.TargetSamples, r.ControlSamples)
	}
	nt, nc := float64(r.TargetSamples), float64(r.ControlSamples)
	r.ErasedRateBefore /= nt
	r.ErasedRateAfter /= nt
	r.ControlChange /= nc
	for _, a := range CategoricalAttributes {
		r.TargetChangeBy[a] /= nt
		r.ControlChangeBy[a] /= nc
	}
	r.ErasedSizeKept = 1 - r.TargetChangeBy[toyworld.AttrSize]
	r.ErasedBackgroundKept = 1 - r.TargetChangeBy[toyworld.AttrBackground]
	return r, nil
}
