package train

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/internal/killpoint"
	"github.com/loba-dev/loba/models/schedulers"
	"github.com/loba-dev/loba/models/sd"
)

// entry is one training unit as the loop sees it (a normalized preset entry, docs/ALGORITHMS.md §1–2):
// its four prompts, signed guidance (−g erase, +g enhance), adapter multiplier, loss weight, batch
// size and latent size.
type entry struct {
	Target, Positive, Neutral, Unconditional string
	SignedGuidance, Multiplier, Weight       float64
	BatchSize                                int
	LatentH, LatentW                         int
	// TimeIDs are SDXL's added time ids for the entry's resolution (nil for SD1.x).
	TimeIDs []float32
	// Region are its §5 settings (mask, λ_keep, style).
	Region entryRegion
}

// ErrNonFinite is returned (wrapped) when a step's loss is NaN or ±Inf.
var ErrNonFinite = errors.New("loss is not finite")

// ErrInterrupted is returned (wrapped) when Run.Stop asked the run to stop; the step reached is
// checkpointed first, so the same command (or cell) resumes from it.
var ErrInterrupted = errors.New("training interrupted")

// loop is a configured training run: the entries and their cached conditionings, what each step
// draws, the compiled graphs, and the state a checkpoint saves. NewRun (run.go) builds it from a plan.
type loop struct {
	ctx *model.Scope // the root scope: the UNet, the adapter and the optimizer state

	// groups are the entries trained together in one step (one batch); a step picks one at random.
	groups [][]entry
	// region are the §5 terms the graphs compile in (regionTermsFor the plan); seqLen is the text
	// conditioning's token count (the concept tokens' length).
	region regionTerms
	seqLen int
	// conds holds the cached conditioning of every prompt, each with batch 1; batches each group's
	// assembled batch, made at its first step (a group's batch is the same at every step).
	conds          map[string]sd.Conditioning
	batches        map[int]*assembled
	latentChannels int

	draw   drawSettings
	graphs loopGraphs
	// traj is what the fast modes sample from (trajcache.go); nil: the partial denoise every step.
	traj *trajectories
	// evaluating is set during evalLoss.
	evaluating bool
	logf       func(format string, args ...any)
	// tokenIDs tokenizes the target prompts of a batch when text-encoder networks train (nil: none);
	// denoiseText tells that the partial denoise runs with them (denoise_with_adapter).
	tokenIDs    func(prompts []string) ([]*tensors.Tensor, error)
	denoiseText bool

	// adapter are the adapter's variables; optimizerState lists the optimizer's (created when the
	// step graph is first built). A checkpoint saves both, with the RNG.
	adapter        []*model.Variable
	optimizerState func() []*model.Variable
	lr             func(step int) float64
	rng            *RNG

	steps    int // the run's length
	stepDone int // steps already done (after a resume)
	ckpt     checkpointing
}

// drawSettings are what a step draws: the partial denoise's k and t*, the initial noise, the
// huber parameter at t*.
type drawSettings struct {
	// sched is the partial-denoise scheduler with SetTimesteps(max_denoising_steps) done.
	sched schedulers.Scheduler
	// ks are the numbers of partial-denoise steps k drawn from (uniformly): [min_denoising_steps,
	// N−1], less those whose t* is outside timestep_range.
	ks []int
	// windows, when timestep_schedule is set, replace ks from their step on (RC-LOBA's moving
	// timestep window): ksAt.
	windows []ksWindow
	// tStar maps k (denoise steps taken) to the timestep the references are evaluated at.
	tStar func(k int) int64
	// tRange is the timestep window [lo, hi] at a step (1-based): x0_pool.timesteps uniform draws t
	// in it.
	tRange func(step int) (lo, hi int)
	// genSched is the scheduler the fast modes generate with: sched, or with denoise none the x₀
	// pool's (x0_pool.steps).
	genSched schedulers.Scheduler
	// denoiseWithAdapter keeps the adapter on (at the entry multipliers) during the partial denoise.
	denoiseWithAdapter bool
	noiseOffset        float64
	// multiresIterations (0 = off) and multiresDiscount: kohya's pyramid noise on the initial latent.
	multiresIterations int
	multiresDiscount   float64
	// huberSchedule ("" = constant), huberC and huberScale give the huber / smooth_l1 parameter at
	// t* (sd-scripts).
	huberSchedule      string
	huberC, huberScale float64
}

// loopGraphs are the loop's compiled graphs.
type loopGraphs struct {
	denoise *denoiseGraph
	step    *stepGraph
	eval    *stepGraph // the loss-only graph (newStepGraph with no optimizer), for evalLoss
	builds  *graphBuilds
}

// checkpointing says where and how often the loop checkpoints.
type checkpointing struct {
	root       string            // the run folder's checkpoints/
	every      int               // 0: only at the end (and when interrupted)
	keep       int               // newest checkpoints kept (0: all)
	presetHash string            // the preset's sha256, recorded
	function   map[string]string // the keys a resume must agree on (trainedFunction)
}

// hooks are the callbacks of one loop.run.
type hooks struct {
	// onStep is called after every step; onSample every sampleEvery steps.
	onStep      func(step int, out StepOutputs, lr float64, elapsed time.Duration)
	sampleEvery int
	onSample    func(step int) error
	// onSave writes a loadable LoRA of the step every saveEvery steps (train.save_every).
	saveEvery int
	onSave    func(step int) error
	// stop, checked after every step, ends the run early: the step reached is checkpointed and run
	// returns ErrInterrupted.
	stop func() bool
}

// restore sets the run's state from checkpoint c: the adapter and optimizer variables, the RNG and
// the step reached.
func (l *loop) restore(c *Checkpoint) error {
	if err := c.Restore(l.ctx, l.adapter); err != nil {
		return err
	}
	if err := l.rng.Restore(c.RNG); err != nil {
		return fmt.Errorf("checkpoint %s: %w", c.Dir, err)
	}
	l.stepDone = c.Step
	return nil
}

// checkpoint saves the state after l.stepDone steps.
func (l *loop) checkpoint() (string, error) {
	vars := append(append([]*model.Variable{}, l.adapter...), l.optimizerState()...)
	c := Checkpoint{Step: l.stepDone, RNG: l.rng.State(), Preset: l.ckpt.presetHash, Function: l.ckpt.function, TrainSteps: l.steps}
	return SaveCheckpoint(l.ckpt.root, vars, c, l.ckpt.keep)
}

// run trains from l.stepDone to l.steps, checkpointing every ckpt.every steps and at the end. A non-finite loss
// stops the run with ErrNonFinite before anything is saved: the in-memory adapter may hold
// non-finite values then, but the last good checkpoint on disk is kept (a non-finite state is never
// checkpointed), and a later run resumes from it.
func (l *loop) run(h hooks) error {
	start := time.Now()
	for l.stepDone < l.steps {
		step := l.stepDone + 1
		killpoint.Here("step") // the crash tests: before a step
		out, lr, err := l.runGraph(l.graphs.step, step)
		if err != nil {
			return err
		}
		if math.IsNaN(float64(out.Loss)) || math.IsInf(float64(out.Loss), 0) {
			return fmt.Errorf("step %d: %w (loss=%v, lr=%g): the learning rate is probably too high; "+
				"the last good checkpoint is kept in %s", step, ErrNonFinite, out.Loss, lr, l.ckpt.root)
		}
		l.stepDone = step
		if h.onStep != nil {
			h.onStep(step, out, lr, time.Since(start))
		}
		if err := l.afterStep(step, h); err != nil {
			return err
		}
	}
	return nil
}

// afterStep checkpoints, samples and stops as the settings and hooks ask after step. The last step
// is always checkpointed (checkpoint_every 0 means "only at the end"), so that running a finished
// run again trains nothing and a run extended later resumes from it.
func (l *loop) afterStep(step int, h hooks) error {
	saved := false
	if (l.ckpt.every > 0 && step%l.ckpt.every == 0) || step == l.steps {
		if _, err := l.checkpoint(); err != nil {
			return fmt.Errorf("step %d: saving checkpoint: %w", step, err)
		}
		saved = true
	}
	if h.onSave != nil && h.saveEvery > 0 && step%h.saveEvery == 0 {
		if err := h.onSave(step); err != nil {
			return fmt.Errorf("step %d: saving the LoRA of the step: %w", step, err)
		}
	}
	if h.onSample != nil && h.sampleEvery > 0 && step%h.sampleEvery == 0 {
		if err := h.onSample(step); err != nil {
			return fmt.Errorf("step %d: sampling: %w", step, err)
		}
	}
	if h.stop != nil && h.stop() && step < l.steps {
		if !saved {
			if _, err := l.checkpoint(); err != nil {
				return fmt.Errorf("step %d: saving checkpoint: %w", step, err)
			}
		}
		return fmt.Errorf("step %d of %d: %w; checkpoint saved in %s: run the same command again to resume", step, l.steps, ErrInterrupted, l.ckpt.root)
	}
	return nil
}

// evalLoss is the objective's mean over n batches drawn from a fresh RNG seeded with seed — the
// same draws every call, so losses before and after training compare on identical (x_t, t*)
// pairs up to the adapter's own effect on the partial denoise. It changes no state.
func (l *loop) evalLoss(n int, seed uint64) (float64, error) {
	saved := l.rng
	defer func() { l.rng, l.evaluating = saved, false }()
	l.rng, l.evaluating = NewRNG(seed), true
	var sum float64
	for i := 0; i < n; i++ {
		out, _, err := l.runGraph(l.graphs.eval, 1)
		if err != nil {
			return 0, err
		}
		sum += float64(out.Loss)
	}
	return sum / float64(n), nil
}

// runGraph draws one batch's randomness, its (x_t, t*) (drawLatents) and then runs graph (the train
// step or the evaluation graph) at optimizer step `step`.
func (l *loop) runGraph(graph *stepGraph, step int) (StepOutputs, float64, error) {
	gi := l.rng.IntN(len(l.groups))
	batch, err := l.batch(gi)
	if err != nil {
		return StepOutputs{}, 0, err
	}
	x, tStar, err := l.drawLatents(gi, batch, step)
	if err != nil {
		return StepOutputs{}, 0, fmt.Errorf("step %d: %w", step, err)
	}
	ts := make([]int64, batch.size)
	for i := range ts {
		ts[i] = tStar
	}
	lr := l.lr(step - 1)
	huberC, err := l.huberAt(tStar)
	if err != nil {
		return StepOutputs{}, 0, err
	}
	out, err := graph.Run(stepInputs{
		X: x, T: tensors.FromValue(ts),
		Target: batch.target, Positive: batch.positive, Neutral: batch.neutral, Unconditional: batch.unconditional,
		SignedGuidance: batch.guidance, Multiplier: batch.multiplier, Weight: batch.weight,
		LR: float32(lr), Step: int32(step), HuberC: float32(huberC),
		Mask: batch.mask, Preserve: batch.preserve, Style: batch.style, Concept: batch.concept,
		TargetIDs: batch.targetIDs,
	})
	if err != nil {
		return out, lr, fmt.Errorf("step %d: %w", step, err)
	}
	return out, lr, nil
}

// drawLatents draws group gi's x_t and its timestep t* for step: by the partial denoise from fresh
// noise (docs/ALGORITHMS.md §1 step 3), from the trajectory cache, or from denoise none's x₀ pool
// (§4; trajcache.go). The evaluation (l.evaluating) samples the generation the training is at.
func (l *loop) drawLatents(gi int, batch *assembled, step int) (*tensors.Tensor, int64, error) {
	g := l.groups[gi][0]
	dims := []int{batch.size, l.latentChannels, g.LatentH, g.LatentW}
	c := l.traj
	if c != nil {
		gen := c.genFor(step)
		if l.evaluating {
			gen = c.genFor(l.stepDone + 1)
			if c.gen >= 0 {
				gen = c.gen
			}
		}
		if err := l.ensureTrajectories(gen); err != nil {
			return nil, 0, err
		}
	}
	ks := l.draw.ksAt(step)
	k := ks[l.rng.IntN(len(ks))]
	switch {
	case c != nil && c.pool: // x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε at the partial denoise's t* …
		j := l.rng.IntN(c.size)
		t := l.draw.tStar(k)
		if c.uniformT { // … or t uniform in the timestep range
			lo, hi := l.draw.tRange(step)
			t = int64(lo + l.rng.IntN(hi-lo+1))
		}
		ts := make([]float64, batch.size)
		for i := range ts {
			ts[i] = float64(t)
		}
		eps := l.rng.Normal(batch.size * l.latentChannels * g.LatentH * g.LatentW)
		x, err := l.draw.sched.AddNoise(c.at(gi, j, 0, dims), eps, ts)
		if err != nil {
			return nil, 0, err
		}
		return tensors.FromFlatDataAndDimensions(x, dims...), t, nil
	case c != nil:
		j := l.rng.IntN(c.size)
		return tensors.FromFlatDataAndDimensions(c.at(gi, j, k, dims), dims...), l.draw.tStar(k), nil
	}
	noise, err := l.initialLatentsFrom(l.rng, batch.size, g.LatentH, g.LatentW)
	if err != nil {
		return nil, 0, err
	}
	x, err := l.partialDenoise(tensors.FromFlatDataAndDimensions(noise, dims...), k, batch)
	if err != nil {
		return nil, 0, err
	}
	return x, l.draw.tStar(k), nil
}

// initialLatentsFrom draws x_T [b, C, h, w] (flat) from rng: a standard normal with kohya's noise
// offset, then its pyramid noise, scaled by the scheduler's initial sigma.
func (l *loop) initialLatentsFrom(rng *RNG, b, h, w int) ([]float32, error) {
	c := l.latentChannels
	noise := rng.Normal(b * c * h * w)
	if l.draw.noiseOffset != 0 { // kohya: the offset first, then the pyramid noise
		if err := noiseOffsetHost(noise, b, c, h, w, l.draw.noiseOffset, rng.Normal(b*c)); err != nil {
			return nil, err
		}
	}
	if it := l.draw.multiresIterations; it > 0 {
		sizes, normals := multiresInputs(rng, b, c, h, w, it)
		if err := multiresNoiseHost(noise, b, c, h, w, it, l.draw.multiresDiscount, sizes, normals); err != nil {
			return nil, err
		}
	}
	sigma := float32(l.draw.sched.InitNoiseSigma())
	for i := range noise {
		noise[i] *= sigma
	}
	return noise, nil
}

// partialDenoise takes k steps of the partial denoise from x (docs/ALGORITHMS.md §1 step 3), with
// the adapter at the batch's multipliers or off.
func (l *loop) partialDenoise(x *tensors.Tensor, k int, batch *assembled) (*tensors.Tensor, error) {
	dims := x.Shape().Dimensions
	mult := batch.multiplier
	if !l.draw.denoiseWithAdapter {
		mult = tensors.FromShape(shapes.Make(dtypes.Float32, batch.size)) // zeros: the frozen base model
	}
	timesteps := l.draw.sched.Timesteps()
	var err error
	for i := 0; i < k; i++ {
		var stepNoise *tensors.Tensor
		if l.graphs.denoise.NeedsNoise {
			stepNoise = tensors.FromFlatDataAndDimensions(l.rng.Normal(x.Shape().Size()), dims...)
		}
		if x, err = l.graphs.denoise.Run(x, int64(timesteps[i]), batch.unconditional, batch.target, mult, stepNoise, l.denoiseIDs(batch.uncondIDs, batch.targetIDs)...); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// denoiseIDs are the partial denoise's token-id inputs: the unconditional then the target ids when
// it denoises with text-encoder networks, else none.
func (l *loop) denoiseIDs(unc, tgt []*tensors.Tensor) []*tensors.Tensor {
	if !l.denoiseText {
		return nil
	}
	return append(append([]*tensors.Tensor(nil), unc...), tgt...)
}

// huberAt is the huber / smooth_l1 parameter at t* (constant unless a schedule is set).
func (l *loop) huberAt(tStar int64) (float64, error) {
	d := l.draw
	if d.huberSchedule == "" {
		return d.huberC, nil
	}
	ac := d.sched.AlphasCumprod()
	return huberThreshold(d.huberSchedule, d.huberC, d.huberScale, int(tStar), len(ac), ac)
}

// assembled is one step's batch on the host.
type assembled struct {
	size                                     int
	target, positive, neutral, unconditional sd.Conditioning
	guidance, multiplier, weight             *tensors.Tensor
	mask, preserve, style, concept           *tensors.Tensor // the §5 inputs (regionTensors)
	// targetIDs and uncondIDs are the rows' target and unconditional prompts' token ids, one [B, S]
	// per text encoder (text-encoder networks only).
	targetIDs, uncondIDs []*tensors.Tensor
}

// batch is group gi's assembled batch, assembled at its first use and kept.
func (l *loop) batch(gi int) (*assembled, error) {
	if a := l.batches[gi]; a != nil {
		return a, nil
	}
	a, err := l.assemble(l.groups[gi])
	if err != nil {
		return nil, err
	}
	if l.batches == nil {
		l.batches = map[int]*assembled{}
	}
	l.batches[gi] = a
	return a, nil
}

// assemble stacks the cached conditionings and per-sample values of a group into one batch.
func (l *loop) assemble(group []entry) (*assembled, error) {
	var rows [4][]*sd.Conditioning // target, positive, neutral, unconditional
	var g, m, w []float32
	var targets, uncs []string
	for _, e := range group {
		for i := 0; i < max(e.BatchSize, 1); i++ {
			targets, uncs = append(targets, e.Target), append(uncs, e.Unconditional)
			for j, prompt := range []string{e.Target, e.Positive, e.Neutral, e.Unconditional} {
				c, ok := l.conds[prompt]
				if !ok {
					return nil, fmt.Errorf("train: prompt %q has no cached conditioning", prompt)
				}
				if e.TimeIDs != nil {
					c.TimeIDs = tensors.FromFlatDataAndDimensions(e.TimeIDs, 1, len(e.TimeIDs))
				}
				rows[j] = append(rows[j], &c)
			}
			g = append(g, float32(e.SignedGuidance))
			m = append(m, float32(e.Multiplier))
			w = append(w, float32(e.Weight))
		}
	}
	a := &assembled{size: len(g), guidance: tensors.FromValue(g), multiplier: tensors.FromValue(m), weight: tensors.FromValue(w)}
	a.mask, a.preserve, a.style, a.concept = regionTensors(group, l.region, l.seqLen)
	if l.tokenIDs != nil {
		var err error
		if a.targetIDs, err = l.tokenIDs(targets); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		if a.uncondIDs, err = l.tokenIDs(uncs); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	for j, into := range []*sd.Conditioning{&a.target, &a.positive, &a.neutral, &a.unconditional} {
		c, err := sd.ConcatConditionings(rows[j]...)
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		*into = *c
	}
	return a, nil
}
