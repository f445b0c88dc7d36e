package train

import (
	"math"
	"os"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/slider"
)

// tinyFastPresets returns a maker of mode loba LECO presets on one tiny fixture (a resumed run names
// the same model) with two groups (an erase and an enhance), denoising with the adapter
// (on-policy), with either fast mode's settings applied by set.
func tinyFastPresets(t testing.TB) func(steps int, set func(p *slider.Preset)) *slider.Preset {
	model := tinyPreset(t, 1).Model
	return func(steps int, set func(p *slider.Preset)) *slider.Preset {
		return tinyFastPreset(t, model, steps, set)
	}
}

func tinyFastPreset(t testing.TB, model slider.Model, steps int, set func(p *slider.Preset)) *slider.Preset {
	t.Helper()
	p := tinyPreset(t, steps)
	p.Model = model
	q := slider.Defaults()
	q.Model = p.Model
	q.Objective, q.Mode = slider.ObjectiveLECO, slider.ModeLOBA
	q.DenoiseWithAdapter = ptrTo(true)
	q.MaxDenoisingSteps = 4
	q.Train = p.Train
	q.Prompts = []slider.Prompt{{Target: "a red cube", Action: slider.ActionErase}, {Target: "a blue ball", Action: slider.ActionEnhance}}
	set(q)
	require.NoError(t, q.Normalize())
	return q
}

func ptrTo[T any](v T) *T { return &v }

// randomizeAdapter sets every adapter variable to small values drawn from seed, so that a partial
// denoise with the adapter on differs from the frozen model's (its up weights start at zero).
func randomizeAdapter(t *testing.T, l *loop, seed uint64) {
	t.Helper()
	rng := NewRNG(seed)
	for _, v := range l.adapter {
		vals := rng.Normal(v.Shape().Size())
		for i := range vals {
			vals[i] *= 0.3
		}
		require.NoError(t, v.SetValue(tensors.FromFlatDataAndDimensions(vals, v.Shape().Dimensions...)))
	}
}

// TestTrajectoryCacheHitIsExact (issue 17 acceptance 2): a step's draw from the trajectory cache is
// bit for bit the latent its generation denoised, at t* of its k — generating the same generation
// again gives the same bits, and reading it from the run folder too. That latent is the partial
// denoise of its group's own batch from the same initial noise with the adapter of generation
// time, up to float32 summation order (the generation denoises every group and trajectory as one
// batch, which reorders sums: 1e-6 relative here). The check can fail: once the adapter changes,
// the partial denoise no longer reproduces the cache (differences of order 1).
func TestTrajectoryCacheHitIsExact(t *testing.T) {
	p := tinyFastPresets(t)(4, func(p *slider.Preset) { p.TrajectoryCache = slider.TrajectoryCache{Size: 3} })
	run, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	l := run.loop
	require.Len(t, l.groups, 2)
	randomizeAdapter(t, l, 1)
	require.NoError(t, l.ensureTrajectories(0))
	c := l.traj
	require.Equal(t, 1, c.generated)
	require.Equal(t, 4, c.depth(), "x after k = 0 … 3 steps (k is drawn in [1, N-1 = 3])")

	denoised := func(gi, j, k int) (want, got []float32) {
		batch, err := l.batch(gi)
		require.NoError(t, err)
		g := l.groups[gi][0]
		dims := []int{batch.size, l.latentChannels, g.LatentH, g.LatentW}
		x, err := l.partialDenoise(tensors.FromFlatDataAndDimensions(c.at(gi, j, 0, dims), dims...), k, batch)
		require.NoError(t, err)
		return tensors.MustCopyFlatData[float32](x), c.at(gi, j, k, dims)
	}
	same := func(want, got []float32) bool {
		var maxErr, scale float64
		for i := range want {
			maxErr = math.Max(maxErr, math.Abs(float64(want[i]-got[i])))
			scale = math.Max(scale, math.Abs(float64(want[i])))
		}
		return maxErr <= 1e-5*scale
	}
	for gi := range l.groups {
		for j := 0; j < c.size; j++ {
			for k := 1; k < c.depth(); k++ {
				want, got := denoised(gi, j, k)
				require.True(t, same(want, got), "group %d trajectory %d k %d", gi, j, k)
			}
		}
	}
	generated := c.x
	c.gen = -1
	require.NoError(t, l.generateTrajectories(0))
	require.Equal(t, generated, c.x, "a generation is deterministic, bit for bit")
	c.gen = -1
	ok, why := l.readTrajectories(0)
	require.True(t, ok, why)
	require.Equal(t, generated, c.x, "and reads back from the run folder bit for bit")

	// A step's draw: the cached latent of the (j, k) its RNG draws, at t*(k).
	for step := 1; step <= 6; step++ {
		state := l.rng.State()
		gi := l.rng.IntN(len(l.groups))
		batch, err := l.batch(gi)
		require.NoError(t, err)
		x, tStar, err := l.drawLatents(gi, batch, step)
		require.NoError(t, err)
		replay := NewRNG(0)
		require.NoError(t, replay.Restore(state))
		require.Equal(t, gi, replay.IntN(len(l.groups)))
		ks := l.draw.ksAt(step)
		k := ks[replay.IntN(len(ks))]
		j := replay.IntN(c.size)
		require.Equal(t, l.draw.tStar(k), tStar, "step %d", step)
		want, cached := denoised(gi, j, k)
		require.Equal(t, cached, tensors.MustCopyFlatData[float32](x), "step %d draws (j %d, k %d)", step, j, k)
		require.True(t, same(want, cached))
	}
	require.Equal(t, 1, c.generated, "no step generated again (refresh_every 0)")

	randomizeAdapter(t, l, 2)
	want, got := denoised(1, 2, 3)
	require.False(t, same(want, got), "the cache holds the trajectories of generation time")
}

// TestTrajectoryCacheResume (issue 17 acceptance 2): a run stopped at step 3 and resumed reads the
// cache generation it was using from the run folder instead of generating it again, generates the
// next refresh from the adapter it reached, and ends bit-identical to the run that never stopped.
// A cache file made for another preset is not used, and says why.
func TestTrajectoryCacheResume(t *testing.T) {
	tinyFastPreset := tinyFastPresets(t)
	cache := func(p *slider.Preset) { p.TrajectoryCache = slider.TrajectoryCache{Size: 2, RefreshEvery: 4} }
	train := func(p *slider.Preset, out string) (*Run, []byte, string) { return trainRun(t, p, out) }
	single, want, _ := train(tinyFastPreset(6, cache), t.TempDir())
	require.Equal(t, []int{2, 0}, []int{single.loop.traj.generated, single.loop.traj.read}, "generations 0 (step 1) and 1 (step 5)")
	b := single.loop.graphs.builds
	require.Equal(t, []int64{1, 1}, []int64{b[stepGraphKind].Load(), b[denoiseGraphKind].Load()},
		"the step and the denoise (at the generation's batch) compile once, over two generations")

	out := t.TempDir()
	first, _, _ := train(tinyFastPreset(3, cache), out)
	require.Equal(t, 1, first.loop.traj.generated)
	require.FileExists(t, rundir.Dir(out).Trajectories())
	resumed, got, log := train(tinyFastPreset(6, cache), out)
	require.Contains(t, log, "resuming from step 3 of 6")
	require.Contains(t, log, "trajectory_cache generation 0 read from")
	require.Equal(t, []int{1, 1}, []int{resumed.loop.traj.generated, resumed.loop.traj.read}, "generation 0 read, generation 1 generated")
	require.Equal(t, want, got, "the resumed run ends where the run that never stopped does")

	// Another preset's cache (another seed) is not used.
	other := tinyFastPreset(1, func(p *slider.Preset) { cache(p); p.Train.Seed = 8 })
	again, _, log := train(other, t.TempDir())
	require.Equal(t, 1, again.loop.traj.generated)
	require.NotContains(t, log, "not used")
	data, err := os.ReadFile(rundir.Dir(out).Trajectories())
	require.NoError(t, err)
	out2 := t.TempDir()
	require.NoError(t, os.MkdirAll(rundir.Dir(out2).Path()+"/cache", 0o755))
	require.NoError(t, os.WriteFile(rundir.Dir(out2).Trajectories(), data, 0o644))
	mismatched, _, log := train(other, out2)
	require.Contains(t, log, "not used (made for another model or preset)")
	require.Equal(t, 1, mismatched.loop.traj.generated)
}

// TestX0PoolNoDenoise (denoise none): a step's x_t is the scheduler's add_noise of a pool latent at
// the t* of the k it draws, with no partial denoise; the pool is the frozen model's (the adapter
// does not change it), generated once and read back by a resumed run.
func TestX0PoolNoDenoise(t *testing.T) {
	tinyFastPreset := tinyFastPresets(t)
	none := func(p *slider.Preset) {
		p.Denoise, p.DenoiseWithAdapter = slider.DenoiseNone, ptrTo(false)
		p.X0Pool = slider.X0Pool{Size: 2, Steps: 3, Timesteps: slider.PoolPartialTimesteps}
	}
	out := t.TempDir()
	run, err := setup(tinyFastPreset(2, none), Options{OutDir: out, Backend: testutil.Backend(t)})
	require.NoError(t, err)
	l := run.loop
	randomizeAdapter(t, l, 1)
	require.NoError(t, l.ensureTrajectories(0))
	pool := append([][]float32(nil), l.traj.x...)
	l.traj.gen = -1
	randomizeAdapter(t, l, 2)
	require.NoError(t, l.generateTrajectories(0))
	require.Equal(t, pool, l.traj.x, "the pool is the frozen model's")
	require.Len(t, l.draw.genSched.Timesteps(), 3, "x0_pool.steps")

	state := l.rng.State()
	batch, err := l.batch(1)
	require.NoError(t, err)
	x, tStar, err := l.drawLatents(1, batch, 1)
	require.NoError(t, err)
	replay := NewRNG(0)
	require.NoError(t, replay.Restore(state))
	ks := l.draw.ksAt(1)
	k := ks[replay.IntN(len(ks))]
	j := replay.IntN(l.traj.size)
	require.Equal(t, l.draw.tStar(k), tStar)
	g := l.groups[1][0]
	dims := []int{batch.size, l.latentChannels, g.LatentH, g.LatentW}
	eps := replay.Normal(batch.size * l.latentChannels * g.LatentH * g.LatentW)
	ac := l.draw.sched.AlphasCumprod()[tStar]
	x0 := l.traj.at(1, j, 0, dims)
	got := tensors.MustCopyFlatData[float32](x)
	for i := range got {
		want := float32(sqrt32(ac))*x0[i] + float32(sqrt32(1-ac))*eps[i]
		require.InDelta(t, want, got[i], 1e-5, "x_t = √ᾱ·x₀ + √(1−ᾱ)·ε at %d", i)
	}

	// x0_pool.timesteps uniform: t anywhere in the timestep range, not only the sampler's t*.
	l.traj.uniformT = true
	grid, seen := map[int64]bool{}, map[int64]bool{}
	for k := range l.draw.sched.Timesteps() {
		grid[l.draw.tStar(k)] = true
	}
	offGrid := 0
	for range 40 {
		_, tu, err := l.drawLatents(1, batch, 1)
		require.NoError(t, err)
		require.True(t, tu >= 0 && tu < int64(len(l.draw.sched.AlphasCumprod())), "t %d", tu)
		seen[tu] = true
		if !grid[tu] {
			offGrid++
		}
	}
	require.Greater(t, offGrid, 30, "uniform t lands off the sampler's timesteps")
	require.Greater(t, len(seen), 30)
	l.traj.uniformT = false

	_, err = run.Train()
	require.NoError(t, err)
	resumed, err := setup(tinyFastPreset(4, none), Options{OutDir: out, Backend: testutil.Backend(t)})
	require.NoError(t, err)
	_, err = resumed.Train()
	require.NoError(t, err)
	require.Equal(t, []int{0, 1}, []int{resumed.loop.traj.generated, resumed.loop.traj.read})
}

func sqrt32(x float32) float64 { return math.Sqrt(float64(x)) }
