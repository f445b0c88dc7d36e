package slider

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestObjectiveChecksAtLoad: every bad value of the new keys fails when the preset loads, naming the
// file, the line, the key and what is expected. Each case is a preset whose lines are numbered from 1.
func TestObjectiveChecksAtLoad(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "text.png"), "not a png")
	const prompt = "prompts:\n  - target: a cat\n" // lines 1–2
	for _, c := range []struct{ yaml, want string }{
		{prompt + "    mask: {png: m.png, boxes: [[0, 0, 8, 8]]}\n", "p.yaml:3: prompts[0].mask: png and boxes are given; set exactly one of png, boxes and region"},
		{prompt + "    mask: {invert: true}\n", "p.yaml:3: prompts[0].mask: empty; set one of png, boxes and region"},
		{prompt + "    mask: {png: missing.png}\n", "p.yaml:3: prompts[0].mask.png: mask png: stat " + filepath.Join(dir, "missing.png") + ": no such file"},
		{prompt + "    mask: {png: text.png}\n", "p.yaml:3: prompts[0].mask.png: mask png " + filepath.Join(dir, "text.png") + ": png: invalid format"},
		{prompt + "    mask:\n      pgn: m.png\n", `p.yaml:4: unknown key "prompts[0].mask.pgn" (did you mean "png"?); valid keys in prompts[0].mask: png, boxes, region, invert`},
		{prompt + "    resolution: 32\n    mask: {boxes: [[0, 0, 40, 8]]}\n",
			"p.yaml:4: prompts[0].mask.boxes[0]: invalid value [0 0 40 8] at resolution 32: outside the 32×32 image (height × width); want 0 <= x0 < x1 <= 32 and 0 <= y0 < y1 <= 32"},
		{prompt + "    mask: {boxes: [[4, 4, 4, 8]]}\n", "p.yaml:3: prompts[0].mask.boxes[0]: invalid value [4 4 4 8] at resolution 512: empty; want x0 < x1 and y0 < y1"},
		{prompt + "    mask: {boxes: [[0, 0, 8]]}\n", "p.yaml:3: prompts[0].mask.boxes[0]: expected a list of 4, got a list of 3"},
		{"targets:\n  - target_class: cat\n    positive: big cat\n    resolutions: [32, [16, 24]]\n    mask:\n      boxes: [[0, 0, 8, 20]]\n",
			"p.yaml:6: targets[0].mask.boxes[0]: invalid value [0 0 8 20] at resolution [16, 24]: outside the 16×24 image"},
		{prompt + "    mask: {region: sky}\n", `p.yaml:3: prompts[0].mask.region: invalid value "sky"; valid values: foreground, background`},
		{"model: {name_or_path: some/model}\n" + prompt + "    mask: {region: background}\n",
			`p.yaml:4: prompts[0].mask.region: region masks are the toy world's scene masks, and model.name_or_path is "some/model"; use png or boxes`},
		{prompt + "    preserve: -1\n", "p.yaml:3: prompts[0].preserve: invalid value -1; want >= 0 (λ_keep)"},
		{prompt + "anchors:\n  - neg_prompt: a dog\n", `p.yaml:4: missing required key "anchors[0].prompt"`},
		{prompt + "anchors:\n  - {prompt: a dog, multiplier: 0}\n", "p.yaml:4: anchors[0].multiplier: invalid value 0; want a non-zero number"},
		{prompt + "anchors: [{prompt: a dog}]\nanchor_weight: -1\n", "p.yaml:4: anchor_weight: invalid value -1; want >= 0 (λ_anchor)"},
		{prompt + "anchor_weight: 2\n", "p.yaml:3: anchor_weight: invalid value 2; there are no anchors to weight"},
		{prompt + "concept_mask: {enabled: true, threshold: 1}\n", "p.yaml:3: concept_mask.threshold: invalid value 1; want in (0, 1)"},
		{prompt + "concept_mask:\n  threshold: 0\n", "p.yaml:4: concept_mask.threshold: invalid value 0; want in (0, 1)"},
		{prompt + "concept_mask:\n  blur: -1\n", "p.yaml:4: concept_mask.blur: invalid value -1; want >= 0"},
		{prompt + "concept_mask:\n  tokens: [red, \"\"]\n", "p.yaml:4: concept_mask.tokens[1]: blank"},
		{prompt + "timestep_schedule:\n  - {step: 10, range: [0, 999]}\n", "p.yaml:4: timestep_schedule[0].step: invalid value 10; want 0 (the first window starts the training)"},
		{prompt + "timestep_schedule:\n  - {step: 0, range: [0, 999]}\n  - {step: 0, range: [0, 999]}\n", "p.yaml:5: timestep_schedule[1].step: invalid value 0; want > 0"},
		{prompt + "timestep_schedule:\n  - {step: 0, range: [900, 800]}\n", "p.yaml:4: timestep_schedule[0].range: invalid value [900 800]; want [lo, hi] with 0 <= lo <= hi <= 999"},
		{prompt + "timestep_schedule:\n  - {step: 0, range: [0, 1000]}\n", "p.yaml:4: timestep_schedule[0].range: invalid value [0 1000]"},
		{prompt + "timestep_schedule:\n  - {step: 0, range: [0]}\n", "p.yaml:4: timestep_schedule[0].range: invalid value [0]"},
		{prompt + "timestep_schedule:\n  - {range: [0, 999]}\n", `p.yaml:4: missing required key "timestep_schedule[0].step"`},
		{prompt + "train: {steps: 10}\ntimestep_schedule:\n  - {step: 0, range: [0, 999]}\n  - {step: 10, range: [0, 999]}\n",
			"p.yaml:6: timestep_schedule[1].step: invalid value 10; want < train.steps = 10"},
		{prompt + "network:\n  layer_multipliers:\n    mid block: 1\n", `p.yaml:5: network.layer_multipliers["mid block"]: bad selector "mid block"`},
		{prompt + "network:\n  layer_multipliers:\n    \"re:(\": 1\n", `p.yaml:5: network.layer_multipliers["re:("]: bad regexp in selector`},
		{prompt + "network:\n  layer_multipliers:\n    mid_block: -1\n", `p.yaml:5: network.layer_multipliers["mid_block"]: invalid value -1; want >= 0`},
		{prompt + "network:\n  layer_multipliers:\n    mid_block: high\n", `p.yaml:5: network.layer_multipliers["mid_block"]: expected a number, got "high" (a string)`},
		{prompt + "network:\n  layer_multipliers: [mid_block]\n", "p.yaml:4: network.layer_multipliers: expected a mapping, got a list"},
		{prompt + "network:\n  layer_multipliers:\n    mid_block:\n", `p.yaml:5: network.layer_multipliers["mid_block"]: expected a value, got null`},
		{prompt + "    action: style\n", `p.yaml:2: prompts[0].positive: invalid value "a cat"; action style needs positive: the style prompt`},
		{prompt + "    action: style\n    positive: watercolour\n    unconditional: x\n", `p.yaml:5: prompts[0].unconditional: invalid value "x"; action style does not use unconditional`},
	} {
		t.Run(c.want, func(t *testing.T) {
			_, err := ParsePreset([]byte(c.yaml), filepath.Join(dir, "p.yaml"))
			require.Error(t, err)
			assert.Contains(t, err.Error(), dir+string(filepath.Separator)+c.want)
		})
	}
}
