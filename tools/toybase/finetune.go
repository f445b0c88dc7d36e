package toybase

import (
	"fmt"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/lobanb/train"
	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/schedulers"
	"github.com/loba-dev/loba/models/unet"
)

// FinetuneGraph is the standard text-to-image diffusion training step (diffusers'
// train_text_to_image), full fine-tune of the UNet and, optionally, the text encoder, as ONE
// compiled graph:
//
//	E = text_encoder(ids).last_hidden_state   (gradient flows into the encoder when it trains)
//	x_t = sqrt(ᾱ_t)·x0 + sqrt(1−ᾱ_t)·ε;  target = ε (epsilon) or v = sqrt(ᾱ_t)·ε − sqrt(1−ᾱ_t)·x0
//	L = mean((UNet(x_t, t, E) − target)²) [× min-SNR-γ weights]
//
// then the optimizer update of every trainable variable and, with EMADecay > 0, the exponential
// moving average of the weights (with diffusers' warm-up) in non-trainable shadow variables under
// scope "ema/".
type FinetuneGraph struct {
	exec   *model.Exec
	params []train.Param
}

// FinetuneConfig configures NewFinetuneGraph.
type FinetuneConfig struct {
	// UNetScope and TextEncoderScope are the models' roots in the context ("/unet", "/text_encoder").
	UNetScope, TextEncoderScope string
	// TrainTextEncoder lets the gradient into the text encoder (its variables must be trainable).
	TrainTextEncoder bool
	// MinSNRGamma weights the loss per sample (0: off).
	MinSNRGamma float64
	// EMADecay keeps an EMA of the trained weights (0: off).
	EMADecay float64
	// MaxGradNorm clips the global gradient norm (0: off).
	MaxGradNorm float64
}

// EMAScope is the root scope of the EMA shadow weights: the EMA of "/unet/conv_in/weight" is
// "/ema/unet/conv_in/weight".
const EMAScope = "ema"

// NewFinetuneGraph prepares the step. params are the trainable variables (UNet and, when the text
// encoder trains, the encoder's); sched gives the noise schedule and prediction type.
func NewFinetuneGraph(backend compute.Backend, ctx *model.Scope, u *unet.UNet2DConditionModel, te *clip.TextModel,
	sched schedulers.Scheduler, params []train.Param, opt train.Optimizer, cfg FinetuneConfig) (*FinetuneGraph, error) {
	vpred := sched.Config().PredictionType == "v_prediction"
	if p := sched.Config().PredictionType; p != "epsilon" && p != "v_prediction" {
		return nil, fmt.Errorf("train: fine-tuning supports epsilon and v_prediction, not %q", p)
	}
	exec, err := model.NewExec(backend, ctx.Store(), func(_ *model.Scope, inputs []*Node) []*Node {
		x0, noise, t, ids, lr, step := inputs[0], inputs[1], inputs[2], inputs[3], inputs[4], inputs[5]
		hidden := te.Forward(ctx.Store().Scope(cfg.TextEncoderScope), ids).LastHiddenState // [B, S, D]
		if !cfg.TrainTextEncoder {
			hidden = StopGradient(hidden)
		}
		xt := sched.AddNoiseGraph(x0, noise, t) // [B, C, h, w]
		target := noise
		if vpred {
			target = sched.GetVelocityGraph(x0, noise, t)
		}
		pred := u.Forward(ctx.Store().Scope(cfg.UNetScope), xt, t, unet.Conditioning[*Node]{Hidden: hidden})
		perSample := train.PerSampleMean(Square(Sub(pred, target))) // [B]
		if cfg.MinSNRGamma > 0 {
			perSample = Mul(perSample, train.MinSNRWeights(train.SNRFromAlphasCumprod(sched.AlphasCumprod(), t), cfg.MinSNRGamma, vpred))
		}
		loss := ReduceAllMean(perSample)
		g := loss.Graph()
		nodes := make([]*Node, len(params))
		for i, p := range params {
			nodes[i] = p.Var.NodeValue(g)
		}
		grads := Gradient(loss, nodes...)
		clipAt := cfg.MaxGradNorm
		if clipAt <= 0 {
			clipAt = 1e30
		}
		grads, gradNorm := train.ClipGradNorm(grads, clipAt)
		opt.Update(ctx, params, grads, lr, step)
		if cfg.EMADecay > 0 {
			// diffusers EMAModel's warm-up: decay_t = min(decay, (1 + step)/(10 + step)), so early
			// weights do not dominate the average of a short run.
			s := ConvertDType(step, dtypes.Float32)
			decay := Min(Scalar(g, dtypes.Float32, cfg.EMADecay), Div(OnePlus(s), AddScalar(s, 10)))
			for _, p := range params {
				updated := p.Var.NodeValue(g) // after the optimizer's SetValueGraph
				shadow := emaVariable(ctx, p.Var)
				sv := shadow.NodeValue(g)
				d := ConvertDType(decay, sv.DType())
				shadow.SetNodeValue(Add(Mul(sv, d), Mul(updated, OneMinus(d))))
			}
		}
		return []*Node{loss, gradNorm}
	})
	if err != nil {
		return nil, fmt.Errorf("train: building the fine-tune graph: %w", err)
	}
	return &FinetuneGraph{exec: exec, params: params}, nil
}

// emaVariable is the EMA shadow of v (created with v's current value on first use).
func emaVariable(ctx *model.Scope, v *model.Variable) *model.Variable {
	scope := "/" + EMAScope + v.Scope()
	sub := ctx.Store().Scope(scope)
	if s := sub.GetVariable(v.Name()); s != nil {
		return s
	}
	val, err := v.Value()
	if err != nil {
		exceptions.Panicf("train: EMA of %s: %v", v.Path(), err)
	}
	clone, err := val.LocalClone()
	if err != nil {
		exceptions.Panicf("train: EMA of %s: %v", v.Path(), err)
	}
	return sub.VariableWithValue(v.Name(), clone).SetTrainable(false)
}

// EMAVariables lists the EMA shadows of params (those that exist).
func EMAVariables(ctx *model.Scope, params []train.Param) []*model.Variable {
	var out []*model.Variable
	for _, p := range params {
		if s := ctx.Store().Scope("/" + EMAScope + p.Var.Scope()).GetVariable(p.Var.Name()); s != nil {
			out = append(out, s)
		}
	}
	return out
}

// FinetuneInputs are one step's host tensors.
type FinetuneInputs struct {
	X0, Noise *tensors.Tensor // [B, C, h, w] latents and standard normal noise
	T         *tensors.Tensor // [B] int64 timesteps
	IDs       *tensors.Tensor // [B, S] int token ids
	LR        float32
	Step      int32
}

// Run executes one step, updating the weights, the optimizer state and the EMA in place.
func (f *FinetuneGraph) Run(in FinetuneInputs) (train.StepOutputs, error) {
	var (
		results []*tensors.Tensor
		execErr error
	)
	if err := exceptions.TryCatch[error](func() {
		results, execErr = f.exec.Exec(in.X0, in.Noise, in.T, in.IDs, in.LR, in.Step)
	}); err != nil {
		return train.StepOutputs{}, fmt.Errorf("train: fine-tune step: %w", err)
	}
	if execErr != nil {
		return train.StepOutputs{}, fmt.Errorf("train: fine-tune step: %w", execErr)
	}
	return train.StepOutputs{Loss: tensors.ToScalar[float32](results[0]), GradNorm: tensors.ToScalar[float32](results[1])}, nil
}
