package nn

import (
	"math"

	"github.com/loba-dev/loba/models/nn/gemm"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// ScaledDotProductAttention is softmax(q kᵀ · head_dim^-0.5 [+ causal mask]) v over `heads` heads,
// as torch.nn.functional.scaled_dot_product_attention / diffusers AttnProcessor. Scores and the
// softmax are computed in float32.
//
// q: [B, Sq, H·Dh], k, v: [B, Sk, H·Dh] → [B, Sq, H·Dh].
// causal masks key positions j > i (CLIP's text encoder), as transformers does with float32 min.
func ScaledDotProductAttention(q, k, v *Node, heads int, causal bool) *Node {
	if q.Rank() != 3 || k.Rank() != 3 || v.Rank() != 3 {
		exceptions.Panicf("nn.ScaledDotProductAttention: want [B, S, C] inputs, got q %s, k %s, v %s", q.Shape(), k.Shape(), v.Shape())
	}
	b, sq, c := q.Shape().Dim(0), q.Shape().Dim(1), q.Shape().Dim(2)
	sk := k.Shape().Dim(1)
	if heads <= 0 || c%heads != 0 || k.Shape().Dim(2) != c || v.Shape().Dim(2) != c {
		exceptions.Panicf("nn.ScaledDotProductAttention: %d heads do not fit q %s, k %s, v %s", heads, q.Shape(), k.Shape(), v.Shape())
	}
	dh := c / heads
	dtype := q.DType()
	// The scale goes on q ([B, Sq, C]) rather than on the scores ([B, H, Sq, Sk], Sk/Dh times
	// larger), as PyTorch's math SDPA does.
	q = MulScalar(q, 1/math.Sqrt(float64(dh)))
	qh := Reshape(q, b, sq, heads, dh)                                              // [B, Sq, H, Dh]
	kh := Reshape(k, b, sk, heads, dh)                                              // [B, Sk, H, Dh]
	vh := Reshape(v, b, sk, heads, dh)                                              // [B, Sk, H, Dh]
	scores := gemm.DotGeneral(qh, []int{3}, []int{0, 2}, kh, []int{3}, []int{0, 2}) // [B, H, Sq, Sk]
	scores = ConvertDType(scores, dtypes.Float32)
	if causal {
		g := q.Graph()
		row := Iota(g, shapesMake(dtypes.Int32, sq, sk), 0)
		col := Iota(g, shapesMake(dtypes.Int32, sq, sk), 1)
		minF := Scalar(g, dtypes.Float32, -math.MaxFloat32)
		zero := ScalarZero(g, dtypes.Float32)
		mask := Where(GreaterThan(col, row), BroadcastToDims(minF, sq, sk), BroadcastToDims(zero, sq, sk)) // [Sq, Sk]
		scores = Add(scores, ExpandLeftToRank(mask, 4))
	}
	probs := ConvertDType(Softmax(scores, -1), dtype) // [B, H, Sq, Sk]
	if gemm.OnGoBackend(q.Graph()) {
		// The Go backend's small kernels vectorise over the output's last axis, and Dh is small
		// (8–64 in the tiny models): compute outᵀ = vᵀ·probsᵀ, whose last axis is Sq, and
		// fold the transpose back into the final one (models/nn BenchmarkAttentionLayouts).
		vt := TransposeAllAxes(vh, 0, 2, 3, 1)                                      // [B, H, Dh, Sk]
		outT := DotGeneral(vt, []int{3}, []int{0, 1}, probs, []int{3}, []int{0, 1}) // [B, H, Dh, Sq]
		out := TransposeAllAxes(outT, 0, 3, 1, 2)                                   // [B, Sq, H, Dh]
		return Reshape(out, b, sq, c)                                               // [B, Sq, H·Dh]
	}
	out := gemm.DotGeneral(probs, []int{3}, []int{0, 1}, vh, []int{1}, []int{0, 2}) // [B, H, Sq, Dh]
	out = TransposeAllAxes(out, 0, 2, 1, 3)                                         // [B, Sq, H, Dh]
	return Reshape(out, b, sq, c)                                                   // [B, Sq, H·Dh]
}

// GEGLU ports diffusers GEGLU: proj = Linear(in, 2·out); hidden, gate = proj(x).chunk(2, -1);
// hidden · gelu(gate) with exact erf GELU. ctx is the GEGLU module's scope (its child is "proj").
// x: [..., in] → [..., out].
func GEGLU(ctx *model.Scope, x *Node, out int) *Node {
	h := Linear(ctx.At("proj"), x, 2*out, true) // [..., 2·out]
	last := h.Rank() - 1
	hidden := SliceAxis(h, last, AxisRange(0, out))
	gate := SliceAxis(h, last, AxisRange(out, 2*out))
	return Mul(hidden, GELU(gate)) // [..., out]
}
