package train

import (
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures/tinypipe"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/lora"
)

// setup plans and loads a run (what lobanb.Train and loba train do).
func setup(p *slider.Preset, opts Options) (*Run, error) {
	plan, err := NewPlan(p, opts)
	if err != nil {
		return nil, err
	}
	return NewRun(plan)
}

// tinyPreset is a LECO erase preset on a tiny fixture pipeline: 16×16 px (8×8 latents), a short
// partial denoise, so a step takes a fraction of a second on the pure-Go backend.
func tinyPreset(t testing.TB, steps int) *slider.Preset {
	t.Helper()
	tp := tinypipe.First(t, false)
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
	run, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
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
// (rows = prompts, columns = strengths) at those steps — for SD1.5 and SDXL, with the text
// conditioning encoded and then read from the cache (no text encoders loaded).
func TestSampleDuringTraining(t *testing.T) {
	for _, sdxl := range []bool{false, true} {
		p := tinyPreset(t, 2)
		p.Model.NameOrPath = tinypipe.First(t, sdxl).Dir
		p.Sample.Every = 2
		p.Sample.Prompts = []string{"a red cube", "a blue ball"}
		p.Sample.Strengths = []float64{-2, 0, 2}
		p.Sample.Steps = 3
		require.NoError(t, p.Normalize())
		var cache []byte
		for _, cached := range []bool{false, true} {
			t.Run(fmt.Sprintf("sdxl=%v/cached=%v", sdxl, cached), func(t *testing.T) {
				out := t.TempDir()
				if keep := os.Getenv("LOBA_KEEP_SAMPLES"); keep != "" {
					out = filepath.Join(keep, fmt.Sprintf("sdxl-%v-cached-%v", sdxl, cached)) // look at the grid
				}
				if cached {
					require.NotNil(t, cache)
					require.NoError(t, os.MkdirAll(filepath.Join(out, "cache"), 0o755))
					require.NoError(t, os.WriteFile(rundir.Dir(out).CondCache(), cache, 0o644))
				}
				run, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t)})
				require.NoError(t, err)
				require.Equal(t, cached, run.CondCached)
				_, err = run.Train()
				require.NoError(t, err)
				f, err := os.Open(filepath.Join(out, "samples", "step-000002.png"))
				require.NoError(t, err)
				defer f.Close()
				img, err := png.Decode(f)
				require.NoError(t, err)
				require.Equal(t, 3*16, img.Bounds().Dx(), "three strength columns of 16 px")
				require.Equal(t, 2*16, img.Bounds().Dy(), "two prompt rows of 16 px")
				if !cached {
					cache, err = os.ReadFile(rundir.Dir(out).CondCache())
					require.NoError(t, err)
				}
			})
		}
	}
}

// TestTrainOptionsRun: huber loss with sd-scripts' snr schedule, min-SNR-γ, noise offset, pyramid
// noise, Lion with a cosine schedule and warmup, clipping and bidirectional slider targets train
// through the same graphs, with finite losses that depend on the options.
func TestTrainOptionsRun(t *testing.T) {
	base := tinyPreset(t, 3)
	base.Objective, base.Mode = slider.ObjectiveSlider, slider.ModeLOBA
	base.Prompts = nil
	base.Targets = []slider.Target{{TargetClass: "a cube", Positive: "a red cube", Negative: "a blue cube"}}
	base.DenoiseWithAdapter = nil
	require.NoError(t, base.Normalize())
	plain := runLosses(t, base)

	p := tinyPreset(t, 3)
	*p = *base
	p.Train.LossType, p.Train.HuberSchedule, p.Train.HuberC = "huber", "snr", 0.1
	p.Train.MinSNRGamma = 5
	p.Train.NoiseOffset, p.Train.MultiresNoiseIterations, p.Train.MultiresNoiseDiscount = 0.1, 3, 0.3
	p.Train.Optimizer, p.Train.LRScheduler, p.Train.WarmupSteps, p.Train.MaxGradNorm = "lion", "cosine", 1, 1
	p.Train.WeightDecay, p.Train.Betas = nil, nil
	require.NoError(t, p.Normalize())
	opts := runLosses(t, p)
	require.Len(t, opts, 3)
	for i := range opts {
		require.False(t, math.IsNaN(float64(opts[i])) || math.IsInf(float64(opts[i]), 0))
		require.NotEqual(t, plain[i], opts[i], "step %d: the options must change the loss", i+1)
	}
}

func runLosses(t *testing.T, p *slider.Preset) []float32 {
	t.Helper()
	run, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	res, err := run.Train()
	require.NoError(t, err)
	return res.FirstLosses
}

// TestMergeLoRAsBeforeTraining: model.merge_loras folds a kohya LoRA into the frozen base weights
// before the new adapter trains: W' = W + s·(α/r)·up·down.
func TestMergeLoRAsBeforeTraining(t *testing.T) {
	first := tinyPreset(t, 2)
	first.Train.SaveDType = "float32"
	run1, err := setup(first, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	res, err := run1.Train()
	require.NoError(t, err)
	trained, err := run1.Net.Weights(run1.Pipeline.Ctx)
	require.NoError(t, err)

	plain, err := setup(tinyPreset(t, 1), Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	p := tinyPreset(t, 1)
	p.Model.MergeLoRAs = []slider.MergeLoRA{{Path: res.LoRAPath, Strength: 0.5}}
	require.NoError(t, p.Normalize())
	merged, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)

	var m *lora.Module
	for _, mod := range run1.Net.Modules {
		if mod.Kind == lora.Linear {
			m = mod
			break
		}
	}
	require.NotNil(t, m)
	scope := "/unet/" + strings.ReplaceAll(m.Path, ".", "/")
	w0 := tensorFloats(plain.Pipeline.Ctx.Store().Scope(scope).GetVariable("weight").MustValue())
	w1 := tensorFloats(merged.Pipeline.Ctx.Store().Scope(scope).GetVariable("weight").MustValue())
	requireMerged(t, m, w0, w1, trained[m.Path], 0.5)
}

// requireMerged checks that the Linear module m's base weight w0 became w1 = w0 + s·(α/r)·up·down.
func requireMerged(t *testing.T, m *lora.Module, w0, w1 []float32, w lora.ModuleWeights, s float64) {
	t.Helper()
	down, up := tensorFloats(w.Down), tensorFloats(w.Up)
	for o := 0; o < m.Out; o++ {
		for i := 0; i < m.In; i++ {
			var delta float64
			for r := 0; r < m.Rank; r++ {
				delta += float64(up[o*m.Rank+r]) * float64(down[r*m.In+i])
			}
			require.InDelta(t, float64(w0[o*m.In+i])+s*m.Scale()*delta, float64(w1[o*m.In+i]), 1e-6, "%s weight[%d,%d]", m.Path, o, i)
		}
	}
}

// TestTrainVPredictionZeroSNR: a v-prediction model with zero-terminal-SNR betas and trailing
// spacing (NoobAI-vpred style; docs/ALGORITHMS.md §3) trains with finite losses, min-SNR-γ included, and the
// partial denoise uses those settings.
func TestTrainVPredictionZeroSNR(t *testing.T) {
	p := tinyPreset(t, 3)
	p.Mode = slider.ModeLOBA
	p.DenoiseWithAdapter, p.DenoiseSchedulerConfig = nil, ""
	zsnr := true
	p.Model.PredictionType, p.Model.RescaleBetasZeroSNR, p.TimestepSpacing = "v_prediction", &zsnr, "trailing"
	p.Train.MinSNRGamma = 5
	require.NoError(t, p.Normalize())
	run, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	cfg := run.loop.draw.sched.Config()
	require.Equal(t, "v_prediction", cfg.PredictionType)
	require.True(t, cfg.RescaleBetasZeroSNR)
	require.Equal(t, "trailing", cfg.TimestepSpacing)
	require.Equal(t, float64(cfg.NumTrainTimesteps-1), run.loop.draw.sched.Timesteps()[0], "trailing spacing starts at the last timestep")
	require.Zero(t, run.loop.draw.sched.AlphasCumprod()[cfg.NumTrainTimesteps-1], "zero terminal SNR")
	res, err := run.Train()
	require.NoError(t, err)
	for _, l := range res.FirstLosses {
		require.False(t, math.IsNaN(float64(l)) || math.IsInf(float64(l), 0))
	}
}

// TestTrainThenEvaluate: a preset with an eval section writes eval.json (the slider or erase report)
// and grid.png after training (on the toy world: the eval refuses other models, TestEvalNeedsToyWorld).
func TestTrainThenEvaluate(t *testing.T) {
	for _, e := range []slider.Eval{
		{Kind: "slider", Target: "area", Prompts: []string{"a red cube", "a blue ball"}, Seeds: []int{0, 1}, Steps: 2},
		{Kind: "erase", Value: "red", Prompts: []string{"a red cube"}, Controls: []string{"a blue ball"}, Steps: 2},
	} {
		t.Run(e.Kind, func(t *testing.T) {
			p := tinyPreset(t, 1)
			p.Model.NameOrPath = "" // the toy world: the eval's read-outs measure its shapes
			p.MaxDenoisingSteps, p.Train.Resolution = 2, slider.Square(32)
			p.Eval = e
			require.NoError(t, p.Normalize())
			out := t.TempDir()
			run, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t)})
			require.NoError(t, err)
			res, err := run.Train()
			require.NoError(t, err)
			require.NotNil(t, res.Eval)
			data, err := os.ReadFile(filepath.Join(out, "eval.json"))
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, json.Unmarshal(data, &got))
			keys := []string{"effect_spearman", "effect_slope", "offtarget", "samples"}
			if e.Kind == "erase" {
				keys = []string{"erased_rate_before", "erased_rate_after", "control_change", "samples"}
			}
			for _, k := range keys {
				require.Contains(t, got, k)
			}
			require.FileExists(t, filepath.Join(out, "grid.png"))
		})
	}
}

// TestEvalNeedsToyWorld (issue 15 item 7): a toy-world eval on another model is refused by NewRun
// before anything is loaded or written; --no-eval (SkipEval) trains it.
func TestEvalNeedsToyWorld(t *testing.T) {
	p := tinyPreset(t, 1)
	p.Eval = slider.Eval{Kind: "slider", Target: "area", Prompts: []string{"a red cube"}, Seeds: []int{0}, Steps: 2}
	require.NoError(t, p.Normalize())
	out := filepath.Join(t.TempDir(), "run")
	_, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t)})
	require.ErrorContains(t, err, "is not a toy-world model")
	require.NoDirExists(t, out)
	run, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t), SkipEval: true})
	require.NoError(t, err)
	run.Close()
}

// TestEvalNamesCheckedBeforeTraining: an unknown eval attribute fails in Setup, naming the preset
// key and the valid names, before any step runs or any file is written.
func TestEvalNamesCheckedBeforeTraining(t *testing.T) {
	for _, c := range []struct {
		eval slider.Eval
		want string
	}{
		{slider.Eval{Kind: "slider", Target: "areaa", Prompts: []string{"a red cube"}}, `eval.target: eval: unknown target attribute "areaa"`},
		{slider.Eval{Kind: "slider", Target: "area", OffTarget: []string{"colour"}, Prompts: []string{"a red cube"}}, `eval.off_target: eval: unknown categorical attribute "colour"`},
		{slider.Eval{Kind: "erase", Value: "purple", Prompts: []string{"a red cube"}, Controls: []string{"a blue ball"}}, `eval.value: "purple" is not a color of the toy world (valid: red, green, blue, yellow)`},
		{slider.Eval{Kind: "erase", Attribute: "hue", Value: "red", Prompts: []string{"a red cube"}, Controls: []string{"a blue ball"}}, `eval.attribute: eval: unknown categorical attribute "hue"`},
	} {
		t.Run(c.want[:strings.Index(c.want, ":")], func(t *testing.T) {
			p := tinyPreset(t, 1)
			p.Eval = c.eval
			require.NoError(t, p.Normalize())
			out := t.TempDir()
			_, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t)})
			require.ErrorContains(t, err, c.want)
			entries, err := os.ReadDir(out)
			require.NoError(t, err)
			require.Empty(t, entries)
		})
	}
}

// TestStopCheckpointsAndResumes: a Stop request after step 3 (checkpoints every 4) saves step 3,
// returns ErrInterrupted, and the next run resumes from step 3 to the end.
func TestStopCheckpointsAndResumes(t *testing.T) {
	p := tinyPreset(t, 6)
	p.Train.CheckpointEvery = 4
	out := t.TempDir()
	run, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t)})
	require.NoError(t, err)
	run.Stop = func() bool { return run.StepsDone() >= 3 }
	_, err = run.Train()
	require.ErrorIs(t, err, ErrInterrupted)
	all, err := ListCheckpoints(run.Dir.Checkpoints())
	require.NoError(t, err)
	require.NotEmpty(t, all)
	c, err := LoadCheckpoint(all[len(all)-1])
	require.NoError(t, err)
	require.Equal(t, 3, c.Step)
	require.NoFileExists(t, filepath.Join(out, "lora.safetensors"))

	run2, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t)})
	require.NoError(t, err)
	res, err := run2.Train()
	require.NoError(t, err)
	require.Equal(t, 6, res.Steps)
	rows, err := os.ReadFile(filepath.Join(out, "loss.csv"))
	require.NoError(t, err)
	require.Equal(t, 1+6, len(strings.Split(strings.TrimSpace(string(rows)), "\n")), "loss.csv: header + one row per step")
}

// TestStopOnSignal: SIGINT becomes a stop request instead of ending the process.
func TestStopOnSignal(t *testing.T) {
	stop, release := StopOnSignal()
	defer release()
	require.False(t, stop())
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
	require.Eventually(t, stop, 5*time.Second, 10*time.Millisecond)
}

// TestFinishedRunIsCheckpointed: with checkpoint_every 0 ("only at the end") a finished run leaves a
// checkpoint at its last step, so running it again trains nothing and rewrites the same LoRA.
func TestFinishedRunIsCheckpointed(t *testing.T) {
	out := t.TempDir()
	p := tinyPreset(t, 3)
	p.Train.CheckpointEvery = 0
	run, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t)})
	require.NoError(t, err)
	res, err := run.Train()
	require.NoError(t, err)
	all, err := ListCheckpoints(run.Dir.Checkpoints())
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.Equal(t, "step-00000003", filepath.Base(all[0]))
	first, err := os.ReadFile(res.LoRAPath)
	require.NoError(t, err)

	p2 := tinyPreset(t, 3)
	p2.Train.CheckpointEvery, p2.Model.NameOrPath = 0, p.Model.NameOrPath // the same preset again
	again, err := setup(p2, Options{OutDir: out, Backend: testutil.Backend(t)})
	require.NoError(t, err)
	steps := 0
	again.OnStep = func(int, StepOutputs, float64, time.Duration) { steps++ }
	res, err = again.Train()
	require.NoError(t, err)
	require.Zero(t, steps, "a finished run trains nothing when run again")
	require.Equal(t, 3, res.Steps)
	second, err := os.ReadFile(res.LoRAPath)
	require.NoError(t, err)
	require.Equal(t, first, second)
	pts, err := run.Dir.ReadLoss()
	require.NoError(t, err)
	require.Len(t, pts, 3)
}
