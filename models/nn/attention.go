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
//
// The implementation follows the graph's MemoryOptions.Attention (see attention_modes.go): the
// math path below materialises the [B, H, Sq, Sk] scores; the chunked path runs it on chunks of
// the queries; the fused path calls the backend's FusedScaledDotProductAttention.
func ScaledDotProductAttention(q, k, v *Node, heads int, causal bool) *Node {
	if q.Rank() != 3 || k.Rank() != 3 || v.Rank() != 3 {
		exceptions.Panicf("nn.ScaledDotProductAttention: want [B, S, C] inputs, got q %s, k %s, v %s", q.Shape(), k.Shape(), v.Shape())
	}
	c := q.Shape().Dim(2)
	if heads <= 0 || c%heads != 0 || k.Shape().Dim(2) != c || v.Shape().Dim(2) != c {
		exceptions.Panicf("nn.ScaledDotProductAttention: %d heads do not fit q %s, k %s, v %s", heads, q.Shape(), k.Shape(), v.Shape())
	}
	out, _ := attention(q, k, v, heads, causal, nil)
	return out
}

// attention is ScaledDotProductAttention on the implementation the graph's MemoryOptions pick,
// and, when mask ([B, Sk] float32) is given, the attention probability mass on the masked keys,
// averaged over the heads: mass [B, Sq] float32 (see maskedMass). The math and chunked paths take
// it from the probabilities they materialise; the fused path, which never does, recomputes them
// (recomputedMass). mass is nil without a mask.
func attention(q, k, v *Node, heads int, causal bool, mask *Node) (out, mass *Node) {
	switch p := planAttention(q, k, v, heads); p.mode {
	case AttentionFused:
		out = fusedAttention(q, k, v, heads, causal, p.explicit)
		if mask != nil {
			mass = recomputedMass(q, k, heads, causal, mask)
		}
		return out, mass
	case AttentionChunked:
		return chunkedAttention(q, k, v, heads, causal, p.rows, mask)
	}
	return mathAttention(q, k, v, heads, causal, mask)
}

// mathAttention is the math path: the whole [B, H, Sq, Sk] scores at once (torch's math SDPA),
// with the masked probability mass [B, Sq] when mask is given (else nil).
func mathAttention(q, k, v *Node, heads int, causal bool, mask *Node) (out, mass *Node) {
	kv := newAttentionKV(k, v, heads)
	return attendRows(scaleQuery(q, kv.dh), kv, causal, 0, mask)
}

// attentionKV is k and v laid out for attendRows, once for every chunk of queries.
type attentionKV struct {
	kh *Node // [B, Sk, H, Dh]
	// v is vh [B, Sk, H, Dh], or vᵀ [B, H, Dh, Sk] when transposed (the Go backend's layout).
	v          *Node
	transposed bool
	heads, dh  int
}

// newAttentionKV reshapes k, v [B, Sk, H·Dh] into heads. On the Go backend v is transposed: its
// small kernels vectorise over the output's last axis, and Dh is small (8–64 in the tiny models),
// so attendRows computes outᵀ = vᵀ·probsᵀ, whose last axis is Sq, and folds the transpose back into
// the final one (models/nn BenchmarkAttentionLayouts).
func newAttentionKV(k, v *Node, heads int) attentionKV {
	b, sk, c := k.Shape().Dim(0), k.Shape().Dim(1), k.Shape().Dim(2)
	dh := c / heads
	kv := attentionKV{heads: heads, dh: dh, transposed: gemm.OnGoBackend(k.Graph())}
	kv.kh = Reshape(k, b, sk, heads, dh) // [B, Sk, H, Dh]
	kv.v = Reshape(v, b, sk, heads, dh)  // [B, Sk, H, Dh]
	if kv.transposed {
		kv.v = TransposeAllAxes(kv.v, 0, 2, 3, 1) // [B, H, Dh, Sk]
	}
	return kv
}

// scaleQuery scales q by Dh^-½. The scale goes on q ([B, Sq, C]) rather than on the scores
// ([B, H, Sq, Sk], Sk/Dh times larger), as PyTorch's math SDPA does.
func scaleQuery(q *Node, dh int) *Node {
	return MulScalar(q, 1/math.Sqrt(float64(dh)))
}

// attendRows is the attention of the (already scaled) query rows row0 … row0+n-1 over all of kv,
// and, when mask [B, Sk] is given, those rows' probability mass on the masked keys (maskedMass).
// q: [B, n, H·Dh] → out [B, n, H·Dh], mass [B, n] float32 or nil. row0 places the causal mask.
func attendRows(q *Node, kv attentionKV, causal bool, row0 int, mask *Node) (out, mass *Node) {
	b, n, c := q.Shape().Dim(0), q.Shape().Dim(1), q.Shape().Dim(2)
	sk := kv.kh.Shape().Dim(1)
	dtype := q.DType()
	qh := Reshape(q, b, n, kv.heads, kv.dh)                                            // [B, n, H, Dh]
	scores := gemm.DotGeneral(qh, []int{3}, []int{0, 2}, kv.kh, []int{3}, []int{0, 2}) // [B, H, n, Sk]
	scores = ConvertDType(scores, dtypes.Float32)
	if causal {
		scores = Add(scores, ExpandLeftToRank(causalMask(q.Graph(), n, sk, row0), 4))
	}
	probs32 := Softmax(scores, -1) // [B, H, n, Sk] float32
	if mask != nil {
		mass = maskedMass(probs32, mask) // [B, n]
	}
	probs := ConvertDType(probs32, dtype) // [B, H, n, Sk]
	if kv.transposed {
		outT := DotGeneral(kv.v, []int{3}, []int{0, 1}, probs, []int{3}, []int{0, 1}) // [B, H, Dh, n]
		out = TransposeAllAxes(outT, 0, 3, 1, 2)                                      // [B, n, H, Dh]
		return Reshape(out, b, n, c), mass                                            // [B, n, H·Dh]
	}
	out = gemm.DotGeneral(probs, []int{3}, []int{0, 1}, kv.v, []int{1}, []int{0, 2}) // [B, H, n, Dh]
	out = TransposeAllAxes(out, 0, 2, 1, 3)                                          // [B, n, H, Dh]
	return Reshape(out, b, n, c), mass                                               // [B, n, H·Dh]
}

// maskedMass is the probability mass of probs [B, H, n, Sk] (float32) on the keys where mask
// [B, Sk] is 1 (Σ_j probs·mask, a weighted sum for fractional masks), averaged over the H heads:
// → [B, n] float32.
func maskedMass(probs, mask *Node) *Node {
	m := DotGeneral(probs, []int{3}, []int{0}, mask, []int{1}, []int{0}) // [B, H, n]
	return ReduceMean(m, 1)                                              // [B, n]
}

// recomputedMass is attendRows' mass for an implementation that never materialises the
// probabilities (the fused kernel): softmax(q kᵀ · Dh^-½) in float32 over all Sk keys (the
// softmax's denominator needs every key; Sk is the text's 77 tokens for a cross-attention), then
// maskedMass. q: [B, Sq, H·Dh], k: [B, Sk, H·Dh], mask [B, Sk] → [B, Sq] float32.
func recomputedMass(q, k *Node, heads int, causal bool, mask *Node) *Node {
	b, sq, sk := q.Shape().Dim(0), q.Shape().Dim(1), k.Shape().Dim(1)
	dh := q.Shape().Dim(2) / heads
	qh := Reshape(scaleQuery(q, dh), b, sq, heads, dh)                              // [B, Sq, H, Dh]
	kh := Reshape(k, b, sk, heads, dh)                                              // [B, Sk, H, Dh]
	scores := gemm.DotGeneral(qh, []int{3}, []int{0, 2}, kh, []int{3}, []int{0, 2}) // [B, H, Sq, Sk]
	scores = ConvertDType(scores, dtypes.Float32)
	if causal {
		scores = Add(scores, ExpandLeftToRank(causalMask(q.Graph(), sq, sk, 0), 4))
	}
	return maskedMass(Softmax(scores, -1), mask) // [B, Sq]
}

// causalMask is the additive mask of query rows row0 … row0+n-1 over sk keys: float32 min where
// the key position j > the query position i, else 0. → [n, Sk].
func causalMask(g *Graph, n, sk, row0 int) *Node {
	row := Iota(g, shapesMake(dtypes.Int32, n, sk), 0)
	if row0 != 0 {
		row = AddScalar(row, float64(row0))
	}
	col := Iota(g, shapesMake(dtypes.Int32, n, sk), 1)
	minF := Scalar(g, dtypes.Float32, -math.MaxFloat32)
	zero := ScalarZero(g, dtypes.Float32)
	return Where(GreaterThan(col, row), BroadcastToDims(minF, n, sk), BroadcastToDims(zero, n, sk)) // [n, Sk]
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
