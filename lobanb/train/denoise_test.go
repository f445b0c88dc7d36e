package train

import (
	"math"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
)

// TestDenoiseOneHalf (issue 17, "skip work that cannot matter"): at denoise_guidance 1 the partial
// denoise predicts only the target half and at 0 only the unconditional half. Each step must equal
// the full two-half step whose other half is the same prompt (ε_u + g·(ε_c − ε_u) with ε_u = ε_c is
// ε_c for any g), computed by a run at guidance 3.
func TestDenoiseOneHalf(t *testing.T) {
	runAt := func(g float64) *Run {
		p := tinyPreset(t, 1)
		p.DenoiseGuidance = &g
		run, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
		require.NoError(t, err)
		return run
	}
	full, one, zero := runAt(3), runAt(1), runAt(0)
	_, x, zeros := denoiseInputs(t, full, 0)
	ts := full.loop.draw.sched.Timesteps()
	step := func(r *Run, unc, tgt int) []float32 {
		b, err := r.loop.batch(0)
		require.NoError(t, err)
		u, g := b.unconditional, b.target
		if unc == 1 {
			u = b.target
		}
		if tgt == 0 {
			g = b.unconditional
		}
		out, err := r.loop.graphs.denoise.Run(x, int64(ts[1]), u, g, zeros, nil)
		require.NoError(t, err)
		return tensors.MustCopyFlatData[float32](out)
	}
	closeTo := func(want, got []float32, what string) {
		var maxErr, scale float64
		for i := range want {
			maxErr = math.Max(maxErr, math.Abs(float64(want[i]-got[i])))
			scale = math.Max(scale, math.Abs(float64(want[i])))
		}
		require.Less(t, maxErr, 1e-5*scale, what)
	}
	closeTo(step(full, 1, 1), step(one, 0, 1), "guidance 1: the target half alone")
	closeTo(step(full, 0, 0), step(zero, 0, 1), "guidance 0: the unconditional half alone")

	// The check can fail: the guided step at 3 with both halves differs from either half.
	guided, cond := step(full, 0, 1), step(one, 0, 1)
	var diff float64
	for i := range guided {
		diff = math.Max(diff, math.Abs(float64(guided[i]-cond[i])))
	}
	require.Greater(t, diff, 1e-3)
}

// BenchmarkDenoiseStep times one partial-denoise step on the tiny SD1.5 fixture at denoise_guidance
// 3 (both halves, 2B samples) and 1 (the target half alone, B samples).
func BenchmarkDenoiseStep(b *testing.B) {
	for _, g := range []float64{3, 1} {
		p := tinyPreset(b, 1)
		p.DenoiseGuidance = &g
		run, err := setup(p, Options{OutDir: b.TempDir(), Backend: testutil.Backend(b)})
		require.NoError(b, err)
		batch, x, zeros := denoiseInputs(b, run, 0)
		stepOnce := func() {
			_, err := run.loop.graphs.denoise.Run(x, 500, batch.unconditional, batch.target, zeros, nil)
			require.NoError(b, err)
		}
		stepOnce() // compile
		b.Run(map[float64]string{3: "guidance_3", 1: "guidance_1"}[g], func(b *testing.B) {
			for b.Loop() {
				stepOnce()
			}
		})
	}
}

// TestGraphsCompiledOnce (issue 17): a run compiles its train step, its evaluation graph and its
// partial denoise once for their one shape, however many steps, partial-denoise lengths k and
// evaluations follow (a graph rebuilt inside the loop would count again).
func TestGraphsCompiledOnce(t *testing.T) {
	p := tinyPreset(t, 12)
	run, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	b := run.loop.graphs.builds
	require.NotNil(t, b)
	_, err = run.EvalLoss(3, 1)
	require.NoError(t, err)
	res, err := run.Train()
	require.NoError(t, err)
	require.Equal(t, 12, res.Steps)
	_, err = run.EvalLoss(3, 1)
	require.NoError(t, err)
	require.Greater(t, len(run.loop.draw.ks), 1, "the run draws several partial-denoise lengths")
	require.Equal(t, []int64{1, 1, 1}, []int64{b[stepGraphKind].Load(), b[evalGraphKind].Load(), b[denoiseGraphKind].Load()}, "step, eval, denoise builds")

	// The count is of compilations: another latent shape compiles the partial denoise again.
	batch, x, zeros := denoiseInputs(t, run, 2)
	_, err = run.loop.graphs.denoise.Run(x, 500, batch.unconditional, batch.target, zeros, nil)
	require.NoError(t, err)
	require.Equal(t, int64(2), b[denoiseGraphKind].Load())
}

// denoiseInputs is the partial denoise's inputs for run's first group: its batch, a standard normal
// x [B, C, H+grow, W+grow] at the group's latent size (grown by grow) and zero multipliers [B].
func denoiseInputs(tb testing.TB, run *Run, grow int) (*assembled, *tensors.Tensor, *tensors.Tensor) {
	tb.Helper()
	batch, err := run.loop.batch(0)
	require.NoError(tb, err)
	e, c := run.loop.groups[0][0], run.loop.latentChannels
	h, w := e.LatentH+grow, e.LatentW+grow
	x := tensors.FromFlatDataAndDimensions(run.loop.rng.Normal(batch.size*c*h*w), batch.size, c, h, w)
	return batch, x, tensors.FromShape(shapes.Make(dtypes.Float32, batch.size))
}
