package train

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	. "github.com/gomlx/gomlx/core/graph"

	"github.com/loba-dev/loba/internal/killpoint"
	"github.com/loba-dev/loba/lobanb/eval"
	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/sd"
)

// Run is a planned run with its model loaded: the pipeline, the adapter network, the cached text
// conditioning and the training loop, its graphs compiled on first use.
type Run struct {
	Plan     *Plan
	Dir      rundir.Dir
	Pipeline *sd.Pipeline
	Net      *lora.Network
	// TextNets are the text encoders' networks (network.text_encoder; nil without).
	TextNets []*lora.Network
	// CondCached tells that the text conditioning came from the run folder's cache.
	CondCached bool

	// OnStep is called after every step (progress bars, charts).
	OnStep func(step int, out StepOutputs, lr float64, elapsed time.Duration)
	// Stop, checked after every step, ends the run early (Ctrl-C, a notebook's interrupt): the step
	// reached is checkpointed and Train returns ErrInterrupted. The evaluation checks it too.
	Stop func() bool
	// OnPhase is told what the run does when it is not stepping: "compiling …" before a graph's
	// first use, "evaluating …" (progress bars show it).
	OnPhase func(phase string)
	// OnEval is called as the evaluation after training samples its images: done of total.
	OnEval func(done, total int)

	loop                  *loop
	sampleCond, sampleNeg *sd.Conditioning
	log                   io.Writer
	release               func() // the run folder's lock (rundir.Dir.Lock)
}

// Result is what a finished run produced.
type Result struct {
	LoRAPath    string
	Steps       int
	FirstLosses []float32 // the losses of the first steps of this process (for reports)
	LastLoss    float32
	// Eval is the evaluation report when the preset has one.
	Eval *eval.Report
}

// NewRun checks that the run folder's checkpoints may be resumed with the plan's preset (before
// anything loads: a preset that changes the trained function is refused, naming the keys), loads the
// model the plan names, caches the text conditioning of every prompt (then frees
// the text encoders), resolves and initialises the adapter, and compiles nothing yet: the step and
// denoise graphs compile on their first use, once per shape. First of all, the memory plan
// (EstimateRun) must say the run fits the device's memory: a run that cannot fit gets an error
// wrapping ErrDoesNotFit, with the figures and the fix, and nothing is loaded or written. Then it
// takes the folder's lock and restores the newest usable checkpoint (StepsDone is the step it
// continues from), falling back past corrupt or non-finite ones and saying so.
func NewRun(plan *Plan) (*Run, error) {
	if err := plan.resolveDType(); err != nil { // before any loading: float16 on the CPU fails here
		return nil, err
	}
	r := &Run{Plan: plan, Dir: plan.Dir, log: plan.Options.Log}
	extend, err := checkResumable(r.Dir.Checkpoints(), plan.Preset, plan.Schedule) // before any model loads
	if err != nil {
		return nil, err
	}
	dir, err := modelDir(plan.Preset, plan.Options)
	if err != nil {
		return nil, err
	}
	if plan.EvalAfter {
		if err := eval.CheckModel(plan.Preset, dir); err != nil {
			return nil, err
		}
	}
	e, err := checkFits(plan, dir, plan.Options.Backend) // before anything is loaded or written
	if err != nil {
		return nil, err
	}
	if e != nil && !sd.Accelerator(plan.Options.Backend) {
		tuneGC(e.Params["unet"] >= realSizeParams) // real size
	}
	if r.release, err = r.Dir.Lock(); err != nil { // one run per folder: the cache and the log are written next
		return nil, err
	}
	if err := r.load(dir, extend); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// load does NewRun's work under the run folder's lock: it writes DIR/preset.yaml, picks the
// checkpoint to resume from, loads the model and the conditioning, sets up the adapter and the loop
// and restores the checkpoint. extend is checkResumable's message.
func (r *Run) load(dir, extend string) error {
	plan := r.Plan
	if err := r.Dir.SavePreset(plan.Preset); err != nil {
		return err
	}
	ckpt, err := selectCheckpoint(r.Dir.Checkpoints(), r.logf) // falls back past bad ones, saying so
	if err != nil {
		return err
	}
	conds, err := r.loadConditioning(dir)
	if err != nil {
		return err
	}
	vars, params, err := r.setupAdapter()
	if err != nil {
		return err
	}
	opt, err := NewOptimizer(plan.Optimizer)
	if err != nil {
		return err
	}
	lr, err := NewSchedule(plan.Schedule)
	if err != nil {
		return fmt.Errorf("preset %s: train.lr_scheduler: %w", plan.Preset.File(), err)
	}
	if r.loop, err = r.buildLoop(dir, conds, vars, params, opt, lr); err != nil {
		return err
	}
	if ckpt == nil {
		return nil
	}
	if err := r.loop.restore(ckpt); err != nil {
		return err
	}
	if extend != "" {
		r.logf("%s", extend)
	}
	r.logf("resuming from step %d of %d (%s)", ckpt.Step, plan.Preset.Train.Steps, ckpt.Dir)
	return nil
}

// Close releases the run folder (Train does when it returns). A run that is not trained should be
// closed, so that another process may use the folder.
func (r *Run) Close() {
	if r.release != nil {
		r.release()
		r.release = nil
	}
}

func (r *Run) logf(format string, args ...any) {
	if r.log != nil {
		fmt.Fprintf(r.log, format+"\n", args...)
	}
}

// StepsDone is the number of steps trained so far (after a resume, those of earlier runs too).
func (r *Run) StepsDone() int { return r.loop.stepDone }

// EvalLoss is the objective's mean over n batches drawn from a fresh RNG seeded with seed: the
// same draws every call, so losses before and after training compare. It changes no state.
func (r *Run) EvalLoss(n int, seed uint64) (float64, error) { return r.loop.evalLoss(n, seed) }

// Train runs the loop from the newest checkpoint (or from scratch), appends every step to the
// run folder's loss.csv, checkpoints every train.checkpoint_every steps, writes lora.safetensors at
// the end and, when the plan says so, evaluates it. An error leaves the last good checkpoint in place.
func (r *Run) Train() (*Result, error) {
	defer r.Close()
	if err := r.Dir.Create(); err != nil {
		return nil, err
	}
	losses, err := r.Dir.OpenLossLog(r.loop.stepDone)
	if err != nil {
		return nil, err
	}
	defer losses.Close()
	res := &Result{}
	h := hooks{stop: r.Stop, onStep: func(step int, out StepOutputs, lr float64, elapsed time.Duration) {
		losses.Append(step, out.Loss, lr, elapsed.Seconds())
		if len(res.FirstLosses) < 16 {
			res.FirstLosses = append(res.FirstLosses, out.Loss)
		}
		res.LastLoss = out.Loss
		if len(res.FirstLosses) == 1 {
			r.phase("training")
		}
		if r.OnStep != nil {
			r.OnStep(step, out, lr, elapsed)
		}
	}}
	if r.loop.stepDone < r.loop.steps {
		r.phase("compiling the partial-denoise and training graphs (once per shape; the first step takes longer) …")
	}
	if p := r.Plan.Preset; sampling(p) {
		h.sampleEvery, h.onSample = p.Sample.Every, r.sample
	}
	h.saveEvery = r.Plan.Preset.Train.SaveEvery
	h.onSave = func(step int) error { return r.SaveLoRA(r.Dir.LoRAStep(step)) }
	if err := r.loop.run(h); err != nil {
		return nil, err
	}
	res.Steps, res.LoRAPath = r.loop.stepDone, r.Dir.LoRA()
	if err := r.SaveLoRA(res.LoRAPath); err != nil {
		return nil, err
	}
	if r.Plan.EvalAfter {
		r.phase(fmt.Sprintf("evaluating (%s): compiling the sampler, then sampling …", r.Plan.Preset.Eval.Kind))
		r.installAdapter()
		if res.Eval, err = eval.Evaluate(r.Dir, eval.Options{Preset: r.Plan.Preset, Pipeline: r.Pipeline,
			Progress: r.evalProgress, Stop: r.Stop}); err != nil {
			return nil, fmt.Errorf("evaluating: %w", err)
		}
	}
	return res, nil
}

// phase tells OnPhase what the run does now (the log, when there is no OnPhase).
func (r *Run) phase(what string) {
	if r.OnPhase != nil {
		r.OnPhase(what)
	} else if what != "training" {
		r.logf("%s", what)
	}
}

// evalProgress passes the evaluation's progress to OnEval.
func (r *Run) evalProgress(done, total int) {
	killpoint.Here("eval") // the crash tests: during the evaluation
	if r.OnEval != nil {
		r.OnEval(done, total)
	}
}

// installAdapter makes the pipeline's sampling graphs use the trained adapter (its text-encoder
// networks too).
func (r *Run) installAdapter() {
	r.Pipeline.SetAdapter(func(m *Node) nn.Adapter { return r.Net.Adapter(r.Pipeline.Ctx, "/unet", m) })
	r.Pipeline.SetTextAdapter(r.Pipeline.TextAdapterOf(r.TextNets))
}

// Modules is the number of adapted modules (the UNet's and the text encoders').
func (r *Run) Modules() int {
	n := 0
	for _, net := range append([]*lora.Network{r.Net}, r.TextNets...) {
		n += len(net.Modules)
	}
	return n
}

// networks are the adapter's networks as saved: the UNet's (when it has modules) and the text
// encoders'.
func (r *Run) networks() []*lora.Network {
	var out []*lora.Network
	if len(r.Net.Modules) > 0 {
		out = append(out, r.Net)
	}
	return append(out, r.TextNets...)
}

// SaveLoRA writes the adapter as a kohya LoRA file with the metadata of docs/ALGORITHMS.md §7 and
// LOBA's own (the preset JSON, the step reached).
func (r *Run) SaveLoRA(path string) error {
	p := r.Plan.Preset
	dtype := map[string]safetensors.DType{"float16": safetensors.F16, "bfloat16": safetensors.BF16, "float32": safetensors.F32}[p.Train.SaveDType]
	base := "sd_v1"
	if r.Pipeline.Kind == sd.KindSDXL {
		base = "sdxl_base_v1-0"
	}
	pred := "epsilon"
	if c := r.loop.draw.sched.Config(); c.PredictionType == "v_prediction" {
		pred = "v"
	}
	res := p.Train.Resolution
	meta := map[string]string{
		"loba_preset":         p.JSON(),
		"loba_steps":          strconv.Itoa(r.loop.stepDone),
		"loba_seed":           strconv.FormatInt(p.Train.Seed, 10),
		"loba_objective":      p.Objective,
		"loba_mode":           p.Mode,
		"ss_training_comment": "trained with LOBA",
	}
	opts := lora.SaveOptions{
		DType: dtype, Layout: p.Train.SaveLayout, BaseModel: base, PredictionType: pred,
		Title: p.Output.Name, Resolution: fmt.Sprintf("%dx%d", res[1], res[0]), Metadata: meta,
	}
	// No wall-clock date by default: the same preset and seed give the same file bytes.
	if sde, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		opts.Date = time.Unix(sde, 0)
	}
	return lora.SaveKohya(r.Pipeline.Ctx, path, r.networks(), opts)
}

// sample writes the sample grid of the current adapter: rows = prompts, columns = strengths.
func (r *Run) sample(step int) error {
	p := r.Plan.Preset
	r.installAdapter()
	res := p.Train.Resolution
	if res.IsZero() && len(r.loop.groups) > 0 {
		e := r.loop.groups[0][0]
		res = slider.Resolution{e.LatentH * r.Pipeline.LatentScale(), e.LatentW * r.Pipeline.LatentScale()}
	}
	path := r.Dir.Sample(step)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	rows, err := r.Pipeline.SampleRows(sd.SampleRequest{Cond: r.sampleCond, NegativeCond: r.sampleNeg,
		Height: res[0], Width: res[1], Steps: p.Sample.Steps, GuidanceScale: p.Sample.GuidanceScale,
		Seed: uint64(p.Sample.Seed), Strengths: p.Sample.Strengths, StartNoise: float64(p.Sample.StartNoise)})
	if err != nil {
		return err
	}
	return sd.SaveGrid(path, overlayMasks(rows, p.Sample.Prompts, r.loop.groups))
}
