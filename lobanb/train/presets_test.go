package train

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures/tinypipe"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/weights"
)

// shrink points an imported preset at a tiny fixture pipeline and makes it cheap: 16 px, batch 1,
// a 4-step partial denoise, a few steps. Everything else stays as imported.
func shrink(t *testing.T, p *slider.Preset, sdxl bool, steps int) {
	t.Helper()
	p.Model.NameOrPath = tinypipe.First(t, sdxl).Dir
	p.Model.Kind = ""
	p.MaxDenoisingSteps, p.Train.Steps, p.Train.WarmupSteps = 4, steps, 0
	p.Train.Resolution = slider.Square(16)
	for i := range p.Prompts {
		p.Prompts[i].Resolution, p.Prompts[i].BatchSize = slider.Square(16), 1
		p.Prompts[i].DynamicResolution = false
	}
	for i := range p.Targets {
		p.Targets[i].Resolution, p.Targets[i].Resolutions, p.Targets[i].BatchSize = slider.Resolution{}, []slider.Resolution{slider.Square(16)}, 1
		p.Targets[i].DynamicResolution = false
	}
	p.Sample.Every = 0
	require.NoError(t, p.Normalize())
}

// TestAnchorPresetsTrain: the example configs of LECO, Concept Sliders and sd-scripts (written from
// their documented schemas in lobanb/slider/testdata) and LOBA's own import and train.
func TestAnchorPresetsTrain(t *testing.T) {
	backend := testutil.Backend(t)
	root := filepath.Join("..", "slider", "testdata")
	for _, c := range []struct{ name, path string }{
		{"leco", filepath.Join(root, "leco", "config.yaml")},
		{"conceptsliders", filepath.Join(root, "conceptsliders", "config.yaml")},
		{"sdscripts_leco", filepath.Join(root, "sdscripts", "leco.toml")},
		{"sdscripts_slider", filepath.Join(root, "sdscripts", "slider.toml")},
		{"loba", filepath.Join(root, "loba.yaml")},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, warnings, err := slider.Load(c.path)
			require.NoError(t, err)
			t.Logf("%s: objective %s, mode %s, warnings %q", c.name, p.Objective, p.Mode, warnings)
			shrink(t, p, false, 2)
			run, err := setup(p, Options{OutDir: t.TempDir(), Backend: backend})
			require.NoError(t, err)
			res, err := run.Train()
			require.NoError(t, err)
			require.Equal(t, 2, res.Steps)
			require.FileExists(t, res.LoRAPath)
		})
	}
}

// TestTrainSDXLFile: training on the SDXL-shaped fixture pipeline runs (pooled embeds and time ids
// through both graphs), and the LoRA it writes — float32, SAI layout — has 0-d alphas and re-loads
// bit-identical to the trained weights.
func TestTrainSDXLFile(t *testing.T) {
	backend := testutil.Backend(t)
	p, _, err := slider.Load(filepath.Join("..", "slider", "testdata", "loba.yaml"))
	require.NoError(t, err)
	shrink(t, p, true, 2)
	p.Train.SaveDType, p.Train.SaveLayout = "float32", "sai"
	run, err := setup(p, Options{OutDir: t.TempDir(), Backend: backend})
	require.NoError(t, err)
	res, err := run.Train()
	require.NoError(t, err)

	f, err := safetensors.Open(res.LoRAPath)
	require.NoError(t, err)
	md := f.Metadata()
	require.Equal(t, "sdxl_base_v1-0", md["ss_base_model_version"])
	for _, n := range f.Names() {
		if info, _ := f.Info(n); len(n) > 6 && n[len(n)-6:] == ".alpha" {
			require.Empty(t, info.Shape, n)
		}
	}
	require.NoError(t, f.Close())

	decl, err := weights.Declared(run.Pipeline.UNet.Declare)
	require.NoError(t, err)
	loaded, err := lora.LoadKohya(res.LoRAPath, lora.Base{Component: "unet", Declared: decl})
	require.NoError(t, err)
	require.Equal(t, lora.LayoutSAI, loaded.Layout)
	trained, err := run.Net.Weights(run.Pipeline.Ctx)
	require.NoError(t, err)
	require.Len(t, loaded.Weights["unet"], len(trained))
	for path, w := range trained {
		got := loaded.Weights["unet"][path]
		require.Equal(t, tensorFloats(w.Down), tensorFloats(got.Down), path)
		require.Equal(t, tensorFloats(w.Up), tensorFloats(got.Up), path)
	}
}
