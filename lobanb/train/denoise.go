package train

import (
	"fmt"

	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/schedulers"
	"github.com/loba-dev/loba/models/sd"
)

// denoiseGraph is one step of the partial denoise of docs/ALGORITHMS.md §1 step 3, compiled once:
//
//	ε_u, ε_c = ε_m([x, x], t, [E[unconditional], E[target]])     (one batched call)
//	x ← scheduler.step(ε_u + g_d·(ε_c − ε_u), t, x)
//
// with the adapter at the per-sample multipliers when the run denoises with it (LECO) or off; with
// text-encoder networks, both prompts are then encoded through them at those multipliers.
// The host calls it k times; the timestep is a graph input, so the graph is never rebuilt. At
// g_d = 1 the guided prediction is ε_c and at g_d = 0 it is ε_u, so the graph predicts only that
// half (B samples instead of 2B).
type denoiseGraph struct {
	exec *model.Exec
	sdxl bool
	// NeedsNoise tells that the scheduler's step draws noise (DDPM): Run then takes a standard normal
	// tensor of x's shape, drawn by the caller's RNG so that runs resume exactly.
	NeedsNoise bool
}

// newDenoiseGraph prepares the partial-denoise step. sched must have had SetTimesteps(N) called
// (DDIM's previous timestep depends on N). env.adapters nil denoises with the frozen base model.
func newDenoiseGraph(env graphEnv, sched schedulers.Scheduler, guidance float64) (*denoiseGraph, error) {
	needsNoise := sched.Config().ClassName == schedulers.ClassDDPM
	exec, err := model.NewExec(env.backend, env.ctx.Store(), env.denoiseFn(sched, guidance, needsNoise))
	if err != nil {
		return nil, fmt.Errorf("train: building the denoise graph: %w", err)
	}
	return &denoiseGraph{exec: exec, sdxl: env.sdxl, NeedsNoise: needsNoise}, nil
}

// denoiseFn builds one partial-denoise step from its inputs (denoiseGraph.Run's order): x, t, the
// unconditional and target conditionings, the multipliers and, when needsNoise, the step's noise.
func (env graphEnv) denoiseFn(sched schedulers.Scheduler, guidance float64, needsNoise bool) func(*model.Scope, []*Node) []*Node {
	return func(_ *model.Scope, inputs []*Node) []*Node {
		env.builds.add(denoiseGraphKind)
		mem := env.mem
		mem.GradientCheckpointing = false // no gradients here: barriers would only copy the skips
		nn.UseMemoryOptions(inputs[0].Graph(), mem)
		x, t := inputs[0], inputs[1] // [B, C, H, W], [] int64
		rest := inputs[2:]
		var unc, tgt nodeCond
		unc, rest = takeCond(rest, env.sdxl)
		tgt, rest = takeCond(rest, env.sdxl)
		mult := rest[0] // [B]
		rest = rest[1:]
		var noise *Node
		if needsNoise {
			noise, rest = rest[0], rest[1:] // [B, C, H, W] standard normal
		}
		if env.text != nil { // the adapter's text encoders: both prompts through them at the multipliers
			n := len(rest) / 2
			unc = *env.text.encode(rest[:n], mult, unc) // ids [B, S] per text encoder
			tgt = *env.text.encode(rest[n:], mult, tgt)
		}
		b := x.Shape().Dim(0)
		xIn := sched.ScaleModelInputGraph(x, t)
		var guided *Node
		switch guidance {
		case 1, 0: // one half: ε_c at g_d = 1, ε_u at g_d = 0
			c := tgt
			if guidance == 0 {
				c = unc
			}
			guided = env.d.Predict(xIn, BroadcastToDims(t, b), c, adapterFor(env.adapters, mult)) // [B, C, H, W]
		default:
			x2 := Concatenate([]*Node{xIn, xIn}, 0) // [2B, C, H, W]
			t2 := BroadcastToDims(t, 2*b)           // [2B]
			a := adapterFor(env.adapters, Concatenate([]*Node{mult, mult}, 0))
			e := env.d.Predict(x2, t2, concatConds(unc, tgt), a) // [2B, C, H, W]
			eu := SliceAxis(e, 0, AxisRange(0, b))
			ec := SliceAxis(e, 0, AxisRange(b, 2*b))
			guided = Add(eu, MulScalar(Sub(ec, eu), guidance)) // ε_u + g_d·(ε_c − ε_u)
		}
		prev, _ := sched.StepGraph(guided, t, x, noise, schedulers.StepOptions{})
		return []*Node{prev}
	}
}

func adapterFor(f sd.AdapterFactory, mult *Node) nn.Adapter {
	if f == nil {
		return nil
	}
	return f(mult)
}

// Run does one denoise step at timestep t; noise (x's shape) is used only when NeedsNoise. ids are
// the unconditional then the target prompts' token ids (one [B, S] per text encoder each) when the
// graph denoises with text-encoder networks (env.text), else nil.
func (dg *denoiseGraph) Run(x *tensors.Tensor, t int64, unc, tgt sd.Conditioning, multiplier, noise *tensors.Tensor, ids ...*tensors.Tensor) (*tensors.Tensor, error) {
	args := []any{x, t}
	args = append(args, condArgs(unc, dg.sdxl)...)
	args = append(args, condArgs(tgt, dg.sdxl)...)
	args = append(args, multiplier)
	if dg.NeedsNoise {
		if noise == nil {
			return nil, fmt.Errorf("train: the %s partial denoise needs noise", schedulers.ClassDDPM)
		}
		args = append(args, noise)
	}
	for _, id := range ids {
		args = append(args, id)
	}
	var (
		results []*tensors.Tensor
		execErr error
	)
	if err := exceptions.TryCatch[error](func() { results, execErr = dg.exec.Exec(args...) }); err != nil {
		return nil, fmt.Errorf("train: denoise step: %w", err)
	}
	if execErr != nil {
		return nil, fmt.Errorf("train: denoise step: %w", execErr)
	}
	return results[0], nil
}
