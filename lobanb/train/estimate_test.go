package train

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/lobanb/slider"
)

// TestEstimateTiny: the plan of a tiny fixture run is made of consistent parts.
func TestEstimateTiny(t *testing.T) {
	p := tinyPreset(t, 2)
	plan, err := NewPlan(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	e, err := EstimateRun(plan)
	require.NoError(t, err)
	require.Positive(t, e.Params["unet"])
	require.Positive(t, e.Params["adapter"])
	for _, pr := range []Profile{e.CPU, e.GPU} {
		require.Positive(t, pr.UNet)
		require.Positive(t, pr.Step[0])
		require.LessOrEqual(t, pr.Step[1], pr.Step[0]*11/10, "checkpointing does not add memory")
		require.Positive(t, pr.StepFLOPs)
		require.Greater(t, e.Peak(pr, false), pr.UNet)
	}
	require.Less(t, e.GPU.UNet, e.CPU.UNet, "bfloat16 weights are half of float32")
	f := e.FitOn(Device{Name: "small", Memory: 1, CPU: true})
	require.False(t, f.Fits)
	require.NotEmpty(t, e.Advice(f))
	var report strings.Builder
	e.Report(&report, GPUs)
	for _, want := range []string{"frozen UNet", "train step, checkpointing", "T4 16GB", "H100 80GB"} {
		require.Contains(t, report.String(), want)
	}
}

// TestRefuseToyAt512: the toy world at the 512 px default (its native size is 32) cannot fit a
// small memory limit: NewRun refuses with the figures and a fix, before writing anything.
func TestRefuseToyAt512(t *testing.T) {
	t.Setenv("LOBA_MEMORY_LIMIT", "2GB")
	p := slider.Defaults()
	p.Objective = slider.ObjectiveSlider
	p.Targets = []slider.Target{{TargetClass: "a shape", Positive: "a large shape", Negative: "a small shape"}}
	out := filepath.Join(t.TempDir(), "run")
	plan, err := NewPlan(p, Options{OutDir: out, Backend: testutil.Backend(t)})
	require.NoError(t, err)
	_, err = NewRun(plan)
	require.True(t, errors.Is(err, ErrDoesNotFit), "%v", err)
	for _, want := range []string{"needs about", "2.0 GB is available", "train.resolution:"} {
		require.Contains(t, err.Error(), want)
	}
	require.NoDirExists(t, out, "a refused run writes nothing")
}

// TestRefuseSDXLAt1024: SDXL at 1024 px (a folder of the real configs, no weights) under a small
// memory limit is refused from the configs alone, before any weight would be read.
func TestRefuseSDXLAt1024(t *testing.T) {
	t.Setenv("LOBA_MEMORY_LIMIT", "6GB")
	p := slider.Defaults()
	p.Model.NameOrPath = filepath.Join(fixtures.Root(t), "real", "configs", "sdxl_base")
	p.Prompts = []slider.Prompt{{Target: "a photo of a dog", Action: slider.ActionErase}}
	p.Train.Resolution = slider.Square(1024)
	plan, err := NewPlan(p, Options{OutDir: filepath.Join(t.TempDir(), "run"), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	_, err = NewRun(plan)
	require.True(t, errors.Is(err, ErrDoesNotFit), "%v", err)
	require.Regexp(t, `frozen UNet 1[0-9]\.[0-9] GB`, err.Error(), "SDXL's 2.6 G float32 weights")
}

// TestMeanKFastModes: the plan's partial-denoise steps per train step follow the mode: the mean k of
// the partial denoise; the cache's generations (max k for every trajectory of every group) spread
// over the steps each serves; the x₀ pool's sampler steps spread over the run.
func TestMeanKFastModes(t *testing.T) {
	p := slider.Defaults()
	p.MaxDenoisingSteps, p.Train.Steps = 5, 100
	p.MinDenoisingSteps = ptrTo(1)
	require.Equal(t, 2.5, meanK(p, 3, nil))
	require.Equal(t, 1.5, meanK(p, 3, []int{0, 1, 2, 3}), "the k inside timestep_range")
	p.TrajectoryCache = slider.TrajectoryCache{Size: 8}
	require.InDelta(t, 4*8*3/100.0, meanK(p, 3, nil), 1e-12)
	require.InDelta(t, 3*8*3/100.0, meanK(p, 3, []int{0, 1, 2, 3}), 1e-12)
	p.TrajectoryCache.RefreshEvery = 25
	require.InDelta(t, 4*8*3/25.0, meanK(p, 3, nil), 1e-12)
	p.TrajectoryCache = slider.TrajectoryCache{}
	p.Denoise, p.X0Pool = slider.DenoiseNone, slider.X0Pool{Size: 2, Steps: 10}
	require.InDelta(t, 10*2*3/100.0, meanK(p, 3, nil), 1e-12)

	// From the model folder: toy-color's t* in [800, 999] of 20 trailing steps keeps k = 0 … 3.
	q, _, err := slider.Load(filepath.Join(testutil.RepoRoot(t), "notebooks", "presets", "toy-color.yaml"))
	require.NoError(t, err)
	dir, err := modelDir(q, Options{})
	require.NoError(t, err)
	require.Equal(t, []int{0, 1, 2, 3}, planKs(q, dir))
}
