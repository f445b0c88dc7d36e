package train

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/sd/sdtest"
)

// tinyPreset is a LECO erase preset on a tiny fixture pipeline: 16×16 px (8×8 latents), a short
// partial denoise, so a step takes a fraction of a second on the pure-Go backend.
func tinyPreset(t *testing.T, steps int) *slider.Preset {
	t.Helper()
	tp := sdtest.First(t, false)
	p := slider.Defaults()
	p.Model.NameOrPath = tp.Dir
	p.Objective, p.Mode = slider.ObjectiveLECO, slider.ModeLECO
	p.MaxDenoisingSteps = 4
	p.Train.Steps = steps
	p.Train.LR = 1e-3
	p.Train.Seed = 7
	p.Train.Resolution = slider.Square(16)
	p.Prompts = []slider.Prompt{{Target: "a red cube", Action: slider.ActionErase}}
	require.NoError(t, p.Normalize())
	return p
}

// TestTrainLECOEraseLowersLoss: 50 LECO-erase steps on the tiny SD1.5 fixture lower the objective,
// measured on the same fixed draws before and after.
func TestTrainLECOEraseLowersLoss(t *testing.T) {
	p := tinyPreset(t, 50)
	run, err := Setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	before, err := run.EvalLoss(8, 12345)
	require.NoError(t, err)
	res, err := run.Train()
	require.NoError(t, err)
	after, err := run.EvalLoss(8, 12345)
	require.NoError(t, err)
	t.Logf("eval loss before %.6g, after %.6g (%d steps; first train losses %v, last %.6g)", before, after, res.Steps, res.FirstLosses, res.LastLoss)
	require.Equal(t, 50, res.Steps)
	require.Less(t, after, before)
	require.FileExists(t, res.LoRAPath)
}

func tensorFloats(x *tensors.Tensor) []float32 { return tensors.MustCopyFlatData[float32](x) }

// TestSampleDuringTraining: with sample.every, the run writes a grid of the configured strengths
// (rows = prompts, columns = strengths) at those steps.
func TestSampleDuringTraining(t *testing.T) {
	p := tinyPreset(t, 2)
	p.Sample.Every = 2
	p.Sample.Prompts = []string{"a red cube", "a blue ball"}
	p.Sample.Strengths = []float64{-2, 0, 2}
	p.Sample.Steps = 3
	require.NoError(t, p.Normalize())
	out := t.TempDir()
	if keep := os.Getenv("LOBA_KEEP_SAMPLES"); keep != "" {
		out = keep // look at the grid
	}
	run, err := Setup(p, Options{OutDir: out, Backend: testutil.Backend(t)})
	require.NoError(t, err)
	_, err = run.Train()
	require.NoError(t, err)
	f, err := os.Open(filepath.Join(out, "samples", "step-000002.png"))
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	require.Equal(t, 3*16, img.Bounds().Dx(), "three strength columns of 16 px")
	require.Equal(t, 2*16, img.Bounds().Dy(), "two prompt rows of 16 px")
}
