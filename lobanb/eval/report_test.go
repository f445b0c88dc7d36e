package eval

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/models/toyworld"
)

var strengths5 = []float64{-2, -1, 0, 1, 2}

// ro is a read-out of a medium red circle on white with the given area.
func ro(area float64) Readout {
	return Readout{Background: "white", Color: "red", Size: "medium", Shape: "circle", Area: area, Hue: 0}
}

// growing is a series whose area rises with the strength: 10, 20, …
func growing(prompt string, seed uint64) Series {
	s := Series{Prompt: prompt, Seed: seed, Strengths: strengths5}
	for j := range strengths5 {
		s.Readouts = append(s.Readouts, ro(float64(10*(j+1))))
	}
	return s
}

func TestAttributeValue(t *testing.T) {
	hue := func(h float64) Readout { return Readout{Hue: h, Area: 0.2, Size: "large"} }
	for _, c := range []struct {
		hue, want float64
	}{
		{0, 1.0 / 3}, {240, 1}, {-60, 2.0 / 3}, {300, 2.0 / 3}, {180, 2.0 / 3}, {120, 1.0 / 3}, {60, 0},
		{-30, 0.5}, {270, 5.0 / 6},
	} {
		require.InDelta(t, c.want, AttributeValue(hue(c.hue), "blueness"), 1e-12, "hue %g", c.hue)
	}
	// The red → blue path through magenta, as toyworld reports it ([−60, 300)): rising blueness.
	prev := -1.0
	for _, h := range []float64{0, -20, -40, -59, 299, 280, 260, 240} {
		v := AttributeValue(hue(h), "blueness")
		require.Greater(t, v, prev, "hue %g", h)
		prev = v
	}
	require.InDelta(t, 1.0, AttributeValue(hue(0), "redness"), 1e-12)
	require.InDelta(t, 1.0, AttributeValue(hue(359.999), "redness"), 1e-4)
	require.Equal(t, 0.2, AttributeValue(hue(10), "area"))
	require.Equal(t, 0.2, AttributeValue(hue(10), "size"))
	require.Equal(t, 2.0, AttributeValue(hue(10), "size_class"))
	require.Equal(t, 0.0, AttributeValue(Readout{Size: "small"}, "size_class"))
	require.Equal(t, 10.0, AttributeValue(hue(10), "hue"))
	rgb := func(r, g, b float64) Readout { return Readout{RGB: [3]float64{r, g, b}} }
	require.Equal(t, -1.0, AttributeValue(rgb(1, 0, 0), "blue_minus_red"))
	require.Equal(t, 1.0, AttributeValue(rgb(0, 0, 1), "blue_minus_red"))
	require.Equal(t, 0.0, AttributeValue(rgb(0.5, 0, 0.5), "blue_minus_red"), "magenta, half-way")
	require.True(t, math.IsNaN(AttributeValue(Readout{Empty: true}, "blue_minus_red")))
	// Every ordered pair of palette colours has its axis: b −1, a +1, the midpoint 0; B − R for blue/red.
	require.Equal(t, 1.0, AttributeValue(rgb(1, 1, 0), "yellow_minus_green"))
	require.Equal(t, -1.0, AttributeValue(rgb(0, 1, 0), "yellow_minus_green"))
	require.Equal(t, 0.0, AttributeValue(rgb(0.5, 1, 0), "yellow_minus_green"), "half-way")
	require.InDelta(t, 1.0, AttributeValue(rgb(1, 1, 0), "yellow_minus_blue"), 1e-12)
	require.InDelta(t, -1.0, AttributeValue(rgb(0, 0, 1), "yellow_minus_blue"), 1e-12)
	require.InDelta(t, 0.0, AttributeValue(rgb(0.5, 0.5, 0.5), "yellow_minus_blue"), 1e-12, "grey is their midpoint")
	for _, c := range [][3]float64{{0.2, 0.7, 0.1}, {0.9, 0.3, 0.6}} {
		require.InDelta(t, c[2]-c[0], AttributeValue(rgb(c[0], c[1], c[2]), "blue_minus_red"), 1e-12)
		require.InDelta(t, -AttributeValue(rgb(c[0], c[1], c[2]), "green_minus_red"),
			AttributeValue(rgb(c[0], c[1], c[2]), "red_minus_green"), 1e-12, "the reversed pair is the negation")
	}
	require.Equal(t, []string{"background", "shape", "size"}, DefaultOffTarget("green_minus_yellow"))
	for _, bad := range []string{"red_minus_red", "purple_minus_red", "blue_minus_"} {
		require.Error(t, CheckTarget(bad), bad)
		require.True(t, math.IsNaN(AttributeValue(rgb(1, 0, 0), bad)), bad)
	}
	require.Equal(t, []string{"background", "shape", "size"}, DefaultOffTarget("blue_minus_red"))
	// No foreground: no hue (the zero Hue would read as red).
	require.True(t, math.IsNaN(AttributeValue(Readout{Empty: true}, "blueness")))
	require.True(t, math.IsNaN(AttributeValue(Readout{Empty: true}, "hue")))
	require.True(t, math.IsNaN(AttributeValue(Readout{Empty: true}, "size_class")))
	require.Equal(t, 0.0, AttributeValue(Readout{Empty: true}, "area"))
	require.True(t, math.IsNaN(AttributeValue(hue(10), "bogus")))
	require.ErrorContains(t, CheckTarget("bogus"), "blueness")
	require.NoError(t, CheckTarget("blueness"))

	require.Equal(t, []string{"background", "color", "shape"}, DefaultOffTarget("area"))
	require.Equal(t, []string{"background", "shape", "size"}, DefaultOffTarget("blueness"))
	require.Equal(t, []string{"background", "color", "shape", "size"}, DefaultOffTarget("cx"))
}

func TestComputeSliderMonotone(t *testing.T) {
	r, err := ComputeSlider("area", nil, []Series{growing("a", 1), growing("a", 2), growing("b", 1)})
	require.NoError(t, err)
	require.Equal(t, 1.0, r.EffectSpearman)
	require.InDelta(t, 10.0, r.EffectSlope, 1e-12)
	require.Equal(t, map[string]float64{"background": 0, "color": 0, "shape": 0}, r.OffTarget)
	require.Equal(t, 3, r.Samples)
	require.Equal(t, 15, r.Images)
	require.Equal(t, strengths5, r.Strengths)
	for j, m := range r.TargetMean {
		require.InDelta(t, float64(10*(j+1)), *m, 1e-12)
	}
	require.Len(t, r.PerPrompt, 2)
	require.Equal(t, "a", r.PerPrompt[0].Prompt)
	require.Equal(t, 2, r.PerPrompt[0].Samples)
	require.Equal(t, "b", r.PerPrompt[1].Prompt)
	require.Equal(t, 1.0, r.PerPrompt[1].EffectSpearman)
}

func TestComputeSliderOffTarget(t *testing.T) {
	// Four series; the size class changes everywhere (it is the target's own class: not counted).
	var series []Series
	for k := range 4 {
		s := growing("p", uint64(k))
		for j := range s.Readouts {
			s.Readouts[j].Size = []string{"small", "small", "medium", "large", "large"}[j]
		}
		series = append(series, s)
	}
	series[1].Readouts[0].Color = "blue"   // s = −2: an end, counted
	series[2].Readouts[4].Shape = "square" // s = +2: an end, counted
	series[2].Readouts[0].Shape = "square" // both ends: still one pair
	series[3].Readouts[1].Color = "green"  // s = −1: not an end
	series[3].Readouts[3].Background = "black"
	// Series 3 also loses its effect: a decreasing area.
	for j := range series[3].Readouts {
		series[3].Readouts[j].Area = float64(50 - 10*j)
	}
	r, err := ComputeSlider("area", nil, series)
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"background": 0, "color": 0.25, "shape": 0.25}, r.OffTarget)
	require.InDelta(t, (1+1+1-1)/4.0, r.EffectSpearman, 1e-12)
	require.InDelta(t, (10+10+10-10)/4.0, r.EffectSlope, 1e-12)
	// Every series is listed with what was read at each strength.
	require.Len(t, r.Series, 4)
	s3 := r.Series[3]
	require.Equal(t, "p", s3.Prompt)
	require.Equal(t, uint64(3), s3.Seed)
	require.InDelta(t, -1.0, s3.EffectSpearman, 1e-12)
	require.Equal(t, []float64{50, 40, 30, 20, 10}, s3.Area)
	require.Len(t, s3.Target, 5)
	require.InDelta(t, 40.0, *s3.Target[1], 1e-12, "the target (area) at s = −1")
	require.Equal(t, "green", s3.Classes["color"][1])
	require.Equal(t, "black", s3.Classes["background"][3])
	require.Equal(t, []string{"small", "small", "medium", "large", "large"}, s3.Classes["size"])
	require.Equal(t, "blue", r.Series[1].Classes["color"][0])

	// An explicit off-target list, including the size class.
	r, err = ComputeSlider("area", []string{"size", "color"}, series)
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"size": 1, "color": 0.25}, r.OffTarget)
	_, err = ComputeSlider("area", []string{"texture"}, series)
	require.ErrorContains(t, err, "texture")

	// One-sided strengths: the end is +2 only, so series 1's change at −2 is not counted.
	var one []Series
	for _, s := range series {
		one = append(one, Series{Prompt: s.Prompt, Seed: s.Seed, Strengths: []float64{-2, 0, 1, 2},
			Readouts: []Readout{s.Readouts[0], s.Readouts[2], s.Readouts[3], s.Readouts[4]}})
	}
	r, err = ComputeSlider("area", nil, one)
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"background": 0, "color": 0.25, "shape": 0.25}, r.OffTarget, "−2 and +2 are both ends")
	for i := range one {
		one[i].Strengths = []float64{-1, 0, 1, 2}
	}
	r, err = ComputeSlider("area", nil, one)
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"background": 0, "color": 0, "shape": 0.25}, r.OffTarget, "only +2 is an end")
}

func TestComputeSliderUndefined(t *testing.T) {
	// Blueness of a red → blue series, one image empty (no hue): left out of that series.
	s := Series{Prompt: "p", Strengths: strengths5, Readouts: []Readout{
		{Hue: 30, Color: "red", Size: "medium"}, {Hue: 0, Color: "red", Size: "medium"}, {Hue: -30, Color: "red", Size: "medium"},
		{Empty: true}, {Hue: 240, Color: "blue", Size: "medium"},
	}}
	// A series with a single defined point scores 0 but counts.
	flat := Series{Prompt: "q", Strengths: strengths5, Readouts: []Readout{
		{Empty: true}, {Empty: true}, {Hue: 0, Color: "red", Size: "medium"}, {Empty: true}, {Empty: true},
	}}
	r, err := ComputeSlider("blueness", nil, []Series{s, flat})
	require.NoError(t, err)
	require.Equal(t, 5, r.Undefined)
	require.InDelta(t, 0.5, r.EffectSpearman, 1e-12)
	// Slope of s over x = [−2, −1, 0, 2], y = [1/6, 1/3, 1/2, 1]: x̄ = −1/4, ȳ = 1/2;
	// Σdx·dy = (−7/4)(−1/3) + (−3/4)(−1/6) + (1/4)(0) + (9/4)(1/2) = 7/12 + 1/8 + 9/8 = 11/6;
	// Σdx² = 49/16 + 9/16 + 1/16 + 81/16 = 35/4 → 22/105.
	require.InDelta(t, 22.0/105/2, r.EffectSlope, 1e-12)
	require.Nil(t, r.TargetMean[3])
	require.InDelta(t, (0.5+1.0/3)/2, *r.TargetMean[2], 1e-12)
	require.Nil(t, r.Series[0].Target[3], "the empty image's blueness is listed as null")
	require.Equal(t, "", r.Series[0].Classes["size"][3])
	require.Equal(t, map[string]float64{"background": 0, "shape": 0, "size": 0.5}, r.OffTarget, "an empty image reads as class \"\", a change")
	// JSON has no NaN and a null mean.
	_, err = json.Marshal(r)
	require.NoError(t, err)
}

func TestComputeSliderErrors(t *testing.T) {
	_, err := ComputeSlider("area", nil, nil)
	require.Error(t, err)
	_, err = ComputeSlider("weight", nil, []Series{growing("a", 1)})
	require.ErrorContains(t, err, "weight")
	s := growing("a", 1)
	s.Strengths = []float64{-2, -1, 0.5, 1, 2}
	_, err = ComputeSlider("area", nil, []Series{s})
	require.ErrorContains(t, err, "include 0")
	s.Strengths = []float64{0, 0, 0, 0, 0}
	_, err = ComputeSlider("area", nil, []Series{s})
	require.ErrorContains(t, err, "0 twice")
	s = growing("a", 1)
	s.Readouts = s.Readouts[:4]
	_, err = ComputeSlider("area", nil, []Series{growing("a", 2), s})
	require.ErrorContains(t, err, "4 read-outs")
	s = growing("a", 1)
	s.Strengths = []float64{-1, 0, 1, 2, 3}
	_, err = ComputeSlider("area", nil, []Series{growing("a", 2), s})
	require.ErrorContains(t, err, "strengths")
}

func TestComputeErase(t *testing.T) {
	red, green, blue := ro(1), ro(1), ro(1)
	green.Color, blue.Color = "green", "blue"
	blueSquare := blue
	blueSquare.Shape = "square"
	pairs := []ErasePair{
		{Prompt: "a red circle", Seed: 0, Before: red, After: blue},
		{Prompt: "a red circle", Seed: 1, Before: red, After: red},
		{Prompt: "a red square", Seed: 0, Before: red, After: green},
		{Prompt: "a red square", Seed: 1, Before: green, After: green},
		{Prompt: "a blue circle", Control: true, Before: blue, After: blue},
		{Prompt: "a blue square", Control: true, Before: blue, After: blueSquare},
	}
	r, err := ComputeErase("color", "red", pairs, nil)
	require.NoError(t, err)
	require.Equal(t, 0.75, r.ErasedRateBefore)
	require.Equal(t, 0.25, r.ErasedRateAfter)
	require.Equal(t, 0.5, r.ControlChange)
	require.Equal(t, 6, r.Samples)
	require.Equal(t, 4, r.TargetSamples)
	require.Equal(t, 2, r.ControlSamples)
	require.Equal(t, map[string]float64{"background": 0, "color": 0, "shape": 0.5, "size": 0}, r.ControlChangeBy)
	require.Equal(t, map[string]float64{"background": 0, "color": 0.5, "shape": 0, "size": 0}, r.TargetChangeBy)
	require.Equal(t, map[string]int{"red": 3, "green": 1}, r.BeforeValues)
	require.Equal(t, map[string]int{"red": 1, "green": 2, "blue": 1}, r.AfterValues)
	require.Equal(t, CategoricalAttributes, r.Preserved)
	require.Len(t, r.Pairs, len(pairs))
	require.Equal(t, "blue", r.Pairs[0].After["color"])
	require.Equal(t, "red", r.Pairs[0].Before["color"])
	require.Equal(t, "square", r.Pairs[5].After["shape"])
	require.True(t, r.Pairs[5].Control)

	// Shape not preserved (a base that cannot draw shapes): the square no longer counts as a change,
	// but the per-attribute rates still report it.
	r, err = ComputeErase("color", "red", pairs, []string{"color", "size", "background"})
	require.NoError(t, err)
	require.Equal(t, 0.0, r.ControlChange)
	require.Equal(t, 0.5, r.ControlChangeBy["shape"])
	require.Equal(t, []string{"color", "size", "background"}, r.Preserved)
	_, err = ComputeErase("color", "red", pairs, []string{"colour"})
	require.ErrorContains(t, err, "colour")

	_, err = ComputeErase("color", "red", pairs[:4], nil)
	require.ErrorContains(t, err, "control")
	_, err = ComputeErase("color", "red", pairs[4:], nil)
	require.ErrorContains(t, err, "control")
	_, err = ComputeErase("hue", "red", pairs, nil)
	require.ErrorContains(t, err, "hue")
}

// jsonKeys decodes a report's JSON into a map.
func jsonKeys(t *testing.T, path string) map[string]any {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))
	return m
}

func TestJSONAndTable(t *testing.T) {
	dir := t.TempDir()
	sr, err := ComputeSlider("area", nil, []Series{growing("a big circle", 1), growing("b", 1)})
	require.NoError(t, err)
	path := filepath.Join(dir, "eval.json")
	require.NoError(t, WriteJSON(path, sr))
	m := jsonKeys(t, path)
	require.Equal(t, 1.0, m["effect_spearman"])
	require.InDelta(t, 10.0, m["effect_slope"], 1e-12)
	require.Equal(t, map[string]any{"background": 0.0, "color": 0.0, "shape": 0.0}, m["offtarget"])
	require.Equal(t, 2.0, m["samples"])
	require.Equal(t, "area", m["target"])
	require.Len(t, m["per_prompt"], 2)

	pairs := []ErasePair{{Prompt: "a red circle", Before: ro(1), After: ro(1)}, {Prompt: "c", Control: true}}
	er, err := ComputeErase("color", "red", pairs, nil)
	require.NoError(t, err)
	require.NoError(t, WriteJSON(path, er)) // replaces the slider report
	m = jsonKeys(t, path)
	for _, k := range []string{"erased_rate_before", "erased_rate_after", "control_change", "samples"} {
		require.Contains(t, m, k)
	}
	require.Equal(t, 1.0, m["erased_rate_before"])
	require.Equal(t, 2.0, m["samples"])
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left")
	require.Error(t, WriteJSON(filepath.Join(dir, "missing", "eval.json"), er))
	require.Error(t, WriteJSON(path, math.NaN()))

	table := sr.Table()
	for _, want := range []string{"effect_spearman", "1.000", "effect_slope", "10", "offtarget color", "a big circle", "mean area"} {
		require.Contains(t, table, want)
	}
	table = er.Table()
	for _, want := range []string{"erased_rate_before", "1.000", "erased_rate_after", "control_change", "red 1"} {
		require.Contains(t, table, want)
	}
	t.Log("\n" + sr.Table() + "\n" + er.Table())
}

// The shape's area against strength 0, as a mean relative change over (series, non-zero strength),
// computed directly here; and left out when the target measures size.
func TestComputeSliderAreaChange(t *testing.T) {
	areas := [][]float64{
		{0.10, 0.12, 0.10, 0.09, 0.10}, // prompt a
		{0.20, 0.20, 0.20, 0.20, 0.30}, // prompt a
		{0.05, 0.05, 0, 0.05, 0.05},    // prompt b: no shape at s = 0, left out
		{0.08, 0.08, 0.08, 0.08, 0},    // prompt b: the shape vanishes at +2, a change of 1
	}
	prompts := []string{"a", "a", "b", "b"}
	var series []Series
	for i, row := range areas {
		s := Series{Prompt: prompts[i], Seed: uint64(i), Strengths: strengths5}
		for _, a := range row {
			ro := ro(a)
			ro.Empty = a == 0
			s.Readouts = append(s.Readouts, ro)
		}
		series = append(series, s)
	}
	// Direct: Σ|a_s − a_0|/a_0 over the non-zero strengths of the series with a shape at 0.
	sums, counts := map[string]float64{}, map[string]int{}
	for i, row := range areas {
		if row[2] == 0 {
			continue
		}
		for j, a := range row {
			if j != 2 {
				sums[prompts[i]] += math.Abs(a-row[2]) / row[2]
				counts[prompts[i]]++
			}
		}
	}
	want := (sums["a"] + sums["b"]) / float64(counts["a"]+counts["b"])
	require.InDelta(t, (0.2+0.1+0+0.5+1)/12, want, 1e-12, "the direct sum by hand")

	r, err := ComputeSlider("blueness", nil, series)
	require.NoError(t, err)
	require.NotNil(t, r.OffTargetAreaChange)
	require.InDelta(t, want, *r.OffTargetAreaChange, 1e-12)
	require.Equal(t, 12, r.AreaPairs)
	require.InDelta(t, sums["a"]/8, *r.PerPrompt[0].OffTargetAreaChange, 1e-12)
	require.InDelta(t, sums["b"]/4, *r.PerPrompt[1].OffTargetAreaChange, 1e-12)
	table := r.Table()
	require.Regexp(t, `offtarget_area_change +0\.150 \(mean \|Δarea\|/area over 12 pairs\)`, table)
	require.Regexp(t, `\na +0\.000 +0 +0\.000 +0\.000 +0\.000 +0\.100 +2\n`, table, "prompt a's row ends with its area change")

	dir := t.TempDir()
	path := filepath.Join(dir, "eval.json")
	require.NoError(t, WriteJSON(path, r))
	m := jsonKeys(t, path)
	require.InDelta(t, want, m["offtarget_area_change"], 1e-12)
	require.Equal(t, 12.0, m["offtarget_area_pairs"])

	for _, target := range []string{"background_luminance", "color_cast", "cx"} {
		r, err := ComputeSlider(target, nil, series)
		require.NoError(t, err)
		require.NotNil(t, r.OffTargetAreaChange, target)
		require.InDelta(t, want, *r.OffTargetAreaChange, 1e-12, target)
	}
	for _, target := range []string{"area", "size", "size_class"} {
		r, err := ComputeSlider(target, nil, series)
		require.NoError(t, err)
		require.Nil(t, r.OffTargetAreaChange, target)
		require.Nil(t, r.PerPrompt[0].OffTargetAreaChange, target)
		require.NotContains(t, r.Table(), "area change", target)
		require.NoError(t, WriteJSON(path, r))
		require.NotContains(t, jsonKeys(t, path), "offtarget_area_change", target)
	}
	// No series with a shape at s = 0: nothing to average.
	r, err = ComputeSlider("blueness", nil, series[2:3])
	require.NoError(t, err)
	require.Nil(t, r.OffTargetAreaChange)
	require.NotContains(t, r.Table(), "area change")
}

// The erased-value pairs' kept rates for size and background, against a direct count over random
// pairs (controls, whatever they do, do not count).
func TestComputeEraseKept(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 3))
	pick := func(vs []string) string { return vs[rng.IntN(len(vs))] }
	random := func() Readout {
		return Readout{Color: pick(toyworld.Colors()), Size: pick(toyworld.Sizes()), Background: pick(toyworld.Backgrounds()),
			Shape: pick(toyworld.Shapes()), Area: 0.1}
	}
	var pairs []ErasePair
	sizeKept, bgKept, targets := 0, 0, 0
	for i := range 200 {
		p := ErasePair{Prompt: "a red shape", Seed: uint64(i), Control: i%3 == 0, Before: random(), After: random()}
		if i%4 == 1 { // keep everything but the colour now and then
			p.After = p.Before
			p.After.Color = "blue"
		}
		pairs = append(pairs, p)
		if !p.Control {
			targets++
			if p.Before.Size == p.After.Size {
				sizeKept++
			}
			if p.Before.Background == p.After.Background {
				bgKept++
			}
		}
	}
	r, err := ComputeErase("color", "red", pairs, nil)
	require.NoError(t, err)
	require.Equal(t, targets, r.TargetSamples)
	require.InDelta(t, float64(sizeKept)/float64(targets), r.ErasedSizeKept, 1e-12)
	require.InDelta(t, float64(bgKept)/float64(targets), r.ErasedBackgroundKept, 1e-12)
	require.Less(t, r.ErasedSizeKept, 1.0)
	require.Greater(t, r.ErasedSizeKept, 0.0)

	// By hand: five erased pairs, one shrinks; one control turns black (not counted).
	small, black := ro(1), ro(1)
	small.Size, black.Background = "small", "black"
	hand := []ErasePair{
		{Prompt: "a red circle", Before: ro(1), After: small},
		{Prompt: "a red circle", Seed: 1, Before: ro(1), After: ro(1)},
		{Prompt: "a red circle", Seed: 2, Before: ro(1), After: ro(1)},
		{Prompt: "a red circle", Seed: 3, Before: ro(1), After: ro(1)},
		{Prompt: "a red circle", Seed: 4, Before: ro(1), After: ro(1)},
		{Prompt: "a blue circle", Control: true, Before: ro(1), After: black},
	}
	r, err = ComputeErase("color", "red", hand, nil)
	require.NoError(t, err)
	require.Equal(t, 0.8, r.ErasedSizeKept)
	require.Equal(t, 1.0, r.ErasedBackgroundKept)
	table := r.Table()
	require.Regexp(t, `erased_size_kept +0\.800\n`, table)
	require.Regexp(t, `erased_background_kept +1\.000\n`, table)
	path := filepath.Join(t.TempDir(), "eval.json")
	require.NoError(t, WriteJSON(path, r))
	m := jsonKeys(t, path)
	require.Equal(t, 0.8, m["erased_size_kept"])
	require.Equal(t, 1.0, m["erased_background_kept"])
}

// The tone attributes are numeric targets like the others: known to CheckTarget and CheckNames, with
// their categorical links.
func TestToneAttributes(t *testing.T) {
	r := Readout{BgLuminance: 0.75, Cast: -0.25, Background: "white"}
	require.Equal(t, 0.75, AttributeValue(r, "background_luminance"))
	require.Equal(t, -0.25, AttributeValue(r, "color_cast"))
	require.Contains(t, NumericAttributes(), "background_luminance")
	require.Contains(t, NumericAttributes(), "color_cast")
	require.NoError(t, CheckNames("slider", "background_luminance", []string{"color", "size"}, "", ""))
	require.NoError(t, CheckNames("slider", "color_cast", nil, "", ""))
	require.ErrorContains(t, CheckNames("slider", "colour_cast", nil, "", ""), "color_cast")
	require.Equal(t, []string{"color", "shape", "size"}, DefaultOffTarget("background_luminance"))
	require.Equal(t, CategoricalAttributes, DefaultOffTarget("color_cast"))
}
