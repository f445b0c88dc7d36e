package train

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/sd"
)

// lossConfig is what the step's loss needs beyond the predictions.
type lossConfig struct {
	LossType    string  // l2 (default) | l1 | huber | smooth_l1
	HuberC      float64 // huber / smooth_l1 parameter
	MinSNRGamma float64 // 0: off
	VPrediction bool    // min-SNR weight for v-prediction
	TargetNorm  string  // none | normlike | frobenius
	// AlphasCumprod is the training schedule (for min-SNR weights), [num_train_timesteps].
	AlphasCumprod []float32
	// Region are the terms of docs/ALGORITHMS.md §5 compiled into the graph (none: §1–3 exactly).
	Region regionTerms
}

// stepBatch is the per-step graph input of the objective: B samples, each with its own prompts,
// signed guidance, adapter multiplier and loss weight.
type stepBatch struct {
	X, T                                     *Node // x_t [B, C, H, W]; t* [B]
	Target, Positive, Neutral, Unconditional nodeCond
	SignedGuidance                           *Node // [B]: −g erase, +g enhance
	Multiplier                               *Node // [B]: adapter multiplier of the student
	Weight                                   *Node // [B]: per-sample loss weight
	// HuberC is the huber / smooth_l1 parameter of this batch (a scalar: sd-scripts' schedules make
	// it depend on t*); nil uses lossConfig.HuberC.
	HuberC *Node
	// The §5 inputs, present when lossConfig.Region asks for them: the weight map W [B, 1, H, W] (1
	// where the entry has no mask), λ_keep [B], the style flag [B] (1: ST-LOBA's channel statistics),
	// the concept tokens [B, S] (U-LOBA's concept mask: 1 on the erased concept's tokens of the
	// positive prompt; a row of zeros has no concept mask).
	Mask, Preserve, Style, Concept *Node
	// StudentTarget, when text-encoder networks train, is the target prompts' conditioning through the
	// adapted text encoders at each sample's multiplier (the adapter's prediction reads it; the
	// references keep Target, the frozen encoders'). nil: Target.
	StudentTarget *nodeCond
}

// objective builds the objective of docs/ALGORITHMS.md §1–3 for one batch: teacher references (one 3B call),
// student prediction, target (with optional target_norm), per-sample loss with min-SNR and entry
// weights, mean over the batch. It returns the scalar loss and the predictions.
func objective(d *denoiser, in stepBatch, adapters sd.AdapterFactory, cfg lossConfig) (*Node, teacherStudent) {
	r := cfg.Region
	student := in.Target
	if in.StudentTarget != nil {
		student = *in.StudentTarget
	}
	p := predictions(d, in.X, in.T, in.Target, student, in.Positive, in.Neutral, in.Unconditional, adapters(in.Multiplier), r.Preserve, in.Concept)
	y := applyTargetNorm(cfg.TargetNorm, lecoTarget(p, in.SignedGuidance), p)
	if r.Style {
		y = styleTarget(y, p, in.Style, r.StyleMeanOnly)
	}
	y = StopGradient(y)
	huberC := in.HuberC
	if huberC == nil {
		huberC = Scalar(y.Graph(), dtypes.Float32, cfg.HuberC)
	}
	perSample := regionLoss(elementwiseLoss(p.Target, y, cfg.LossType, huberC), p, in, r) // [B]
	w := ConvertDType(in.Weight, perSample.DType())
	if cfg.MinSNRGamma > 0 {
		snr := SNRFromAlphasCumprod(cfg.AlphasCumprod, in.T)
		w = Mul(w, MinSNRWeights(snr, cfg.MinSNRGamma, cfg.VPrediction))
	}
	return ReduceAllMean(Mul(perSample, w)), p
}

// condArity is how many graph inputs one nodeCond takes: hidden, or hidden + text_embeds + time_ids.
func condArity(sdxl bool) int {
	if sdxl {
		return 3
	}
	return 1
}

func takeCond(inputs []*Node, sdxl bool) (nodeCond, []*Node) {
	if sdxl {
		return nodeCond{Hidden: inputs[0], TextEmbeds: inputs[1], TimeIDs: inputs[2]}, inputs[3:]
	}
	return nodeCond{Hidden: inputs[0]}, inputs[1:]
}

// stepGraph is the compiled train step: Loss, the gradients of the adapter's variables, optional
// global-norm clipping, and the optimizer update, as ONE graph, compiled once per input shape.
type stepGraph struct {
	exec   *model.Exec
	sdxl   bool
	params []Param
}

// StepOutputs are the host results of one step.
type StepOutputs struct {
	Loss, GradNorm float32
}

// graphEnv is what a run's graphs are built over: the backend, the root scope holding the UNet
// (d.Ctx is a scope of it), the adapter's variables and the optimizer state, the UNet as the
// objectives see it, and the adapter factory (nil: the frozen base model).
type graphEnv struct {
	backend  compute.Backend
	ctx      *model.Scope
	d        *denoiser
	sdxl     bool
	adapters sd.AdapterFactory
	// mem is how the UNet's layers trade compute for memory in these graphs.
	mem nn.MemoryOptions
	// text encodes the adapter's prompt through the adapted text encoders (nil: no text-encoder
	// network).
	text *textEncoding
	// builds counts how often each graph function runs: once per compilation (a new input shape or a
	// new Exec), so a test can tell that no graph is rebuilt inside the loop. nil counts nothing.
	builds *graphBuilds
}

// graphKind names a run's graphs for graphBuilds.
type graphKind int

const (
	stepGraphKind graphKind = iota
	evalGraphKind
	denoiseGraphKind
)

// graphBuilds counts the compilations of a run's graphs, one counter per graphKind.
type graphBuilds [3]atomic.Int64

// add counts one compilation of graph k (nothing when b is nil).
func (b *graphBuilds) add(k graphKind) {
	if b != nil {
		b[k].Add(1)
	}
}

// newStepGraph prepares the train step. params are the adapter's trainable variables with their
// learning-rate scales. With opt nil the graph only evaluates the loss (GradNorm 0, nothing
// updated): the evaluation graph.
func newStepGraph(env graphEnv, lossCfg lossConfig, params []Param, opt Optimizer, maxGradNorm float64) (*stepGraph, error) {
	exec, err := model.NewExec(env.backend, env.ctx.Store(), env.stepFn(lossCfg, params, opt, maxGradNorm))
	if err != nil {
		return nil, fmt.Errorf("train: building the step graph: %w", err)
	}
	return &stepGraph{exec: exec, sdxl: env.sdxl, params: params}, nil
}

// stepFn builds the train step's graph from its inputs (stepInputs' order): the objective, and
// unless opt is nil the gradients of params, their clipping and the optimizer update. Outputs:
// loss and the global gradient norm.
func (env graphEnv) stepFn(lossCfg lossConfig, params []Param, opt Optimizer, maxGradNorm float64) func(*model.Scope, []*Node) []*Node {
	return func(_ *model.Scope, inputs []*Node) []*Node {
		if opt == nil {
			env.builds.add(evalGraphKind)
		} else {
			env.builds.add(stepGraphKind)
		}
		nn.UseMemoryOptions(inputs[0].Graph(), env.mem)
		in := stepBatch{X: inputs[0], T: inputs[1]}
		rest := inputs[2:]
		in.Target, rest = takeCond(rest, env.sdxl)
		in.Positive, rest = takeCond(rest, env.sdxl)
		in.Neutral, rest = takeCond(rest, env.sdxl)
		in.Unconditional, rest = takeCond(rest, env.sdxl)
		in.SignedGuidance, in.Multiplier, in.Weight = rest[0], rest[1], rest[2]
		lr, step := rest[3], rest[4]
		in.HuberC = rest[5]
		in.Mask, in.Preserve, in.Style, in.Concept, rest = regionInputs(rest[6:], lossCfg.Region)
		if env.text != nil { // the target's token ids, one [B, S] per text encoder
			in.StudentTarget = env.text.encode(rest, in.Multiplier, in.Target)
		}
		loss, _ := objective(env.d, in, env.adapters, lossCfg)
		if opt == nil { // evaluation: the loss alone, no gradient, no update
			return []*Node{loss, ZerosLike(loss)}
		}
		g := loss.Graph()
		nodes := make([]*Node, len(params))
		for i, p := range params {
			nodes[i] = p.Var.NodeValue(g)
		}
		grads := Gradient(loss, nodes...)
		clipAt := maxGradNorm
		if clipAt <= 0 {
			clipAt = math.Inf(1) // no clipping, but the norm is still reported
		}
		grads, gradNorm := ClipGradNorm(grads, clipAt)
		opt.Update(env.ctx, params, grads, lr, step)
		return []*Node{loss, gradNorm}
	}
}

// stepInputs are the host tensors of one step, in the order the graph takes them.
type stepInputs struct {
	X, T                                     *tensors.Tensor
	Target, Positive, Neutral, Unconditional sd.Conditioning
	SignedGuidance, Multiplier, Weight       *tensors.Tensor
	LR                                       float32
	Step                                     int32 // 1-based optimizer step
	HuberC                                   float32
	// The §5 inputs the graph's regionTerms take (nil otherwise): W [B, 1, H, W], λ_keep [B], style
	// flag [B], concept tokens [B, S].
	Mask, Preserve, Style, Concept *tensors.Tensor
	// TargetIDs are the target prompts' token ids, one [B, S] int32 tensor per text encoder, when
	// text-encoder networks train (nil otherwise).
	TargetIDs []*tensors.Tensor
}

// textEncoding is how the train step encodes the adapter's prompt when text-encoder networks
// train: the pipeline's text encoders (sd.Pipeline.EncodeGraph) with their networks' adapter at
// each sample's multiplier.
type textEncoding struct {
	pipe     *sd.Pipeline
	clipSkip int
	adapters sd.AdapterFactory
}

// encode is the conditioning of the token ids (one [B, S] per text encoder) through the adapted
// text encoders at multiplier [B]; SDXL's time ids are taken from like.
func (te *textEncoding) encode(ids []*Node, multiplier *Node, like nodeCond) *nodeCond {
	g := multiplier.Graph()
	prev := nn.UseAdapter(g, te.adapters(multiplier))
	defer nn.UseAdapter(g, prev)
	hidden, pooled := te.pipe.EncodeGraph(te.pipe.Ctx, ids, te.clipSkip, 1) // [B, S, D], [B, P]
	c := nodeCond{Hidden: ConvertDType(hidden, like.Hidden.DType()), TimeIDs: like.TimeIDs}
	if pooled != nil {
		c.TextEmbeds = ConvertDType(pooled, like.TextEmbeds.DType())
	}
	return &c
}

// regionInputs takes the §5 inputs r compiles in from the front of inputs: W (Masked), λ_keep
// (Preserve), the style flag (Style), the concept tokens (Concept), in that order; rest are the
// inputs after them.
func regionInputs(inputs []*Node, r regionTerms) (mask, preserve, style, concept *Node, rest []*Node) {
	take := func(on bool) *Node {
		if !on {
			return nil
		}
		n := inputs[0]
		inputs = inputs[1:]
		return n
	}
	mask, preserve, style, concept = take(r.Masked), take(r.Preserve), take(r.Style), take(r.Concept)
	return mask, preserve, style, concept, inputs
}

// condArgs are the graph arguments of a host conditioning (takeCond's inputs).
func condArgs(c sd.Conditioning, sdxl bool) []any {
	if sdxl {
		return []any{c.Hidden, c.TextEmbeds, c.TimeIDs}
	}
	return []any{c.Hidden}
}

// Run executes one step; the adapter and optimizer variables are updated in place.
func (s *stepGraph) Run(in stepInputs) (out StepOutputs, err error) {
	args := []any{in.X, in.T}
	for _, c := range []sd.Conditioning{in.Target, in.Positive, in.Neutral, in.Unconditional} {
		if s.sdxl && (c.TextEmbeds == nil || c.TimeIDs == nil) {
			return out, fmt.Errorf("train: SDXL step needs text_embeds and time_ids for every conditioning")
		}
		args = append(args, condArgs(c, s.sdxl)...)
	}
	args = append(args, in.SignedGuidance, in.Multiplier, in.Weight, in.LR, in.Step, in.HuberC)
	for _, t := range []*tensors.Tensor{in.Mask, in.Preserve, in.Style, in.Concept} {
		if t != nil {
			args = append(args, t)
		}
	}
	for _, t := range in.TargetIDs {
		args = append(args, t)
	}
	var (
		results []*tensors.Tensor
		execErr error
	)
	if err := exceptions.TryCatch[error](func() { results, execErr = s.exec.Exec(args...) }); err != nil {
		return out, fmt.Errorf("train: step: %w", err)
	}
	if execErr != nil {
		return out, fmt.Errorf("train: step: %w", execErr)
	}
	out.Loss = tensors.ToScalar[float32](results[0])
	out.GradNorm = tensors.ToScalar[float32](results[1])
	return out, nil
}
