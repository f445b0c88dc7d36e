package train

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/unet"
)

// nodeCond is the text conditioning E[p] of a batch of prompts as graph nodes: Hidden [B, S, D]
// (encoder_hidden_states) and, for SDXL, TextEmbeds [B, P] and TimeIDs [B, 6].
type nodeCond = unet.Conditioning[*Node]

// concatConds stacks conditionings along the batch axis.
func concatConds(cs ...nodeCond) nodeCond {
	cat := func(get func(nodeCond) *Node) *Node {
		var nodes []*Node
		for _, c := range cs {
			if n := get(c); n != nil {
				nodes = append(nodes, n)
			}
		}
		switch {
		case len(nodes) == 0:
			return nil
		case len(nodes) != len(cs):
			exceptions.Panicf("train: conditionings mix SD1.5 and SDXL forms")
		}
		return Concatenate(nodes, 0)
	}
	return nodeCond{
		Hidden:     cat(func(c nodeCond) *Node { return c.Hidden }),
		TextEmbeds: cat(func(c nodeCond) *Node { return c.TextEmbeds }),
		TimeIDs:    cat(func(c nodeCond) *Node { return c.TimeIDs }),
	}
}

// denoiser is the UNet as the objectives see it: ε(x, t, c), with the adapter the objective
// installs (nil: the frozen base model).
type denoiser struct {
	UNet *unet.UNet2DConditionModel
	// Ctx is the UNet's root scope (holding its weights), in Reuse mode.
	Ctx *model.Scope
	// DType is the UNet's compute dtype (its weights'); inputs are converted to it and the
	// prediction back to float32. InvalidDType (0) converts nothing.
	DType dtypes.DType
}

// Predict is ε_m(x, t, c): the UNet with adapter (nil = none) installed for this call only.
// x: [B, C, H, W], t: [B] → [B, C, H, W].
func (d *denoiser) Predict(x, t *Node, c nodeCond, adapter nn.Adapter) *Node {
	g := x.Graph()
	prev := nn.UseAdapter(g, adapter)
	defer nn.UseAdapter(g, prev)
	if d.DType == dtypes.InvalidDType || d.DType == x.DType() {
		return d.UNet.Forward(d.Ctx, x, t, c)
	}
	conv := func(n *Node) *Node {
		if n == nil || !n.DType().IsFloat() {
			return n
		}
		return ConvertDType(n, d.DType)
	}
	out := d.UNet.Forward(d.Ctx, conv(x), t, nodeCond{Hidden: conv(c.Hidden), TextEmbeds: conv(c.TextEmbeds), TimeIDs: c.TimeIDs})
	return ConvertDType(out, x.DType())
}

// teacherStudent holds the predictions one LECO/slider step compares.
type teacherStudent struct {
	Positive, Neutral, Unconditional *Node // ε_0 references, no gradient: [B, C, H, W] each
	Target                           *Node // ε_m(x, t*, E[target]) with the adapter at the per-sample multipliers
}

// predictions runs the frozen teacher's three references in ONE batched call of batch 3B (LECO
// makes three calls, each with a wasted unconditional half) and the student once with the adapter.
// x: [B, C, H, W], t: [B].
func predictions(d *denoiser, x, t *Node, target, positive, neutral, unconditional nodeCond, student nn.Adapter) teacherStudent {
	b := x.Shape().Dim(0)
	x3 := Concatenate([]*Node{x, x, x}, 0)                                                      // [3B, C, H, W]
	t3 := Concatenate([]*Node{t, t, t}, 0)                                                      // [3B]
	refs := StopGradient(d.Predict(x3, t3, concatConds(positive, neutral, unconditional), nil)) // [3B, C, H, W]
	return teacherStudent{
		Positive:      SliceAxis(refs, 0, AxisRange(0, b)),
		Neutral:       SliceAxis(refs, 0, AxisRange(b, 2*b)),
		Unconditional: SliceAxis(refs, 0, AxisRange(2*b, 3*b)),
		Target:        d.Predict(x, t, target, student),
	}
}

// lecoTarget is docs/ALGORITHMS.md §1 step 7 with a signed per-sample guidance: y = e_neu + s·(e_pos − e_unc),
// s = −g for erase and +g for enhance (the bidirectional slider of §2 is the same form with
// s = ±η at multiplier ±m). signedGuidance: [B].
func lecoTarget(p teacherStudent, signedGuidance *Node) *Node {
	s := signedGuidance
	for s.Rank() < p.Neutral.Rank() {
		s = InsertAxes(s, -1)
	} // [B, 1, 1, 1]
	return Add(p.Neutral, Mul(ConvertDType(s, p.Neutral.DType()), Sub(p.Positive, p.Unconditional)))
}

// applyTargetNorm rescales the target (docs/ALGORITHMS.md §2 target_norm): "none"; "normlike": per sample,
// (y − mean y)/(std y + 1e-8)·std(ref) + mean(ref) with ref = e_neu; "frobenius": y/‖y‖·‖e_pos‖.
func applyTargetNorm(kind string, y *Node, p teacherStudent) *Node {
	switch kind {
	case "", "none":
		return y
	case "normlike":
		axes := nonBatchAxes(y)
		ym, ys := meanStd(y, axes)
		rm, rs := meanStd(p.Neutral, axes)
		return Add(Mul(Div(Sub(y, ym), AddScalar(ys, 1e-8)), rs), rm)
	case "frobenius":
		axes := nonBatchAxes(y)
		ny := Sqrt(ReduceAndKeep(Square(y), ReduceSum, axes...))
		np := Sqrt(ReduceAndKeep(Square(p.Positive), ReduceSum, axes...))
		return Mul(Div(y, AddScalar(ny, 1e-12)), np)
	}
	exceptions.Panicf("train: unknown target_norm %q (valid: none, normlike, frobenius)", kind)
	return nil
}

func nonBatchAxes(x *Node) []int {
	axes := make([]int, x.Rank()-1)
	for i := range axes {
		axes[i] = i + 1
	}
	return axes
}

// meanStd is the per-sample mean and (unbiased, as torch.std) standard deviation, kept for broadcast.
func meanStd(x *Node, axes []int) (mean, std *Node) {
	n := 1
	for _, a := range axes {
		n *= x.Shape().Dim(a)
	}
	mean = ReduceAndKeep(x, ReduceMean, axes...)
	v := DivScalar(ReduceAndKeep(Square(Sub(x, mean)), ReduceSum, axes...), float64(max(n-1, 1)))
	return mean, Sqrt(v)
}
