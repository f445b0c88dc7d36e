package train

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/schedulers"
)

// Entry is one training unit as the loop sees it (a normalized preset entry, docs/ALGORITHMS.md §1–2):
// its four prompts, signed guidance (−g erase, +g enhance), adapter multiplier, loss weight, batch
// size and latent size.
type Entry struct {
	Target, Positive, Neutral, Unconditional string
	SignedGuidance, Multiplier, Weight       float64
	BatchSize                                int
	LatentH, LatentW                         int
	// TimeIDs are SDXL's added time ids for the entry's resolution (nil for SD1.x).
	TimeIDs []float32
}

// ErrNonFinite is returned (wrapped) when a step's loss is NaN or ±Inf.
var ErrNonFinite = errors.New("loss is not finite")

// ErrInterrupted is returned (wrapped) when Loop.Stop asked the run to stop; the step reached is
// checkpointed first, so the same command (or cell) resumes from it.
var ErrInterrupted = errors.New("training interrupted")

// Loop is a configured training run: the compiled graphs, the cached conditionings, the state to
// checkpoint, and the host RNG. Setup (setup.go) builds it from a preset.
type Loop struct {
	Backend compute.Backend
	Ctx     *model.Scope

	// Groups are the entries trained together in one step (one batch); a step picks a group at random.
	Groups [][]Entry
	// Conds holds the cached conditioning of every prompt, each with batch 1.
	Conds          map[string]CondTensors
	LatentChannels int
	SDXL           bool

	// Sched is the partial-denoise scheduler with SetTimesteps(max_denoising_steps) done.
	Sched schedulers.Scheduler
	// Ks are the numbers of partial-denoise steps k drawn from (uniformly): [min_denoising_steps,
	// N−1], less those whose t* is outside timestep_range.
	Ks []int
	// TStar maps k (denoise steps taken) to the timestep the references are evaluated at.
	TStar func(k int) int64
	// DenoiseWithAdapter keeps the adapter on (at the entry multipliers) during the partial denoise.
	DenoiseWithAdapter bool
	NoiseOffset        float64
	// MultiresIterations (0 = off) and MultiresDiscount: kohya's pyramid noise on the initial latent.
	MultiresIterations int
	MultiresDiscount   float64
	// HuberSchedule, HuberC and HuberScale give the huber / smooth_l1 parameter at t* (sd-scripts).
	HuberSchedule      string
	HuberC, HuberScale float64

	Denoise *DenoiseGraph
	Step    *StepGraph
	// Eval is the loss-only graph (NewStepGraph with no optimizer), for EvalLoss.
	Eval *StepGraph

	// Adapter are the adapter's variables; OptimizerState lists the optimizer's (created when the
	// step graph is first built). A checkpoint saves both.
	Adapter        []*model.Variable
	OptimizerState func() []*model.Variable
	LR             func(step int) float64
	RNG            *RNG

	Steps           int
	StepDone        int // steps already done (after a resume)
	CheckpointEvery int
	KeepCheckpoints int
	OutDir          string
	PresetHash      string

	// OnStep is called after every step (progress bars, charts); OnSample every SampleEvery steps.
	OnStep      func(step int, out StepOutputs, lr float64, elapsed time.Duration)
	SampleEvery int
	OnSample    func(step int) error
	// Stop, checked after every step, ends the run early (Ctrl-C, a notebook's interrupt): the step
	// reached is checkpointed and Run returns ErrInterrupted.
	Stop func() bool
}

// CheckpointRoot is where the loop's checkpoints go.
func (l *Loop) CheckpointRoot() string { return filepath.Join(l.OutDir, "checkpoints") }

// Resume restores the newest checkpoint under the output folder, if any, and returns its step (0
// when starting fresh). A checkpoint of another preset is an error.
func (l *Loop) Resume() (int, error) {
	all, err := ListCheckpoints(l.CheckpointRoot())
	if err != nil || len(all) == 0 {
		return 0, err
	}
	c, err := LoadCheckpoint(all[len(all)-1])
	if err != nil {
		return 0, err
	}
	if c.Preset != l.PresetHash {
		return 0, fmt.Errorf("checkpoint %s was made by another preset (remove %s or use another --out)", c.Dir, l.CheckpointRoot())
	}
	if err := c.Restore(l.Ctx, l.Adapter); err != nil {
		return 0, err
	}
	if err := l.RNG.Restore(c.RNG); err != nil {
		return 0, fmt.Errorf("checkpoint %s: %w", c.Dir, err)
	}
	l.StepDone = c.Step
	return c.Step, nil
}

// Checkpoint saves the state after l.StepDone steps.
func (l *Loop) Checkpoint() (string, error) {
	vars := append(append([]*model.Variable{}, l.Adapter...), l.OptimizerState()...)
	return SaveCheckpoint(l.CheckpointRoot(), vars, Checkpoint{Step: l.StepDone, RNG: l.RNG.State(), Preset: l.PresetHash}, l.KeepCheckpoints)
}

// Run trains from l.StepDone to l.Steps, checkpointing every CheckpointEvery steps. A non-finite
// loss stops the run with ErrNonFinite before anything is saved: the in-memory adapter may hold
// non-finite values then, but the last good checkpoint on disk is kept (a non-finite state is never
// checkpointed), and a later run resumes from it.
func (l *Loop) Run() error {
	start := time.Now()
	for l.StepDone < l.Steps {
		step := l.StepDone + 1
		out, lr, err := l.runStep(step)
		if err != nil {
			return err
		}
		if math.IsNaN(float64(out.Loss)) || math.IsInf(float64(out.Loss), 0) {
			return fmt.Errorf("step %d: %w (loss=%v, lr=%g): the learning rate is probably too high; "+
				"the last good checkpoint is kept in %s", step, ErrNonFinite, out.Loss, lr, l.CheckpointRoot())
		}
		l.StepDone = step
		if l.OnStep != nil {
			l.OnStep(step, out, lr, time.Since(start))
		}
		if l.CheckpointEvery > 0 && step%l.CheckpointEvery == 0 && step < l.Steps {
			if _, err := l.Checkpoint(); err != nil {
				return fmt.Errorf("step %d: saving checkpoint: %w", step, err)
			}
		}
		if l.OnSample != nil && l.SampleEvery > 0 && step%l.SampleEvery == 0 {
			if err := l.OnSample(step); err != nil {
				return fmt.Errorf("step %d: sampling: %w", step, err)
			}
		}
		if l.Stop != nil && l.Stop() && step < l.Steps {
			if l.CheckpointEvery <= 0 || step%l.CheckpointEvery != 0 {
				if _, err := l.Checkpoint(); err != nil {
					return fmt.Errorf("step %d: saving checkpoint: %w", step, err)
				}
			}
			return fmt.Errorf("step %d of %d: %w; checkpoint saved in %s: run the same command again to resume", step, l.Steps, ErrInterrupted, l.CheckpointRoot())
		}
	}
	return nil
}

// EvalLoss is the objective's mean over n batches drawn from a fresh RNG seeded with seed — the
// same draws every call, so losses before and after training compare on identical (x_t, t*)
// pairs up to the adapter's own effect on the partial denoise. It changes no state.
func (l *Loop) EvalLoss(n int, seed uint64) (float64, error) {
	if l.Eval == nil {
		return 0, fmt.Errorf("train: no evaluation graph")
	}
	saved := l.RNG
	defer func() { l.RNG = saved }()
	l.RNG = NewRNG(seed)
	var sum float64
	for i := 0; i < n; i++ {
		out, _, err := l.runGraph(l.Eval, 1)
		if err != nil {
			return 0, err
		}
		sum += float64(out.Loss)
	}
	return sum / float64(n), nil
}

// runStep draws the step's randomness, runs the partial denoise and the train step.
func (l *Loop) runStep(step int) (StepOutputs, float64, error) {
	return l.runGraph(l.Step, step)
}

// runGraph draws one batch's randomness, runs the partial denoise and then graph (the train step or
// the evaluation graph) at optimizer step `step`.
func (l *Loop) runGraph(graph *StepGraph, step int) (StepOutputs, float64, error) {
	group := l.Groups[l.RNG.IntN(len(l.Groups))]
	k := l.Ks[l.RNG.IntN(len(l.Ks))]
	batch, err := l.assemble(group)
	if err != nil {
		return StepOutputs{}, 0, err
	}
	h, w := group[0].LatentH, group[0].LatentW
	b := batch.size
	noise := l.RNG.Normal(b * l.LatentChannels * h * w)
	sigma := float64(l.Sched.InitNoiseSigma())
	if l.NoiseOffset != 0 { // kohya: the offset first, then the pyramid noise
		if err := NoiseOffsetHost(noise, b, l.LatentChannels, h, w, l.NoiseOffset, l.RNG.Normal(b*l.LatentChannels)); err != nil {
			return StepOutputs{}, 0, err
		}
	}
	if l.MultiresIterations > 0 {
		sizes, normals := MultiresInputs(l.RNG, b, l.LatentChannels, h, w, l.MultiresIterations)
		if err := MultiresNoiseHost(noise, b, l.LatentChannels, h, w, l.MultiresIterations, l.MultiresDiscount, sizes, normals); err != nil {
			return StepOutputs{}, 0, err
		}
	}
	for i := range noise {
		noise[i] *= float32(sigma)
	}
	x := tensors.FromFlatDataAndDimensions(noise, b, l.LatentChannels, h, w)
	mult := batch.multiplier
	if !l.DenoiseWithAdapter {
		mult = tensors.FromShape(shapes.Make(dtypes.Float32, b)) // zeros: the frozen base model
	}
	timesteps := l.Sched.Timesteps()
	for i := 0; i < k; i++ {
		var stepNoise *tensors.Tensor
		if l.Denoise.NeedsNoise {
			stepNoise = tensors.FromFlatDataAndDimensions(l.RNG.Normal(b*l.LatentChannels*h*w), b, l.LatentChannels, h, w)
		}
		if x, err = l.Denoise.Run(x, int64(timesteps[i]), batch.unconditional, batch.target, mult, stepNoise); err != nil {
			return StepOutputs{}, 0, fmt.Errorf("step %d: %w", step, err)
		}
	}
	tStar := l.TStar(k)
	ts := make([]int64, b)
	for i := range ts {
		ts[i] = tStar
	}
	lr := l.LR(step - 1)
	huberC := l.HuberC
	if l.HuberSchedule != "" {
		c, err := HuberThreshold(l.HuberSchedule, l.HuberC, l.HuberScale, int(tStar), len(l.Sched.AlphasCumprod()), l.Sched.AlphasCumprod())
		if err != nil {
			return StepOutputs{}, 0, err
		}
		huberC = c
	}
	out, err := graph.Run(StepInputs{
		X: x, T: tensors.FromValue(ts),
		Target: batch.target, Positive: batch.positive, Neutral: batch.neutral, Unconditional: batch.unconditional,
		SignedGuidance: batch.guidance, Multiplier: batch.multiplier, Weight: batch.weight,
		LR: float32(lr), Step: int32(step), HuberC: float32(huberC),
	})
	if err != nil {
		return out, lr, fmt.Errorf("step %d: %w", step, err)
	}
	return out, lr, nil
}

type assembled struct {
	size                                     int
	target, positive, neutral, unconditional CondTensors
	guidance, multiplier, weight             *tensors.Tensor
}

// assemble stacks the cached conditionings and per-sample values of a group into one batch.
func (l *Loop) assemble(group []Entry) (*assembled, error) {
	var tgt, pos, neu, unc []CondTensors
	var g, m, w []float32
	for _, e := range group {
		for i := 0; i < max(e.BatchSize, 1); i++ {
			for _, p := range []struct {
				prompt string
				into   *[]CondTensors
			}{{e.Target, &tgt}, {e.Positive, &pos}, {e.Neutral, &neu}, {e.Unconditional, &unc}} {
				c, ok := l.Conds[p.prompt]
				if !ok {
					return nil, fmt.Errorf("train: prompt %q has no cached conditioning", p.prompt)
				}
				if e.TimeIDs != nil {
					c.TimeIDs = tensors.FromFlatDataAndDimensions(e.TimeIDs, 1, len(e.TimeIDs))
				}
				*p.into = append(*p.into, c)
			}
			g = append(g, float32(e.SignedGuidance))
			m = append(m, float32(e.Multiplier))
			w = append(w, float32(e.Weight))
		}
	}
	a := &assembled{size: len(g), guidance: tensors.FromValue(g), multiplier: tensors.FromValue(m), weight: tensors.FromValue(w)}
	var err error
	for _, p := range []struct {
		from []CondTensors
		into *CondTensors
	}{{tgt, &a.target}, {pos, &a.positive}, {neu, &a.neutral}, {unc, &a.unconditional}} {
		if *p.into, err = stackConds(p.from); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// stackConds concatenates batch-1 conditionings along the batch axis.
func stackConds(cs []CondTensors) (CondTensors, error) {
	var out CondTensors
	var err error
	if out.Hidden, err = concatBatch(cs, func(c CondTensors) *tensors.Tensor { return c.Hidden }); err != nil {
		return out, err
	}
	if cs[0].TextEmbeds != nil {
		if out.TextEmbeds, err = concatBatch(cs, func(c CondTensors) *tensors.Tensor { return c.TextEmbeds }); err != nil {
			return out, err
		}
		if out.TimeIDs, err = concatBatch(cs, func(c CondTensors) *tensors.Tensor { return c.TimeIDs }); err != nil {
			return out, err
		}
	}
	return out, nil
}

// concatBatch concatenates float32 tensors of identical non-batch shape along axis 0 on the host.
func concatBatch(cs []CondTensors, get func(CondTensors) *tensors.Tensor) (*tensors.Tensor, error) {
	first := get(cs[0])
	dims := append([]int{0}, first.Shape().Dimensions[1:]...)
	var flat []float32
	for _, c := range cs {
		t := get(c)
		if t == nil || !equalTail(t.Shape().Dimensions, dims) {
			return nil, fmt.Errorf("train: conditionings of different shapes in one batch")
		}
		flat = append(flat, tensors.MustCopyFlatData[float32](t)...)
		dims[0] += t.Shape().Dim(0)
	}
	return tensors.FromFlatDataAndDimensions(flat, dims...), nil
}

func equalTail(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 1; i < len(a); i++ {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
