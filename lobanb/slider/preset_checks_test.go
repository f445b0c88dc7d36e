package slider

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const evalBase = `prompts:
  - target: a circle
eval:
`

// TestEvalChecksAtLoad: every eval check that needs no model fails when the preset loads (it failed
// only after training before), with file, line and key.
func TestEvalChecksAtLoad(t *testing.T) {
	for _, c := range []struct{ eval, want string }{
		{"  kind: slider\n  target: area\n  prompts: [a]\n  strengths: [1, 2]\n",
			"p.yaml:7: eval.strengths: [1 2] has no 0; a slider evaluation measures every strength against strength 0"},
		{"  kind: slider\n  target: area\n  prompts: [a]\n  strengths: [0, 1, 0]\n", "p.yaml:7: eval.strengths: [0 1 0] lists 0 2 times"},
		{"  kind: slider\n  target: area\n  prompts: [a]\n  strengths: [0]\n", "p.yaml:7: eval.strengths: [0] has no non-zero strength"},
		{"  kind: slider\n  target: area\n  prompts: [a]\n  strengths: [0, .nan]\n", "p.yaml:7: eval.strengths[1]: invalid value NaN; want a finite number"},
		{"  kind: slider\n  target: area\n  prompts: [a]\n  seeds: [0, -1]\n", "p.yaml:7: eval.seeds[1]: invalid value -1; want >= 0"},
		{"  kind: slider\n  target: area\n  prompts: [a]\n  steps: -2\n", "p.yaml:7: eval.steps: invalid value -2; want >= 1"},
		{"  kind: slider\n  target: area\n  prompts: [a]\n  guidance_scale: -1\n", "p.yaml:7: eval.guidance_scale: invalid value -1; want >= 0"},
		{"  kind: slider\n  target: area\n  prompts: [a]\n  start_noise: 1001\n", "p.yaml:7: eval.start_noise: invalid value 1001; want in [0, 1000] (0 = off)"},
		{"  kind: erase\n  value: red\n  prompts: [a]\n  controls: [b]\n  strength: .inf\n", "p.yaml:8: eval.strength: invalid value +Inf"},
		{"  kind: slider\n  target: area\n", "p.yaml:3: eval.prompts: empty; an evaluation needs prompts"},
		{"  kind: slider\n  prompts: [a]\n", "p.yaml:3: eval.target: empty"},
		{"  kind: erase\n  prompts: [a]\n  controls: [b]\n", "p.yaml:3: eval.value: empty"},
		{"  kind: erase\n  value: red\n  prompts: [a]\n", "p.yaml:3: eval.controls: empty"},
		{"  kind: slidr\n", `p.yaml:4: eval.kind: invalid value "slidr"; valid values: "", slider, erase`},
	} {
		t.Run(c.want, func(t *testing.T) {
			_, err := ParsePreset([]byte(evalBase+c.eval), "p.yaml")
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	p, err := ParsePreset([]byte(evalBase+"  kind: slider\n  target: area\n  prompts: [a]\n"), "p.yaml")
	require.NoError(t, err)
	assert.Equal(t, []float64{-2, -1, 0, 1, 2}, p.Eval.Strengths)
	assert.Equal(t, []int{0, 1, 2, 3}, p.Eval.Seeds)
}

// TestSaveEvery: train.save_every (a loadable LoRA every N steps) defaults to 0 (off) and must be >= 0.
func TestSaveEvery(t *testing.T) {
	p, err := ParsePreset([]byte("train:\n  save_every: 50\nprompts:\n  - target: dog\n"), "p.yaml")
	require.NoError(t, err)
	assert.Equal(t, 50, p.Train.SaveEvery)
	assert.Equal(t, 0, Defaults().Train.SaveEvery)
	_, err = ParsePreset([]byte("train:\n  save_every: -1\nprompts:\n  - target: dog\n"), "p.yaml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "p.yaml:2: train.save_every: invalid value -1; want >= 0 (0 = off)")
}

// TestHomeExpansion: "~" in a preset's path keys and in the importers' file keys is the user's home
// (HOME here); other paths are left alone.
func TestHomeExpansion(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	p, err := ParsePreset([]byte(`model:
  name_or_path: ~/models/sd15
  merge_loras: [{path: ~/style.safetensors}, {path: styles/b.safetensors}]
output:
  dir: "~"
prompts:
  - target: dog
`), "p.yaml")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(home, "models", "sd15"), p.Model.NameOrPath)
	assert.Equal(t, filepath.Join(home, "style.safetensors"), p.Model.MergeLoRAs[0].Path)
	assert.Equal(t, "styles/b.safetensors", p.Model.MergeLoRAs[1].Path, "relative paths stay relative")
	assert.Equal(t, home, p.Output.Dir)
	for _, s := range []string{"org/repo", "~bob/x", "a/~/b", ""} {
		got, err := ExpandHome(s)
		require.NoError(t, err)
		assert.Equal(t, s, got)
	}

	// LECO: prompts_file, pretrained_model.name_or_path and save.path.
	writeFile(t, filepath.Join(home, "leco", "prompts.yaml"), "- target: dog\n")
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, cfg, "prompts_file: ~/leco/prompts.yaml\npretrained_model: {name_or_path: ~/m}\nnetwork: {}\nsave: {path: ~/out}\n")
	p, warnings, err := ImportLECO(cfg)
	require.NoError(t, err)
	assert.Empty(t, warnings)
	assert.Equal(t, "dog", p.Prompts[0].Target)
	assert.Equal(t, filepath.Join(home, "m"), p.Model.NameOrPath)
	assert.Equal(t, filepath.Join(home, "out"), p.Output.Dir)

	// sd-scripts: neutral_prompt_file.
	writeFile(t, filepath.Join(home, "n.txt"), "a neutral\n")
	toml := filepath.Join(t.TempDir(), "p.toml")
	writeFile(t, toml, "neutral_prompt_file = \"~/n.txt\"\n\n[[targets]]\ntarget_class = \"\"\npositive = \"big\"\n")
	p, _, err = Load(toml)
	require.NoError(t, err)
	assert.Equal(t, []string{"a neutral"}, p.Targets[0].Neutrals)
}
