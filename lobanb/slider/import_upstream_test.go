package slider

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func up(parts ...string) string { return td(append([]string{"upstream"}, parts...)...) }

// requireWarnings checks that an import warned exactly for keys, each warning naming the file and
// one key: "<file>:<line>: <key>: …" or "<file>:<line>: unknown key "<key>" ignored …".
func requireWarnings(t *testing.T, file string, warnings []string, keys ...string) {
	t.Helper()
	require.Len(t, warnings, len(keys), strings.Join(warnings, "\n"))
	for i, w := range warnings {
		assert.True(t, strings.HasPrefix(w, file+":"), "warning %q names the file %s", w, file)
		assert.True(t, strings.Contains(w, ": "+keys[i]+": ") || strings.Contains(w, `unknown key "`+keys[i]+`" ignored`),
			"warning %q is about %s", w, keys[i])
	}
}

// TestUpstreamLECOExamples: LECO's own example configs (testdata/upstream/LECO, unmodified) import
// with warnings only, each naming file and key: the prompts are found from LECO's checkout layout
// ("./examples/prompts.yaml" is relative to LECO's root, a folder above the config), cat_ears'
// train.batch_size (unknown to LECO's pydantic config) and the logging / xformers switches are
// ignored with a warning, and per_steps becomes train.save_every.
func TestUpstreamLECOExamples(t *testing.T) {
	cfg := up("LECO", "examples", "config.yaml")
	p, warnings, err := Load(cfg)
	require.NoError(t, err)
	requireWarnings(t, cfg, warnings, "prompts_file", "other.use_xformers")
	assert.Contains(t, warnings[0], up("LECO", "examples", "prompts.yaml"), "the warning names the file it found")
	assert.Equal(t, ObjectiveLECO, p.Objective)
	assert.Equal(t, "stabilityai/stable-diffusion-2-1", p.Model.NameOrPath)
	assert.Equal(t, "v_prediction", p.Model.PredictionType)
	assert.Equal(t, 500, p.Train.Steps)
	assert.Equal(t, 1e-4, p.Train.LR)
	assert.Equal(t, "adamw", p.Train.Optimizer)
	assert.Equal(t, "constant", p.Train.LRScheduler)
	assert.Equal(t, "lierla", p.Network.Targets)
	assert.Equal(t, 4, p.Network.Rank)
	assert.Equal(t, 1.0, *p.Network.Alpha)
	assert.Equal(t, 50, p.MaxDenoisingSteps)
	assert.Equal(t, "bfloat16", p.Train.DType)
	assert.Equal(t, 200, p.Train.SaveEvery)
	assert.Equal(t, Output{Name: "van_gogh", Dir: "./output"}, p.Output)
	es, err := p.Entries()
	require.NoError(t, err)
	want := entry("van gogh", "van gogh", "", "", ActionErase, 1, 1, Square(512))
	want.BatchSize = 2
	assert.Equal(t, []Entry{want}, stripEntries(es))

	cfg = up("LECO", "examples", "cat_ears_config.yaml")
	p, warnings, err = Load(cfg)
	require.NoError(t, err)
	requireWarnings(t, cfg, warnings, "train.batch_size", "prompts_file", "logging.use_wandb", "logging.verbose", "other.use_xformers")
	assert.Contains(t, warnings[0], "LECO's pydantic config ignores it")
	assert.Equal(t, "Birchlabs/wd-1-5-beta3-unofficial", p.Model.NameOrPath)
	assert.Equal(t, 2000, p.Train.Steps)
	assert.Equal(t, 16, p.Network.Rank)
	assert.Equal(t, Output{Name: "cat_ears", Dir: "./output/cat_ears_2"}, p.Output)
	es, err = p.Entries()
	require.NoError(t, err)
	want = entry("1girl", "1girl, cat ears", "", "", ActionEnhance, 1, 1, Square(512))
	want.BatchSize = 2
	assert.Equal(t, []Entry{want}, stripEntries(es))

	cfg = up("LECO", "examples", "unreal_config.yaml")
	p, warnings, err = Load(cfg)
	require.NoError(t, err)
	requireWarnings(t, cfg, warnings, "prompts_file", "logging.use_wandb", "logging.verbose", "other.use_xformers")
	assert.Equal(t, "lion", p.Train.Optimizer)
	assert.Equal(t, "cosine", p.Train.LRScheduler)
	assert.InDelta(t, 1e-6, p.Train.MinLR, 1e-18, "LECO's cosine ends at lr/100")
	assert.Equal(t, 100, p.Train.SaveEvery)
	require.Len(t, p.Prompts, 12)
	assert.Equal(t, "real life, instagram", p.Prompts[11].Target)
	assert.Equal(t, Square(768), p.Prompts[11].Resolution)
	assert.Equal(t, 3, p.Prompts[0].BatchSize)
}

// TestUpstreamConceptSlidersExamples: Concept Sliders' data/config.yaml and config-xl.yaml (their
// prompts_file is relative to the repository's root) are recognised as Concept Sliders' by their
// prompts' folder and import with warnings only; a *_GPT.yaml prompts file imports with a warning
// per ignored guidance / rank key.
func TestUpstreamConceptSlidersExamples(t *testing.T) {
	data := func(f string) string { return up("sliders", "trainscripts", "textsliders", "data", f) }
	for _, c := range []struct{ config, model string }{
		{"config.yaml", "CompVis/stable-diffusion-v1-4"},
		{"config-xl.yaml", "stabilityai/stable-diffusion-xl-base-1.0"},
	} {
		t.Run(c.config, func(t *testing.T) {
			p, warnings, err := Load(data(c.config))
			require.NoError(t, err)
			requireWarnings(t, data(c.config), warnings, "prompts_file", "network.rank", "other.use_xformers")
			assert.Equal(t, ObjectiveSliderText, p.Objective)
			assert.Equal(t, c.model, p.Model.NameOrPath)
			assert.Equal(t, 1000, p.Train.Steps)
			assert.Equal(t, 2e-4, p.Train.LR)
			assert.Equal(t, "c3lier", p.Network.Targets)
			assert.Equal(t, 4, p.Network.Rank)
			assert.Equal(t, 500, p.Train.SaveEvery)
			es, err := p.Entries()
			require.NoError(t, err)
			assert.Equal(t, []Entry{
				entry("male person", "male person, very old", "male person, very young", "male person", ActionEnhance, 4, 1, Square(512)),
				entry("female person", "female person, very old", "female person, very young", "female person", ActionEnhance, 4, 1, Square(512)),
			}, stripEntries(es))
		})
	}

	gpt := data("prompts-person_age_slider_GPT.yaml")
	p, warnings, err := Load(gpt)
	require.NoError(t, err)
	require.Len(t, p.Prompts, 10)
	assert.Equal(t, 1.0, *p.Prompts[0].GuidanceScale, "guidance: is ignored, as Concept Sliders ignores it")
	require.Len(t, warnings, 1+2*10)
	assert.Contains(t, warnings[0], "no config given")
	assert.Contains(t, warnings[1], gpt+":5: prompts[0].guidance: ignored")
	assert.Contains(t, warnings[2], gpt+":6: prompts[0].rank: ignored")
}

// TestUpstreamSDScriptsExamples: the prompt TOML examples of sd-scripts' docs/train_leco.md import
// with the one warning about the command-line settings.
func TestUpstreamSDScriptsExamples(t *testing.T) {
	for _, c := range []struct {
		file     string
		entries  int
		first    Entry
		neutrals []string
	}{
		{file: "leco_pairs.toml", entries: 1, first: entry("van gogh", "van gogh", "", "", ActionErase, 1, 1, Square(512))},
		{file: "slider_target.toml", entries: 4, neutrals: []string{""},
			first: entry("1girl", "1girl, short hair", "1girl, long hair", "", ActionErase, 1, 1, Square(1024))},
		{file: "neutrals.toml", entries: 3 * 4, neutrals: []string{"", "photo of a person", "cinematic portrait"},
			first: entry("person", "expressionless person", "smiling person", "", ActionErase, 1.5, 1, Square(1024))},
		{file: "neutral_file.toml", entries: 2 * 4, neutrals: []string{"photo of a person", "cinematic portrait"},
			first: entry("", "low detail", "high detail", "photo of a person", ActionErase, 1, 1, Square(512))},
		{file: "from_ai_toolkit.toml", entries: 4, neutrals: []string{""},
			first: entry("", "low detail", "high detail", "", ActionErase, 1, 1, Square(512))},
	} {
		t.Run(c.file, func(t *testing.T) {
			path := up("sd-scripts", c.file)
			p, warnings, err := Load(path)
			require.NoError(t, err)
			require.Len(t, warnings, 1, strings.Join(warnings, "\n"))
			assert.Contains(t, warnings[0], path+": sd-scripts takes its training settings from the command line")
			if c.neutrals != nil {
				require.Len(t, p.Targets, 1)
				assert.Equal(t, c.neutrals, p.Targets[0].Neutrals)
			}
			es, err := p.Entries()
			require.NoError(t, err)
			require.Len(t, es, c.entries)
			assert.Equal(t, c.first, stripEntries(es)[0])
		})
	}
}

// TestImportIgnoredKeysWarn: a key the anchor silently ignores is ignored by the import too, with a
// warning that names the file, the line, the key, the key probably meant and the valid keys (these
// files were errors before).
func TestImportIgnoredKeysWarn(t *testing.T) {
	file := td("ignored", "leco_unknown_key.yaml")
	p, warnings, err := Load(file)
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	assert.Equal(t, file+`:11: unknown key "train.batch_size" ignored (LECO's pydantic config ignores it, and so does the import); `+
		"valid keys in train: precision, noise_scheduler, iterations, lr, optimizer, optimizer_args, lr_scheduler, max_denoising_steps", warnings[0])
	assert.Equal(t, 500, p.Train.Steps)

	file = td("ignored", "cs_prompts_unknown.yaml")
	p, warnings, err = ImportConceptSliders(file, "")
	require.NoError(t, err)
	all := strings.Join(warnings, "\n")
	assert.Contains(t, all, file+`:7: unknown key "prompts[0].guidence" ignored (did you mean "guidance_scale"?) (Concept Sliders' pydantic prompt settings ignore it`)
	assert.Contains(t, all, "valid keys in prompts[0]: target, positive,")
	assert.Equal(t, 1.0, *p.Prompts[0].GuidanceScale)

	file = td("ignored", "sd_unknown_key.toml")
	p, warnings, err = Load(file)
	require.NoError(t, err)
	all = strings.Join(warnings, "\n")
	assert.Contains(t, all, file+`:6: unknown key "targets[0].postive" ignored (did you mean "positive"?) (sd-scripts ignores it, and so does the import)`)
	es, err := p.Entries()
	require.NoError(t, err)
	assert.Equal(t, []Entry{
		entry("person", "sad person", "", "", ActionErase, 1, 1, Square(512)),
		entry("person", "sad person", "", "", ActionEnhance, 1, -1, Square(512)),
	}, stripEntries(es), "sd-scripts trains the negative only, and so does the import")
}

// TestSDScriptsIgnoredSections: what sd-scripts' load_prompt_settings never reads is ignored with a
// warning: [[targets]] and [slider] next to [[prompts]], top-level keys next to a [slider] table,
// keys a slider item does not read.
func TestSDScriptsIgnoredSections(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.toml")
	writeFile(t, file, `negative = "x"

[slider]
neutral = ""

[[slider.targets]]
target_class = "person"
positive = "smiling person"
action = "enhance"
`)
	p, warnings, err := Load(file)
	require.NoError(t, err)
	all := strings.Join(warnings, "\n")
	assert.Contains(t, all, file+":1: negative: ignored, as sd-scripts ignores it (with a [slider] table")
	assert.Contains(t, all, file+":9: slider.targets[0].action: ignored, as sd-scripts ignores it (a slider target is read with")
	require.Len(t, p.Targets, 1)
	assert.Equal(t, "", p.Targets[0].Negative)
}
