package slider

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestObjectivesPreset: testdata/objectives.yaml (every key of docs/ALGORITHMS.md §5) loads with its
// defaults, and its entries carry masks, λ_keep and the style mapping the trainer reads.
func TestObjectivesPreset(t *testing.T) {
	p, warnings, err := Load(td("objectives.yaml"))
	require.NoError(t, err)
	assert.Empty(t, warnings)

	pngPath, err := filepath.Abs(td("masks", "left_half.png"))
	require.NoError(t, err)
	assert.Equal(t, &Mask{PNG: pngPath}, p.Prompts[0].Mask, "relative to the preset's folder, made absolute")
	assert.Equal(t, 1.0, *p.Prompts[0].Preserve, "λ_keep defaults to 1 with a mask")
	assert.Equal(t, 3.0, *p.Prompts[1].Preserve)
	assert.Equal(t, &Mask{Boxes: [][4]float64{{4, 4, 12, 12}}}, p.Targets[0].Mask)
	assert.Equal(t, []Anchor{{Prompt: "a blue circle", NegPrompt: "a red circle", Multiplier: ptr(1.0)},
		{Prompt: "a green square", Multiplier: ptr(-1.0)}}, p.Anchors)
	assert.Equal(t, 0.5, *p.AnchorWeight)
	assert.Equal(t, ConceptMask{Enabled: true, Threshold: ptr(0.3), Blur: ptr(1), Tokens: []string{"red"}}, p.ConceptMask)
	assert.Equal(t, map[string]float64{"mid_block": 1.5, "up_blocks.*.attentions": 0.5, "attn2": 2}, p.Network.LayerMultipliers)

	es, err := p.Entries()
	require.NoError(t, err)
	require.Len(t, es, 3+4*2, "three prompts, a four-tuple target at two resolutions")
	assert.Equal(t, p.Prompts[0].Mask, es[0].Mask)
	assert.Equal(t, 1.0, es[0].Preserve)
	assert.Equal(t, &Mask{Region: RegionBackground}, es[1].Mask)
	assert.Equal(t, 3.0, es[1].Preserve)
	for _, e := range es[:2] {
		assert.False(t, e.Style)
	}
	for _, e := range es[3:] {
		assert.Equal(t, p.Targets[0].Mask, e.Mask, "every entry of a target carries its mask")
		assert.Equal(t, 1.0, e.Preserve)
	}

	// The masks resolve at each entry's resolution: the PNG's left half is the left half of any grid.
	w, err := es[0].Mask.Weights(2, 4, 32, 32, "", "")
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 1, 0, 0, 1, 1, 0, 0}, w)
	w, err = es[len(es)-1].Mask.Weights(2, 3, es[len(es)-1].Resolution.H(), es[len(es)-1].Resolution.W(), "", "")
	require.NoError(t, err)
	assert.Equal(t, []float32{0.25, 0.25, 0, 0.25, 0.25, 0}, w, "box [4, 4, 12, 12] on 16×24 px, 8 px cells")

	prompts := p.UniquePrompts()
	assert.Contains(t, prompts, "a blue circle", "anchors need their conditioning")
	assert.Contains(t, prompts, "a green square")
	assert.Equal(t, []string{"red"}, p.ConceptMask.TokensFor(es[0]))
}

// TestStyleEntry: a style entry maps content, style and the style-free reference so that the
// trainer's e_neu + SignedGuidance·(e_pos − e_unc) is e_content + η·(e_style − e_neutral), computed
// here directly on stand-in predictions.
func TestStyleEntry(t *testing.T) {
	p, err := ParsePreset([]byte("prompts:\n  - {target: a cat, action: style, positive: a cat in watercolour, neutral: a cat photo, guidance_scale: 0.5}\n"), "s.yaml")
	require.NoError(t, err)
	es, err := p.Entries()
	require.NoError(t, err)
	require.Len(t, es, 1)
	e := es[0]
	assert.True(t, e.Style)
	assert.Equal(t, ActionStyle, e.Action)
	assert.Equal(t, "a cat", e.Target)
	assert.Equal(t, "a cat", e.Neutral, "neutral = the content prompt")
	assert.Equal(t, "a cat in watercolour", e.Positive)
	assert.Equal(t, "a cat photo", e.Unconditional, "unconditional = the style-free reference")
	assert.Equal(t, 0.5, e.SignedGuidance(), "+η")
	assert.Equal(t, 0.0, e.Preserve)
	assert.Nil(t, e.Mask)

	pred := map[string][]float64{"a cat": {1, 2}, "a cat in watercolour": {4, -1}, "a cat photo": {0, 3}}
	for i := range 2 {
		y := pred[e.Neutral][i] + e.SignedGuidance()*(pred[e.Positive][i]-pred[e.Unconditional][i])
		direct := pred["a cat"][i] + 0.5*(pred["a cat in watercolour"][i]-pred["a cat photo"][i])
		assert.Equal(t, direct, y)
	}

	// The reference defaults to "", η to 1.
	p, err = ParsePreset([]byte("prompts:\n  - {target: a cat, action: style, positive: watercolour}\n"), "s.yaml")
	require.NoError(t, err)
	es, err = p.Entries()
	require.NoError(t, err)
	assert.Equal(t, "", es[0].Unconditional)
	assert.Equal(t, 1.0, es[0].SignedGuidance())
	assert.Equal(t, []string{"a cat", "watercolour", ""}, p.UniquePrompts())
}

// TestObjectiveDefaults: λ_keep is 1 with a mask and 0 without, λ_anchor 1 with anchors and 0 without,
// the concept mask's threshold 0.5 and blur 1; an anchor's multiplier 1; Normalize is idempotent.
func TestObjectiveDefaults(t *testing.T) {
	d := Defaults()
	assert.Equal(t, 0.0, *d.AnchorWeight)
	assert.Equal(t, ConceptMask{Threshold: ptr(0.5), Blur: ptr(1)}, d.ConceptMask)
	assert.Nil(t, d.TimestepRangeAt(0))

	p := &Preset{
		Prompts: []Prompt{{Target: "a", Mask: &Mask{Boxes: [][4]float64{{0, 0, 8, 8}}}}, {Target: "b"}},
		Targets: []Target{{TargetClass: "c", Positive: "d", Mask: &Mask{Region: RegionForeground}}},
		Anchors: []Anchor{{Prompt: "e"}},
	}
	require.NoError(t, p.Normalize())
	assert.Equal(t, 1.0, *p.Prompts[0].Preserve)
	assert.Equal(t, 0.0, *p.Prompts[1].Preserve)
	assert.Equal(t, 1.0, *p.Targets[0].Preserve)
	assert.Equal(t, 1.0, *p.AnchorWeight)
	assert.Equal(t, 1.0, *p.Anchors[0].Multiplier)
	before := p.JSON()
	require.NoError(t, p.Normalize())
	assert.Equal(t, before, p.JSON())
}

// TestTimestepSchedule: the window in force at each step, the schedule winning over timestep_range.
func TestTimestepSchedule(t *testing.T) {
	p, err := ParsePreset([]byte(`train: {steps: 100}
timestep_range: [0, 500]
timestep_schedule:
  - {step: 0, range: [800, 999]}
  - {step: 30, range: [500, 999]}
  - {step: 60, range: [0, 999]}
prompts: [{target: a}]
`), "ts.yaml")
	require.NoError(t, err)
	for step, want := range map[int][]int{0: {800, 999}, 29: {800, 999}, 30: {500, 999}, 59: {500, 999}, 60: {0, 999}, 99: {0, 999}} {
		assert.Equal(t, want, p.TimestepRangeAt(step), "step %d", step)
	}
	p.TimestepSchedule = nil
	assert.Equal(t, []int{0, 500}, p.TimestepRangeAt(10), "without a schedule: timestep_range")
}

// TestObjectivesRoundTrip: every new key appears in JSON() (TestRoundTrip checks that objectives.yaml
// survives Save/Load into another folder, where the mask PNG is still found).
func TestObjectivesRoundTrip(t *testing.T) {
	p, _, err := Load(td("objectives.yaml"))
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(p.JSON()), &m))
	for _, k := range []string{"anchors", "anchor_weight", "concept_mask", "timestep_schedule"} {
		assert.Contains(t, m, k)
	}
	assert.Contains(t, m["network"], "layer_multipliers")
	prompt := m["prompts"].([]any)[2].(map[string]any)
	assert.Equal(t, map[string]any{"boxes": []any{[]any{0.0, 0.0, 16.0, 32.0}, []any{16.0, 8.0, 24.5, 12.0}}, "invert": true}, prompt["mask"])
	assert.Equal(t, 1.0, prompt["preserve"])
	assert.Equal(t, "style", prompt["action"])
	assert.Contains(t, m["targets"].([]any)[0], "mask")
}

// TestConceptTokens: the tokens of an entry's concept mask are the given ones, else the words of its
// positive prompt missing from its neutral prompt (case-insensitive, without repeats or punctuation).
func TestConceptTokens(t *testing.T) {
	c := ConceptMask{}
	assert.Equal(t, []string{"Red", "shiny"}, c.TokensFor(Entry{Positive: "a Red, shiny circle; red", Neutral: "a circle"}))
	assert.Nil(t, c.TokensFor(Entry{Positive: "a circle", Neutral: "A circle"}))
	c.Tokens = []string{"crimson"}
	assert.Equal(t, []string{"crimson"}, c.TokensFor(Entry{Positive: "a red circle"}))
}

// TestLayerMultiplierSelectors: the selectors of network.selectors are accepted.
func TestLayerMultiplierSelectors(t *testing.T) {
	p, err := ParsePreset([]byte(`network:
  layer_multipliers: {mid_block: 2, down_blocks.1: 0, up_blocks.*.attentions: 0.5, attn2: 1, "re:attn[12]": 3}
prompts: [{target: a}]
`), "lm.yaml")
	require.NoError(t, err)
	assert.Len(t, p.Network.LayerMultipliers, 5)
	assert.Equal(t, 0.0, p.Network.LayerMultipliers["down_blocks.1"])
}
