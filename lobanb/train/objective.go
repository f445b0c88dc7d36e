package train

import (
	"math"
	"slices"

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
// x: [B, C, H, W], t: [B] → [B, C, H, W], in x's dtype. In float16 the backward pass is loss
// scaled (see lossScale): the adapter's gradients come out float32 and unscaled.
func (d *denoiser) Predict(x, t *Node, c nodeCond, adapter nn.Adapter) *Node {
	g := x.Graph()
	if d.DType == dtypes.InvalidDType || d.DType == x.DType() {
		prev := nn.UseAdapter(g, adapter)
		defer nn.UseAdapter(g, prev)
		return d.UNet.Forward(d.Ctx, x, t, c)
	}
	scale := 1.0
	if d.DType == dtypes.Float16 && adapter != nil {
		scale = lossScale(x)
		adapter = scaledAdapter{inner: adapter, scale: scale}
	}
	prev := nn.UseAdapter(g, adapter)
	defer nn.UseAdapter(g, prev)
	conv := func(n *Node) *Node {
		if n == nil || !n.DType().IsFloat() {
			return n
		}
		return ConvertDType(n, d.DType)
	}
	out := d.UNet.Forward(d.Ctx, conv(x), t, nodeCond{Hidden: conv(c.Hidden), TextEmbeds: conv(c.TextEmbeds), TimeIDs: c.TimeIDs})
	return scaleGradient(ConvertDType(out, x.DType()), scale)
}

// lossScale is the static loss scale of a float16 backward pass for a prediction shaped like x
// [B, C, H, W]: C·H·W rounded down to a power of two, so the gradient reaching the prediction is
// about that of the per-sample sum of squared errors (O(0.1)) rather than the mean's (O(1e-6) at
// 512 px, where float16 gradients underflow: on the tiny fixtures the unscaled float16 gradients
// are 28% off float32, the scaled ones 0.3%), with several decades of headroom below float16's
// maximum (65504). float32 and bfloat16 share float32's exponent range and need no scale.
func lossScale(x *Node) float64 {
	n := 1
	for _, d := range x.Shape().Dimensions[1:] {
		n *= d
	}
	return math.Exp2(math.Floor(math.Log2(float64(max(n, 1)))))
}

// scaleGradient is x in the forward pass; the backward pass multiplies x's gradient by scale.
func scaleGradient(x *Node, scale float64) *Node {
	if scale == 1 {
		return x
	}
	return IdentityWithCustomGradient(x, func(_, v *Node) *Node { return MulScalar(v, scale) })
}

// scaledAdapter runs an adapter in float32 inside a loss-scaled (float16) UNet: its input is
// converted to float32 and its update back to the layer's dtype; the backward pass divides the
// gradient reaching the update by scale (so the adapter's variables get float32, unscaled
// gradients) and multiplies the gradient it sends back to the layer's input by scale (so it adds to
// the UNet's scaled gradients consistently).
type scaledAdapter struct {
	inner nn.Adapter
	scale float64
}

// LinearDelta implements nn.Adapter.
func (a scaledAdapter) LinearDelta(ctx *model.Scope, x *Node, out int) *Node {
	d := a.inner.LinearDelta(ctx, scaleGradient(ConvertDType(x, dtypes.Float32), a.scale), out)
	if d == nil {
		return nil
	}
	return ConvertDType(scaleGradient(d, 1/a.scale), x.DType())
}

// Conv2DDelta implements nn.Adapter.
func (a scaledAdapter) Conv2DDelta(ctx *model.Scope, x *Node, cfg nn.Conv2DConfig) *Node {
	d := a.inner.Conv2DDelta(ctx, scaleGradient(ConvertDType(x, dtypes.Float32), a.scale), cfg)
	if d == nil {
		return nil
	}
	return ConvertDType(scaleGradient(d, 1/a.scale), x.DType())
}

// teacherStudent holds the predictions one LECO/slider step compares.
type teacherStudent struct {
	Positive, Neutral, Unconditional *Node // ε_0 references, no gradient: [B, C, H, W] each
	Target                           *Node // ε_m(x, t*, E[target]) with the adapter at the per-sample multipliers
	// TargetRef is ε_0(x, t*, E[target]), the frozen model on the student's own prompt (for the
	// preservation term, docs/ALGORITHMS.md §5); nil unless asked for.
	TargetRef *Node
	// ConceptMaps are the teacher's cross-attention maps of the concept tokens in the positive prompt
	// [B, h, w] (U-LOBA's concept mask); nil unless asked for.
	ConceptMaps *Node
}

// predictions runs the frozen teacher's references in ONE batched call — positive, neutral,
// unconditional and, with targetRef, the target prompt: batch 3B or 4B (LECO makes three calls, each
// with a wasted unconditional half) — and the student once with the adapter, on studentTarget (the
// target's conditioning, through the adapted text encoders when they train). x: [B, C, H, W], t: [B].
// With concept ([B, S]: 1 on the concept's tokens of the positive prompt) the teacher's pass also
// captures the cross-attention maps of those tokens (teacherStudent.ConceptMaps).
func predictions(d *denoiser, x, t *Node, target, studentTarget, positive, neutral, unconditional nodeCond, student nn.Adapter, targetRef bool, concept *Node) teacherStudent {
	b := x.Shape().Dim(0)
	conds := []nodeCond{positive, neutral, unconditional}
	if targetRef {
		conds = append(conds, target)
	}
	n := len(conds)
	xs := Concatenate(slices.Repeat([]*Node{x}, n), 0) // [nB, C, H, W]
	ts := Concatenate(slices.Repeat([]*Node{t}, n), 0) // [nB]
	var stop func() *Node
	if concept != nil { // the positive rows' concept tokens; the other rows' maps are not used
		tokens := ConvertDType(concept, dtypes.Float32)
		stop = nn.CaptureCrossAttention(x.Graph(), Concatenate(append([]*Node{tokens}, slices.Repeat([]*Node{ZerosLike(tokens)}, n-1)...), 0))
	}
	refs := StopGradient(d.Predict(xs, ts, concatConds(conds...), nil))              // [nB, C, H, W]
	part := func(i int) *Node { return SliceAxis(refs, 0, AxisRange(i*b, (i+1)*b)) } // [B, C, H, W]
	p := teacherStudent{Positive: part(0), Neutral: part(1), Unconditional: part(2)}
	if stop != nil {
		p.ConceptMaps = SliceAxis(stop(), 0, AxisRange(0, b)) // [B, h, w]
	}
	p.Target = d.Predict(x, t, studentTarget, student)
	if targetRef {
		p.TargetRef = part(3)
	}
	return p
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
