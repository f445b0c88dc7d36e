package slider

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
}

// lecoWith writes a LECO config whose train / save / logging / other sections hold extra (YAML
// lines, two-space indented under their section) next to a one-entry prompts file, and imports it.
func lecoWith(t *testing.T, sections map[string]string) (*Preset, []string, error) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "prompts.yaml"), "- target: dog\n")
	cfg := "prompts_file: prompts.yaml\npretrained_model:\n  name_or_path: some/model\n" + sections["pretrained_model"] +
		"network:\n  rank: 4\n" + sections["network"]
	for _, s := range []string{"train", "save", "logging", "other"} {
		if sections[s] != "" {
			cfg += s + ":\n" + sections[s]
		}
	}
	cfg += sections["top"]
	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, cfg)
	return ImportLECO(path)
}

// TestLECOKeyTable: every key of LECO's RootConfig is honoured, ignored with a warning, or an error,
// as SCHEMA.md's table says.
func TestLECOKeyTable(t *testing.T) {
	for _, c := range []struct {
		name     string
		sections map[string]string
		warn     string // a warning containing this, or
		err      string // an error containing this
		check    func(t *testing.T, p *Preset)
	}{
		{name: "per_steps is save_every", sections: map[string]string{"save": "  per_steps: 50\n"},
			check: func(t *testing.T, p *Preset) { assert.Equal(t, 50, p.Train.SaveEvery) }},
		{name: "per_steps 0", sections: map[string]string{"save": "  per_steps: 0\n"}, err: "save.per_steps: invalid value 0; want >= 1"},
		{name: "save.precision unused", sections: map[string]string{"save": "  precision: fp32\n"}, warn: "save.precision: fp32 is unused by LECO",
			check: func(t *testing.T, p *Preset) { assert.Equal(t, "bfloat16", p.Train.SaveDType) }},
		{name: "clip_skip unused", sections: map[string]string{"pretrained_model": "  clip_skip: 2\n"}, warn: "pretrained_model.clip_skip: 2 is parsed but not used by LECO"},
		{name: "v2 detected", sections: map[string]string{"pretrained_model": "  v2: true\n"},
			check: func(t *testing.T, p *Preset) { assert.Equal(t, "auto", p.Model.Kind) }},
		{name: "use_wandb", sections: map[string]string{"logging": "  use_wandb: true\n"}, warn: "logging.use_wandb: ignored"},
		{name: "verbose", sections: map[string]string{"logging": "  verbose: true\n"}, warn: "logging.verbose: ignored"},
		{name: "logging off", sections: map[string]string{"logging": "  use_wandb: false\n  verbose: false\n"}},
		{name: "use_xformers", sections: map[string]string{"other": "  use_xformers: true\n"}, warn: "other.use_xformers: ignored"},
		{name: "unknown top-level key", sections: map[string]string{"top": "seed: 3\n"}, warn: `unknown key "seed" ignored (LECO's pydantic config ignores it`},
		{name: "unknown nested key, suggestion", sections: map[string]string{"train": "  learning_rate: 1.0\n"},
			warn:  `unknown key "train.learning_rate" ignored (did you mean "lr"?)`,
			check: func(t *testing.T, p *Preset) { assert.Equal(t, 1e-4, p.Train.LR, "LECO trains at its default lr") }},
		{name: "noise_scheduler ddpm", sections: map[string]string{"train": "  noise_scheduler: ddpm\n"},
			check: func(t *testing.T, p *Preset) { assert.Equal(t, "ddpm", p.DenoiseScheduler) }},
		{name: "noise_scheduler euler_a", sections: map[string]string{"train": "  noise_scheduler: euler_a\n"}, err: `train.noise_scheduler: "euler_a" is not supported`},
		{name: "lr_scheduler linear", sections: map[string]string{"train": "  lr_scheduler: linear\n"}, err: `LECO cannot run "linear"`},
		{name: "lr_scheduler step", sections: map[string]string{"train": "  lr_scheduler: step\n"}, err: `train.lr_scheduler: "step" is not supported: LECO's torch StepLR`},
		{name: "lr_scheduler cosine_with_restarts", sections: map[string]string{"train": "  lr_scheduler: cosine_with_restarts\n"}, err: "CosineAnnealingWarmRestarts"},
		{name: "adam8bit", sections: map[string]string{"train": "  optimizer: Adam8bit\n"}, warn: "train.optimizer: Adam8bit: bitsandbytes' 8-bit optimizer states are not ported",
			check: func(t *testing.T, p *Preset) { assert.Equal(t, 0.0, *p.Train.WeightDecay) }},
		{name: "adamw8bit", sections: map[string]string{"train": "  optimizer: AdamW8bit\n"}, err: "LECO stops on it"},
		{name: "prodigy", sections: map[string]string{"train": "  optimizer: prodigy\n"}, err: "no learning-rate-free optimizer"},
		{name: "optimizer_args honoured", sections: map[string]string{"train": "  optimizer_args: \"eps=1e-6 amsgrad=False\"\n"},
			check: func(t *testing.T, p *Preset) { assert.Equal(t, 1e-6, p.Train.Eps) }},
		{name: "optimizer_args fused", sections: map[string]string{"train": "  optimizer_args: \"fused=True\"\n"}, warn: "train.optimizer_args: fused=True ignored"},
		{name: "optimizer_args amsgrad", sections: map[string]string{"train": "  optimizer_args: \"amsgrad=True\"\n"}, err: "amsgrad=True is not supported"},
		{name: "optimizer_args lion eps", sections: map[string]string{"train": "  optimizer: lion\n  optimizer_args: \"eps=1e-6\"\n"},
			err: `unsupported optimizer argument "eps" for lion; valid arguments: weight_decay, betas, use_triton`},
		{name: "network.type", sections: map[string]string{"network": "  type: loha\n"}, err: `network.type: invalid value "loha"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, warnings, err := lecoWith(t, c.sections)
			if c.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.err)
				assert.Contains(t, err.Error(), "config.yaml:", "the error names the file and line")
				return
			}
			require.NoError(t, err)
			if c.warn == "" {
				assert.Empty(t, warnings)
			} else {
				require.Len(t, warnings, 1, strings.Join(warnings, "\n"))
				assert.Contains(t, warnings[0], c.warn)
				assert.Contains(t, warnings[0], "config.yaml:", "the warning names the file and line")
			}
			if c.check != nil {
				c.check(t, p)
			}
		})
	}
}

// TestPromptsFileSearch: a config copied next to its prompts file (prompts_file still written from
// the anchor's checkout root) finds it, with a warning; a missing one lists every place tried.
func TestPromptsFileSearch(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "loba_test_prompts_7f3a.yaml"), "- target: dog\n")
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, "prompts_file: ./examples/loba_test_prompts_7f3a.yaml\npretrained_model: {name_or_path: m}\nnetwork: {}\n")
	p, warnings, err := ImportLECO(cfg)
	require.NoError(t, err)
	assert.Equal(t, "dog", p.Prompts[0].Target)
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], cfg+":1: prompts_file: \"./examples/loba_test_prompts_7f3a.yaml\" not found; using "+filepath.Join(dir, "loba_test_prompts_7f3a.yaml"))

	writeFile(t, cfg, "prompts_file: ./examples/missing_7f3a.yaml\npretrained_model: {name_or_path: m}\nnetwork: {}\n")
	_, _, err = ImportLECO(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), cfg+`:1: prompts_file: prompts file "./examples/missing_7f3a.yaml" not found (tried `+filepath.Join(dir, "examples", "missing_7f3a.yaml")+", ./examples/missing_7f3a.yaml, ")
}
