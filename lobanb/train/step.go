package train

import (
	"fmt"
	"math"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/loba-dev/loba/models/sd"
)

// LossConfig is what the step's loss needs beyond the predictions.
type LossConfig struct {
	LossType    string  // l2 (default) | l1 | huber | smooth_l1
	HuberC      float64 // huber / smooth_l1 parameter
	MinSNRGamma float64 // 0: off
	VPrediction bool    // min-SNR weight for v-prediction
	TargetNorm  string  // none | normlike | frobenius
	// AlphasCumprod is the training schedule (for min-SNR weights), [num_train_timesteps].
	AlphasCumprod []float32
}

// Batch is the per-step graph input of the objective: B samples, each with its own prompts,
// signed guidance, adapter multiplier and loss weight.
type Batch struct {
	X, T                                     *Node // x_t [B, C, H, W]; t* [B]
	Target, Positive, Neutral, Unconditional Cond
	SignedGuidance                           *Node // [B]: −g erase, +g enhance
	Multiplier                               *Node // [B]: adapter multiplier of the student
	Weight                                   *Node // [B]: per-sample loss weight
	// HuberC is the huber / smooth_l1 parameter of this batch (a scalar: sd-scripts' schedules make
	// it depend on t*); nil uses LossConfig.HuberC.
	HuberC *Node
}

// Loss builds the objective of docs/ALGORITHMS.md §1–3 for one batch: teacher references (one 3B call),
// student prediction, target (with optional target_norm), per-sample loss with min-SNR and entry
// weights, mean over the batch. It returns the scalar loss and the predictions.
func Loss(d *Denoiser, in Batch, adapters sd.AdapterFactory, cfg LossConfig) (*Node, TeacherStudent) {
	p := Predictions(d, in.X, in.T, in.Target, in.Positive, in.Neutral, in.Unconditional, adapters(in.Multiplier))
	y := TargetNorm(cfg.TargetNorm, LECOTarget(p, in.SignedGuidance), p)
	y = StopGradient(y)
	huberC := in.HuberC
	if huberC == nil {
		huberC = Scalar(y.Graph(), dtypes.Float32, cfg.HuberC)
	}
	perSample := PerSampleMean(ElementwiseLoss(p.Target, y, cfg.LossType, huberC)) // [B]
	w := ConvertDType(in.Weight, perSample.DType())
	if cfg.MinSNRGamma > 0 {
		snr := SNRFromAlphasCumprod(cfg.AlphasCumprod, in.T)
		w = Mul(w, MinSNRWeights(snr, cfg.MinSNRGamma, cfg.VPrediction))
	}
	return ReduceAllMean(Mul(perSample, w)), p
}

// condArity is how many graph inputs one Cond takes: hidden, or hidden + text_embeds + time_ids.
func condArity(sdxl bool) int {
	if sdxl {
		return 3
	}
	return 1
}

func takeCond(inputs []*Node, sdxl bool) (Cond, []*Node) {
	if sdxl {
		return Cond{Hidden: inputs[0], TextEmbeds: inputs[1], TimeIDs: inputs[2]}, inputs[3:]
	}
	return Cond{Hidden: inputs[0]}, inputs[1:]
}

// StepGraph is the compiled train step: Loss, the gradients of the adapter's variables, optional
// global-norm clipping, and the optimizer update, as ONE graph, compiled once per input shape.
type StepGraph struct {
	exec   *model.Exec
	sdxl   bool
	params []Param
}

// StepOutputs are the host results of one step.
type StepOutputs struct {
	Loss, GradNorm float32
}

// NewStepGraph prepares the train step. params are the adapter's trainable variables with their
// learning-rate scales; ctx is the root context holding the UNet (d.Ctx is a scope of it), the
// adapter's variables and the optimizer state. With opt nil the graph only evaluates the loss
// (GradNorm 0, nothing updated): the evaluation graph.
func NewStepGraph(backend compute.Backend, ctx *model.Scope, d *Denoiser, sdxl bool, adapters sd.AdapterFactory,
	params []Param, opt Optimizer, lossCfg LossConfig, maxGradNorm float64) (*StepGraph, error) {
	s := &StepGraph{sdxl: sdxl, params: params}
	exec, err := model.NewExec(backend, ctx.Store(), func(_ *model.Scope, inputs []*Node) []*Node {
		in := Batch{X: inputs[0], T: inputs[1]}
		rest := inputs[2:]
		in.Target, rest = takeCond(rest, sdxl)
		in.Positive, rest = takeCond(rest, sdxl)
		in.Neutral, rest = takeCond(rest, sdxl)
		in.Unconditional, rest = takeCond(rest, sdxl)
		in.SignedGuidance, in.Multiplier, in.Weight = rest[0], rest[1], rest[2]
		lr, step := rest[3], rest[4]
		in.HuberC = rest[5]
		loss, _ := Loss(d, in, adapters, lossCfg)
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
		opt.Update(ctx, params, grads, lr, step)
		return []*Node{loss, gradNorm}
	})
	if err != nil {
		return nil, fmt.Errorf("train: building the step graph: %w", err)
	}
	s.exec = exec
	return s, nil
}

// StepInputs are the host tensors of one step, in the order the graph takes them.
type StepInputs struct {
	X, T                                     *tensors.Tensor
	Target, Positive, Neutral, Unconditional CondTensors
	SignedGuidance, Multiplier, Weight       *tensors.Tensor
	LR                                       float32
	Step                                     int32 // 1-based optimizer step
	HuberC                                   float32
}

// CondTensors is Cond on the host.
type CondTensors struct {
	Hidden, TextEmbeds, TimeIDs *tensors.Tensor
}

func (c CondTensors) args(sdxl bool) []any {
	if sdxl {
		return []any{c.Hidden, c.TextEmbeds, c.TimeIDs}
	}
	return []any{c.Hidden}
}

// Run executes one step; the adapter and optimizer variables are updated in place.
func (s *StepGraph) Run(in StepInputs) (out StepOutputs, err error) {
	args := []any{in.X, in.T}
	for _, c := range []CondTensors{in.Target, in.Positive, in.Neutral, in.Unconditional} {
		if s.sdxl && (c.TextEmbeds == nil || c.TimeIDs == nil) {
			return out, fmt.Errorf("train: SDXL step needs text_embeds and time_ids for every conditioning")
		}
		args = append(args, c.args(s.sdxl)...)
	}
	args = append(args, in.SignedGuidance, in.Multiplier, in.Weight, in.LR, in.Step, in.HuberC)
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
