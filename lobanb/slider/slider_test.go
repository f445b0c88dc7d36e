package slider

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/unet"
	"github.com/loba-dev/loba/models/weights"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func td(parts ...string) string { return filepath.Join(append([]string{"testdata"}, parts...)...) }

// entry builds an expected Entry (Source and Group are checked separately where they matter).
func entry(target, pos, unc, neu, action string, g, m float64, res Resolution) Entry {
	return Entry{Target: target, Positive: pos, Unconditional: unc, Neutral: neu, Action: action,
		Guidance: g, Multiplier: m, Weight: 1, Resolution: res, BatchSize: 1}
}

// stripEntries clears Source and Group, for comparing prompt contents only.
func stripEntries(es []Entry) []Entry {
	out := make([]Entry, len(es))
	for i, e := range es {
		e.Source, e.Group = "", 0
		out[i] = e
	}
	return out
}

func TestLOBAExample(t *testing.T) {
	p, warnings, err := Load(td("loba.yaml"))
	require.NoError(t, err)
	assert.Empty(t, warnings)
	assert.Equal(t, td("loba.yaml"), p.File())

	// Given values.
	assert.Equal(t, ObjectiveSlider, p.Objective)
	assert.Equal(t, ModeLOBA, p.Mode)
	assert.Equal(t, 10, p.MaxDenoisingSteps)
	assert.Equal(t, 50, p.Train.Steps)
	assert.Equal(t, 1e-3, p.Train.LR)
	assert.Equal(t, "cosine", p.Train.LRScheduler)
	assert.Equal(t, Square(32), p.Train.Resolution)
	assert.Equal(t, []float64{-1, 0, 1}, p.Sample.Strengths)
	assert.Equal(t, Output{Name: "age_slider", Dir: "out"}, p.Output)
	// Defaults.
	assert.False(t, *p.DenoiseWithAdapter, "mode loba: adapter off during the partial denoise")
	assert.Equal(t, 1, *p.MinDenoisingSteps, "k ∈ [1, N-1] as the anchors")
	assert.Equal(t, "model", p.DenoiseSchedulerConfig)
	assert.Equal(t, "ddim", p.DenoiseScheduler)
	assert.Equal(t, 1e-2, *p.Train.WeightDecay)
	assert.Equal(t, []float64{0.9, 0.999}, p.Train.Betas)
	assert.Equal(t, 1e-8, p.Train.Eps)
	assert.Equal(t, "l2", p.Train.LossType)
	assert.Equal(t, "auto", p.Train.DType)
	assert.Equal(t, "float16", p.Train.SaveDType)
	assert.Equal(t, 2, p.Network.ConvRank)
	assert.Equal(t, 1.0, p.Network.ConvAlpha)
	assert.Equal(t, 7.0, p.Sample.GuidanceScale)

	es, err := p.Entries()
	require.NoError(t, err)
	require.Len(t, es, 1+2*4+2)
	r32 := Square(32)
	want := []Entry{
		entry("van gogh", "van gogh", "", "", ActionErase, 1, 1, Square(16)),
		// targets[0], neutral "person": sd-scripts' four tuples.
		entry("person", "young person", "old person", "person", ActionErase, 2, 1, r32),
		entry("person", "old person", "young person", "person", ActionEnhance, 2, 1, r32),
		entry("person", "old person", "young person", "person", ActionErase, 2, -1, r32),
		entry("person", "young person", "old person", "person", ActionEnhance, 2, -1, r32),
		// neutral "photo of a person".
		entry("person", "young person", "old person", "photo of a person", ActionErase, 2, 1, r32),
		entry("person", "old person", "young person", "photo of a person", ActionEnhance, 2, 1, r32),
		entry("person", "old person", "young person", "photo of a person", ActionErase, 2, -1, r32),
		entry("person", "young person", "old person", "photo of a person", ActionEnhance, 2, -1, r32),
		// targets[1]: only P, neutral defaults to target_class, η defaults to 1 (objective slider).
		entry("person", "smiling person", "", "person", ActionEnhance, 1, 1, r32),
		entry("person", "smiling person", "", "person", ActionErase, 1, -1, r32),
	}
	assert.Equal(t, want, stripEntries(es))
	groups := make([]int, len(es))
	for i, e := range es {
		groups[i] = e.Group
	}
	assert.Equal(t, []int{0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3}, groups)
	assert.Equal(t, "targets[1]", es[10].Source)
	assert.Equal(t, 1.0, es[1].SignedGuidance()*-0.5, "erase: −g")

	gs, err := p.Groups()
	require.NoError(t, err)
	require.Len(t, gs, 4)
	assert.Len(t, gs[1], 4)
	assert.Equal(t, "photo of a person", gs[2][3].Neutral)
	p.Mode = ModeLECO
	gs, err = p.Groups()
	require.NoError(t, err)
	assert.Len(t, gs, 11, "mode leco: one entry per step")
	p.Mode = ModeLOBA

	assert.Equal(t, []string{"van gogh", "", "person", "young person", "old person", "photo of a person",
		"smiling person", "a photo of a person"}, p.UniquePrompts())
}

// resolveTiny resolves a preset's network on the tiny SD1.5 fixture UNet.
func resolveTiny(t *testing.T, n *Network) *lora.Network {
	t.Helper()
	cfg, err := unet.LoadConfig(filepath.Join(fixtures.Root(t), "unet", "sd15_tiny", "config.json"))
	require.NoError(t, err)
	m, err := unet.New(cfg)
	require.NoError(t, err)
	decl, err := weights.Declared(m.Declare)
	require.NoError(t, err)
	net, err := lora.Resolve("unet", decl, n.LoRATargets())
	require.NoError(t, err)
	return net
}

func TestSelectorsResolve(t *testing.T) {
	p, err := LoadPreset(td("loba.yaml"))
	require.NoError(t, err)
	net := resolveTiny(t, &p.Network)
	q := net.Module("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q")
	require.NotNil(t, q)
	assert.Equal(t, 2, q.Rank)
	assert.Equal(t, 1.0, q.LRScale)
	k := net.Module("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k")
	require.NotNil(t, k)
	assert.Equal(t, 4, k.Rank)
	assert.Equal(t, 0.5, k.LRScale)
	assert.Nil(t, net.Module("up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"), "excluded by up_blocks.1")
}

func TestLECOImport(t *testing.T) {
	p, warnings, err := Load(td("leco", "config.yaml")) // detected through prompts_file
	require.NoError(t, err)
	assert.Empty(t, warnings)
	assert.Equal(t, ObjectiveLECO, p.Objective)
	assert.Equal(t, ModeLECO, p.Mode)
	assert.True(t, *p.DenoiseWithAdapter)
	assert.Equal(t, 3.0, *p.DenoiseGuidance)
	assert.Equal(t, 50, p.MaxDenoisingSteps)
	assert.Equal(t, 1, *p.MinDenoisingSteps, "mode leco: k ∈ [1, N-1] as LECO")
	assert.Equal(t, "ddim", p.DenoiseScheduler)
	assert.Equal(t, "anchor", p.DenoiseSchedulerConfig)
	assert.Equal(t, "leading", p.TimestepSpacing)
	assert.Equal(t, Model{NameOrPath: "CompVis/stable-diffusion-v1-4", Kind: "auto", PredictionType: "epsilon", HiddenState: "auto"}, p.Model)
	assert.Equal(t, "lierla", p.Network.Targets)
	assert.Equal(t, 4, p.Network.Rank)
	assert.Equal(t, 1.0, *p.Network.Alpha)
	assert.Empty(t, p.Network.Selectors)
	assert.Equal(t, 500, p.Train.Steps)
	assert.Equal(t, 1e-4, p.Train.LR)
	assert.Equal(t, "adamw", p.Train.Optimizer)
	assert.Equal(t, "constant", p.Train.LRScheduler)
	assert.Equal(t, "bfloat16", p.Train.DType)
	assert.Equal(t, "bfloat16", p.Train.SaveDType)
	assert.Equal(t, 200, p.Train.SaveEvery, "save.per_steps: a loadable LoRA every 200 steps")
	assert.Equal(t, 0, p.Train.CheckpointEvery)
	assert.Equal(t, Output{Name: "van_gogh", Dir: "./output"}, p.Output)

	es, err := p.Entries()
	require.NoError(t, err)
	want := []Entry{
		entry("van gogh", "van gogh", "", "", ActionErase, 1, 1, Square(512)),
		entry("cat ears", "cat ears", "", "", ActionEnhance, 2, 1, Square(512)),
	}
	want[0].BatchSize = 2
	assert.Equal(t, want, stripEntries(es))
	assert.Equal(t, []string{"van gogh", "", "cat ears"}, p.UniquePrompts())
}

func TestLECOImportQuirks(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prompts.yaml"), []byte("- target: dog\n"), 0o644))
	cfg := `prompts_file: prompts.yaml
pretrained_model: {name_or_path: some/model, v_pred: true, clip_skip: 2}
network: {type: c3lier, rank: 8, alpha: 4, training_method: xattn}
train: {precision: fp16, noise_scheduler: ddpm, lr: "2e-4", optimizer: Adam, lr_scheduler: cosine,
        optimizer_args: "weight_decay=0.1 betas=(0.8,0.9)"}
`
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	p, warnings, err := ImportLECO(path)
	require.NoError(t, err)
	assert.Equal(t, "v_prediction", p.Model.PredictionType)
	assert.Equal(t, "ddpm", p.DenoiseScheduler)
	assert.Equal(t, 2e-4, p.Train.LR, "pydantic coerces the string")
	assert.Equal(t, "cosine", p.Train.LRScheduler)
	assert.InDelta(t, 2e-6, p.Train.MinLR, 1e-18)
	assert.Equal(t, 0.1, *p.Train.WeightDecay)
	assert.Equal(t, []float64{0.8, 0.9}, p.Train.Betas)
	assert.Equal(t, "float32", p.Train.DType)
	assert.Equal(t, "float16", p.Train.SaveDType)
	assert.Equal(t, "c3lier", p.Network.Targets)
	require.Len(t, p.Network.Selectors, 3)
	net := resolveTiny(t, &p.Network)
	assert.NotNil(t, net.Module("mid_block.attentions.0.transformer_blocks.0.attn2.to_v"))
	assert.Nil(t, net.Module("mid_block.attentions.0.transformer_blocks.0.attn1.to_v"))
	assert.Nil(t, net.Module("mid_block.resnets.0.conv1"))
	all := strings.Join(warnings, "\n")
	assert.Contains(t, all, "clip_skip")
	assert.Contains(t, all, "selects no module at all in LECO")
	assert.Contains(t, all, "float16 training is not supported")
	assert.Contains(t, all, "config.yaml:3: network.training_method")
}

func TestConceptSlidersImport(t *testing.T) {
	p, warnings, err := ImportConceptSliders(td("conceptsliders", "prompts.yaml"), td("conceptsliders", "config.yaml"))
	require.NoError(t, err)
	all := strings.Join(warnings, "\n")
	assert.Contains(t, all, td("conceptsliders", "prompts.yaml")+":15: prompts[1].guidance: ignored, as Concept Sliders ignores it")
	assert.Contains(t, all, "guidance_scale stays 1.0")
	assert.Contains(t, all, "prompts[1].rank: ignored")

	assert.Equal(t, ObjectiveSliderText, p.Objective)
	assert.Equal(t, ModeLECO, p.Mode)
	assert.True(t, *p.DenoiseWithAdapter)
	assert.Equal(t, "anchor", p.DenoiseSchedulerConfig)
	assert.Equal(t, 1000, p.Train.Steps)
	assert.Equal(t, 2e-4, p.Train.LR)
	assert.Equal(t, "adamw", p.Train.Optimizer)
	assert.Equal(t, "bfloat16", p.Train.SaveDType)
	assert.Equal(t, "c3lier", p.Network.Targets)

	es, err := p.Entries()
	require.NoError(t, err)
	want := []Entry{
		entry("male person", "male person, very old", "male person, very young", "male person", ActionEnhance, 4, 1, Square(512)),
		entry("female person", "female person, very old, wrinkly, gray hair, aged skin",
			"female person, very young, smooth skin, youthful", "female person", ActionEnhance, 1, 1, Square(512)),
	}
	assert.Equal(t, want, stripEntries(es))

	// noxattn + c3lier as Concept Sliders selects: attn1 and the conv blocks, not attn2, ff, proj_in/out.
	net := resolveTiny(t, &p.Network)
	for path, wantOK := range map[string]bool{
		"down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q":     true,
		"down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0": true,
		"down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k":     false,
		"down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj":  false,
		"down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2":       false,
		"down_blocks.0.attentions.0.proj_in":                             false,
		"up_blocks.1.attentions.1.proj_out":                              false,
		"down_blocks.1.resnets.0.conv1":                                  true,
		"down_blocks.0.downsamplers.0.conv":                              true,
	} {
		assert.Equal(t, wantOK, net.Module(path) != nil, path)
	}

	// The bare prompts file is recognised as Concept Sliders' by its guidance key.
	q, warnings, err := Load(td("conceptsliders", "prompts.yaml"))
	require.NoError(t, err)
	assert.Equal(t, ObjectiveSliderText, q.Objective)
	assert.Contains(t, strings.Join(warnings, "\n"), "no config given")

	// --attributes 'male, female'
	r, _, err := ImportConceptSliders(td("conceptsliders", "prompts.yaml"), "", "old", "young")
	require.NoError(t, err)
	es, err = r.Entries()
	require.NoError(t, err)
	require.Len(t, es, 4)
	assert.Equal(t, "young male person", es[1].Target)
	assert.Equal(t, "young male person, very young", es[1].Unconditional)
	assert.Equal(t, "old female person", es[2].Neutral)
}

func TestSDScriptsImport(t *testing.T) {
	p, warnings, err := Load(td("sdscripts", "leco.toml"))
	require.NoError(t, err)
	all := strings.Join(warnings, "\n")
	assert.Contains(t, all, td("sdscripts", "leco.toml")+":23: targets: ignored, as sd-scripts ignores [[targets]] when the file has [[prompts]]")
	assert.Contains(t, all, "command line")
	assert.Equal(t, ObjectiveLECO, p.Objective, "the [[targets]] are dropped, as sd-scripts drops them")
	assert.Empty(t, p.Targets)
	assert.Equal(t, ModeLECO, p.Mode)
	assert.Equal(t, "ddpm", p.DenoiseScheduler)
	assert.Equal(t, 40, p.MaxDenoisingSteps)
	assert.True(t, *p.DenoiseWithAdapter)
	assert.Equal(t, 1600, p.Train.Steps)
	assert.Equal(t, 1.0, p.Train.MaxGradNorm)
	assert.Equal(t, "leco", p.Output.Name)

	es, err := p.Entries()
	require.NoError(t, err)
	r := Square(512)
	want := []Entry{
		entry("van gogh", "van gogh", "", "", ActionErase, 1, 1, r),
		entry("detailed", "detailed", "", "", ActionEnhance, 1.5, 1, r), // top-level guidance_scale default
	}
	assert.Equal(t, want, stripEntries(es))

	p, _, err = ImportSDScriptsTOML(td("sdscripts", "slider.toml"))
	require.NoError(t, err)
	assert.Equal(t, []string{"photo of a person", "cinematic portrait"}, p.Targets[0].Neutrals)
	es, err = p.Entries()
	require.NoError(t, err)
	require.Len(t, es, 2*4+2*2)
	hw := Resolution{512, 768}
	assert.Equal(t, entry("", "low detail", "high detail", "photo of a person", ActionErase, 2, 1, hw), stripEntries(es)[0])
	assert.Equal(t, entry("", "high detail", "low detail", "cinematic portrait", ActionErase, 2, -1, hw), stripEntries(es)[6])
	// Only N, own neutral, two resolutions: (N, "", erase, +m), (N, "", enhance, −m) per resolution.
	t1 := func(action string, m float64, res Resolution) Entry {
		e := entry("1girl", "1girl, short hair", "", "1girl", action, 2, m, res)
		e.Weight = 2
		return e
	}
	assert.Equal(t, []Entry{
		t1(ActionErase, 0.5, Square(512)), t1(ActionEnhance, -0.5, Square(512)),
		t1(ActionErase, 0.5, Resolution{768, 512}), t1(ActionEnhance, -0.5, Resolution{768, 512}),
	}, stripEntries(es[8:]))
}

func TestTextSliderTargets(t *testing.T) {
	p, err := ParsePreset([]byte(`
objective: slider_text
targets:
  - target_class: male person
    positive: male person, very old
    negative: male person, very young
    neutrals: [male person, a man]
`), "inline.yaml")
	require.NoError(t, err)
	assert.Equal(t, ModeLOBA, p.Mode)
	es, err := p.Entries()
	require.NoError(t, err)
	r := Square(512)
	assert.Equal(t, []Entry{
		entry("male person", "male person, very old", "male person, very young", "male person", ActionEnhance, 4, 1, r),
		entry("male person", "male person, very old", "male person, very young", "a man", ActionEnhance, 4, 1, r),
	}, stripEntries(es))
	assert.Equal(t, 0, es[0].Group)
	assert.Equal(t, 1, es[1].Group)
}

func TestBadPresets(t *testing.T) {
	for _, c := range []struct {
		file string
		want []string
	}{
		{"typo_top.yaml", []string{"typo_top.yaml:5:", `unknown key "trian"`, `did you mean "train"?`,
			"valid keys at the top level: model, objective, mode,", "network, train, sample, eval, output, prompts, targets"}},
		{"typo_nested.yaml", []string{"typo_nested.yaml:5:", `unknown key "train.lerning_rate"`, `did you mean "lr"?`,
			"valid keys in train: steps, lr, optimizer, weight_decay,"}},
		{"typo_prompt.yaml", []string{"typo_prompt.yaml:5:", `unknown key "prompts[0].postive"`, `did you mean "positive"?`,
			"valid keys in prompts[0]: target, positive, unconditional, neutral, action,"}},
		{"bad_enum.yaml", []string{"bad_enum.yaml:5:", "train.optimizer", `invalid value "adam"`, "valid values: adamw, lion, sgd"}},
		{"wrong_type.yaml", []string{"wrong_type.yaml:4:", "train.steps", `expected an integer, got "many" (a string)`}},
		{"bad_resolution.yaml", []string{"bad_resolution.yaml:4:", "train.resolution", "expected a list of two integers [height, width], got a list [32]"}},
		{"bad_values.yaml", []string{
			"bad_values.yaml:3: network.rank: invalid value 0; want >= 1",
			"bad_values.yaml:5: train.lr: invalid value -1; want > 0",
			`bad_values.yaml:8: prompts[0].action: invalid value "remove"; valid values: erase, enhance`,
			"bad_values.yaml:10: targets[0]: a slider target needs a positive or a negative prompt"}},
		{"sd_pair_unknown_key.toml", []string{"sd_pair_unknown_key.toml:6:", `unknown key "prompts[0].postive"`,
			`did you mean "positive"?`, "sd-scripts stops on it", "valid keys in prompts[0]: target, positive,"}},
		{"sd_pair_misplaced_key.toml", []string{"sd_pair_misplaced_key.toml:5:", `unknown key "prompts[0].negative"`,
			"sd-scripts stops on it", "valid keys in prompts[0]: target, positive, unconditional,"}},
		{"leco_lr_scheduler.yaml", []string{"leco_lr_scheduler.yaml:8: train.lr_scheduler:", `LECO cannot run "linear"`, "TypeError"}},
	} {
		t.Run(c.file, func(t *testing.T) {
			_, _, err := Load(td("bad", c.file))
			require.Error(t, err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, f := range []string{"loba.yaml", "objectives.yaml", "leco/config.yaml", "conceptsliders/config.yaml", "sdscripts/leco.toml", "sdscripts/slider.toml"} {
		t.Run(f, func(t *testing.T) {
			p, _, err := Load(td(f))
			require.NoError(t, err)
			out := filepath.Join(t.TempDir(), "preset.yaml")
			require.NoError(t, p.Save(out))
			q, warnings, err := Load(out)
			require.NoError(t, err)
			assert.Empty(t, warnings)
			pc, qc := *p, *q
			pc.src, qc.src = nil, nil
			assert.Equal(t, pc, qc)
			assert.Equal(t, p.JSON(), q.JSON())
			pe, err := p.Entries()
			require.NoError(t, err)
			qe, err := q.Entries()
			require.NoError(t, err)
			assert.Equal(t, pe, qe)

			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(p.JSON()), &m))
			assert.Equal(t, p.Objective, m["objective"])
		})
	}
}

func TestDefaultsAndNormalize(t *testing.T) {
	d := Defaults()
	assert.Equal(t, ModeLOBA, d.Mode)
	assert.Equal(t, ObjectiveLECO, d.Objective)
	assert.Equal(t, 50, d.MaxDenoisingSteps)
	assert.Equal(t, 3.0, *d.DenoiseGuidance)
	assert.Equal(t, 4, d.Network.Rank)
	assert.Equal(t, 1.0, *d.Network.Alpha)
	assert.Equal(t, 500, d.Train.Steps)
	assert.Equal(t, 1e-4, d.Train.LR)
	assert.Equal(t, []float64{-2, 0, 2}, d.Sample.Strengths)
	assert.Error(t, d.Normalize(), "no prompts")

	// Built in code: zero values mean defaults; mode leco turns the adapter on during the denoise;
	// clip_skip folds into hidden_state; lion gets its betas.
	p := &Preset{Mode: ModeLECO, Model: Model{ClipSkip: 2}, Train: Train{Optimizer: "lion"},
		Prompts: []Prompt{{Target: "x", Positive: ptr("")}}}
	require.NoError(t, p.Normalize())
	assert.True(t, *p.DenoiseWithAdapter)
	assert.Equal(t, "anchor", p.DenoiseSchedulerConfig)
	assert.Equal(t, "penultimate", p.Model.HiddenState)
	assert.Zero(t, p.Model.ClipSkip)
	assert.Equal(t, []float64{0.9, 0.99}, p.Train.Betas)
	assert.Equal(t, 0.0, *p.Train.WeightDecay)
	assert.Equal(t, "", *p.Prompts[0].Positive, "an explicit empty positive stays empty")
	before := p.JSON()
	require.NoError(t, p.Normalize())
	assert.Equal(t, before, p.JSON(), "Normalize is idempotent")

	p.Model.HiddenState, p.Model.ClipSkip = "last", 2
	assert.ErrorContains(t, p.Normalize(), "contradicts hidden_state")
}

func TestSDScriptsForms(t *testing.T) {
	write := func(name, text string) string {
		path := filepath.Join(t.TempDir(), name)
		require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
		return path
	}
	// [slider] table with its own defaults; a [[prompts]] item with target_class uses its own neutral.
	p, _, err := ImportSDScriptsTOML(write("s.toml", `
[slider]
guidance_scale = 3.0
neutrals = ["a", "b"]

[[slider.targets]]
target_class = "dog"
positive = "big dog"
neutral = "dog"
`))
	require.NoError(t, err)
	require.Len(t, p.Targets, 1)
	assert.Equal(t, []string{"dog"}, p.Targets[0].Neutrals, "a target's own neutral overrides the slider's neutrals")
	assert.Equal(t, 3.0, *p.Targets[0].GuidanceScale)

	p, _, err = ImportSDScriptsTOML(write("p.toml", `
neutral = "ignored for slider items in [[prompts]]"
[[prompts]]
target_class = "cat"
negative = "small cat"
`))
	require.NoError(t, err)
	es, err := p.Entries()
	require.NoError(t, err)
	assert.Equal(t, []Entry{
		entry("cat", "small cat", "", "", ActionErase, 1, 1, Square(512)),
		entry("cat", "small cat", "", "", ActionEnhance, 1, -1, Square(512)),
	}, stripEntries(es))

	// A single target written at the top level.
	p, _, err = ImportSDScriptsTOML(write("one.toml", "target_class = \"x\"\npositive = \"y\"\n"))
	require.NoError(t, err)
	assert.Len(t, p.Targets, 1)

	_, _, err = ImportSDScriptsTOML(write("blank.toml", "[[targets]]\ntarget_class = \"x\"\npositive = \" \"\n"))
	assert.ErrorContains(t, err, "blank.toml:1: targets[0]: slider target requires either positive or negative prompt")
	_, _, err = ImportSDScriptsTOML(write("type.toml", "guidance_scale = \"high\"\n[[targets]]\ntarget_class = \"x\"\npositive = \"y\"\n"))
	assert.ErrorContains(t, err, `type.toml:1: guidance_scale: expected a number, got "high" (a string)`)
	_, _, err = ImportSDScriptsTOML(write("none.toml", "guidance_scale = 1.0\n"))
	assert.ErrorContains(t, err, "no [[prompts]] and no slider [[targets]]")
}

func TestMinDenoisingSteps(t *testing.T) {
	for _, c := range []struct {
		yaml string
		want string // "" = valid
	}{
		{"max_denoising_steps: 5\nmin_denoising_steps: 4\n", ""},
		{"max_denoising_steps: 5\nmin_denoising_steps: 0\nmode: leco\n", ""},
		{"max_denoising_steps: 5\nmin_denoising_steps: 5\n", "min_denoising_steps: invalid value 5"},
		{"min_denoising_steps: -1\n", "min_denoising_steps: invalid value -1"},
		{"timestep_range: [800, 999]\n", ""},
		{"timestep_range: [900, 800]\n", "timestep_range: invalid value [900 800]"},
		{"timestep_range: [800]\n", "timestep_range: invalid value [800]"},
	} {
		p, err := ParsePreset([]byte(c.yaml+"prompts: [{target: a cat}]\n"), "min.yaml")
		if c.want == "" {
			require.NoError(t, err, c.yaml)
			continue
		}
		require.Error(t, err, c.yaml)
		assert.Contains(t, err.Error(), c.want)
		assert.Contains(t, err.Error(), "min.yaml")
		_ = p
	}
}

// TestKeepAction: action keep is the preservation entry — neutral = target and g = 0 by default, so
// y = e_target (SignedGuidance 0); a keep with another neutral or a non-zero g is an error naming the key.
func TestKeepAction(t *testing.T) {
	p, err := ParsePreset([]byte("prompts:\n  - {target: a blue shape, action: keep, weight: 30}\n"), "keep.yaml")
	require.NoError(t, err)
	e := p.Prompts[0]
	require.Equal(t, ActionKeep, e.Action)
	require.Equal(t, "a blue shape", *e.Neutral)
	require.Equal(t, "a blue shape", *e.Positive)
	require.Equal(t, "", e.Unconditional)
	require.Equal(t, 0.0, *e.GuidanceScale)
	require.Equal(t, 30.0, *e.Weight)
	entries, err := p.Entries()
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, 0.0, entries[0].SignedGuidance())
	require.Equal(t, "a blue shape", entries[0].Neutral)

	// The spelled-out form it stands for normalises to the same entry but for the action's name.
	long, err := ParsePreset([]byte("prompts:\n  - {target: a blue shape, neutral: a blue shape, guidance_scale: 0, weight: 30}\n"), "long.yaml")
	require.NoError(t, err)
	le, err := long.Entries()
	require.NoError(t, err)
	le[0].Action = ActionKeep
	le[0].Source = entries[0].Source
	require.Equal(t, entries, le)

	for _, c := range []struct{ yaml, want string }{
		{"prompts: [{target: a cat, action: keep, guidance_scale: 1}]\n", "prompts[0].guidance_scale: invalid value 1"},
		{"prompts: [{target: a cat, action: keep, neutral: a dog}]\n", `prompts[0].neutral: invalid value "a dog"`},
		{"prompts: [{target: a cat, action: keeps}]\n", "prompts[0].action"},
	} {
		_, err := ParsePreset([]byte(c.yaml), "bad.yaml")
		require.ErrorContains(t, err, c.want, c.yaml)
		require.ErrorContains(t, err, "bad.yaml")
	}
}
