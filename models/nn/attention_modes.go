package nn

import (
	"math"

	"github.com/gomlx/compute"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"

	"github.com/loba-dev/loba/models/nn/gemm"
)

// How ScaledDotProductAttention picks its implementation (MemoryOptions.Attention):
//
//   - AttentionMath: every call materialises its [B, H, Sq, Sk] float32 scores (and the softmax's
//     temporaries of that size): 1 GiB per call for SD1.5's first level at 512² (B=2, 8 heads,
//     Sq = Sk = 4096).
//   - AttentionChunked: the queries are cut into chunks of MemoryOptions.AttentionChunk rows (0:
//     as many as keep one chunk's scores ≤ AttentionScoresBudget, in equal chunks); each chunk is
//     the math path, and chunk i+1 is made to wait for chunk i (SchedulingBarrier), so that the
//     Go backend's parallel executor keeps one chunk's scores live at a time. Every row's softmax
//     is the same, so is the result (up to the gemms' summation order). What it saves is the
//     forward's peak (inference, sampling, and the recomputed forward of a checkpointed block):
//     for one SD1.5 first-level call, 2.2–3.3 GB of live heap → 0.3 GB, in about the same time
//     (BenchmarkAttentionModes). Autodiff still keeps every chunk's probabilities for the backward
//     (and the exp of the decomposed softmax that gomlx's Softmax differentiates), as much as the
//     math path keeps, and runs the chunks' gradients in any order: forward + backward peaks at
//     4.0–4.7 GB against math's 5.5 GB. With gradient checkpointing the probabilities are
//     recomputed chunk by chunk instead: 2.3 GB against math's 4.4 GB.
//   - AttentionFused: the backend's FusedScaledDotProductAttention (cuDNN flash attention on XLA
//     CUDA, which never materialises the scores, forward or backward). A backend without it
//     panics, naming the backend and the setting; so do float32 activations (cuDNN flash attention
//     takes float16/bfloat16 only: train in bf16, or use chunked). Calls the kernel cannot serve
//     — cross-attention (Sq ≠ Sk: go-xla v0.4.5's compute/xla/flash.go describes the scores to
//     cuDNN as [B, H, Sq, Sq], which does not fit them), head dims above maxFusedHeadDim or not a
//     multiple of 8 (the VAE's single 512-wide head) — take the non-fused path AttentionAuto would
//     take; their scores are small in SD's UNets. TestAttentionFusedMatchesMath checks this path
//     against math on a GPU (LOBA_FUSED_BACKEND=xla:cuda).
//   - AttentionAuto: fused where the backend has it and the call fits it; else, on the Go
//     backend, chunked when one call's float32 scores exceed AttentionScoresBudget; else math.
//     The tiny test models stay far below the budget, so their graphs are the math path's.

// AttentionScoresBudget is the size in bytes of one call's float32 attention scores
// [B, H, Sq, Sk] above which AttentionAuto chunks on the Go backend, and the size one chunk's
// scores stay within when AttentionChunked picks the chunk size itself. 64 MiB: at batch 2,
// SD1.5's first level at 512² chunks (1 GiB of scores: 16 chunks of 256 query rows) and so do
// SDXL's two attention levels at 1024² (1.25 GiB, 160 MiB); SD1.5's second level (64 MiB, at the
// budget), the smaller levels and every cross-attention (77 keys) run the math path.
const AttentionScoresBudget = 64 << 20

// maxFusedHeadDim is the largest head dim sent to the fused kernel: cuDNN's flash attention takes
// up to 128 on every GPU it supports (more only on some GPUs and cuDNN versions), so SD1.5's
// 160-wide heads of the two innermost levels (≤ 256 tokens at 512²) stay on the math path.
const maxFusedHeadDim = 128

// attentionPlan is how one ScaledDotProductAttention call is computed.
type attentionPlan struct {
	mode     string // AttentionMath, AttentionChunked or AttentionFused
	rows     int    // query rows per chunk (AttentionChunked)
	explicit bool   // the graph's MemoryOptions asked for mode (not AttentionAuto's choice)
}

// planAttention resolves the graph's MemoryOptions.Attention for q [B, Sq, C], k, v [B, Sk, C].
func planAttention(q, k, v *Node, heads int) attentionPlan {
	g := q.Graph()
	o := MemoryOptionsOf(g)
	switch o.Attention {
	case AttentionMath:
		return attentionPlan{mode: AttentionMath, explicit: true}
	case AttentionChunked:
		return attentionPlan{mode: AttentionChunked, rows: chunkRows(q, k, heads, o.AttentionChunk), explicit: true}
	case AttentionFused:
		if !hasFusedAttention(g) {
			exceptions.Panicf("nn.ScaledDotProductAttention: attention %q (train.attention) was asked for, but the backend %q has no FusedScaledDotProductAttention (cuDNN flash attention needs XLA on CUDA); use auto, chunked or math",
				AttentionFused, g.Backend().Description())
		}
		if !q.DType().IsHalfPrecision() {
			exceptions.Panicf("nn.ScaledDotProductAttention: attention %q (train.attention) needs float16 or bfloat16 activations (cuDNN flash attention), got %s on backend %q; train in bf16, or use auto, chunked or math",
				AttentionFused, q.DType(), g.Backend().Description())
		}
		if fusedFits(q, k, v, heads) {
			return attentionPlan{mode: AttentionFused, explicit: true}
		}
	case AttentionAuto:
		if hasFusedAttention(g) && q.DType().IsHalfPrecision() && fusedFits(q, k, v, heads) {
			return attentionPlan{mode: AttentionFused}
		}
	default:
		exceptions.Panicf("nn.ScaledDotProductAttention: unknown MemoryOptions.Attention %q (want %q, %q, %q or %q for auto)",
			o.Attention, AttentionMath, AttentionChunked, AttentionFused, AttentionAuto)
	}
	if gemm.OnGoBackend(g) && scoresBytes(q, k, heads) > AttentionScoresBudget {
		return attentionPlan{mode: AttentionChunked, rows: chunkRows(q, k, heads, 0)}
	}
	return attentionPlan{mode: AttentionMath}
}

// scoresBytes is the size of the float32 scores [B, H, Sq, Sk] of q [B, Sq, C] and k [B, Sk, C].
func scoresBytes(q, k *Node, heads int) int {
	return 4 * q.Shape().Dim(0) * heads * q.Shape().Dim(1) * k.Shape().Dim(1)
}

// chunkRows is the number of query rows per chunk: chunk when positive, else the most that keep a
// chunk's scores within AttentionScoresBudget, evened out over the chunks (4096 rows in chunks of
// at most 300 are 13 chunks of 293 rows and one of 287, not 13 of 300 and one of 196).
func chunkRows(q, k *Node, heads, chunk int) int {
	sq := q.Shape().Dim(1)
	if chunk > 0 {
		return min(chunk, sq)
	}
	perRow := scoresBytes(q, k, heads) / sq
	rows := max(1, AttentionScoresBudget/perRow)
	n := (sq + rows - 1) / rows // chunks
	return (sq + n - 1) / n
}

// chunkedAttention is the attention computed `rows` query rows at a time: the query chunking of
// Rabe & Staats, "Self-attention Does Not Need O(n²) Memory" (2021), as Birch-san's
// sub-quadratic-attention does it for Stable Diffusion, without their key chunking (a chunk holds
// whole rows, so each row's softmax is the math path's; diffusers' SlicedAttnProcessor slices
// batch·heads instead, which does not shrink one head's scores).
// q: [B, Sq, C], k, v: [B, Sk, C] → [B, Sq, C].
// With mask [B, Sk], each chunk's masked probability mass comes too (attendRows): mass [B, Sq].
func chunkedAttention(q, k, v *Node, heads int, causal bool, rows int, mask *Node) (out, mass *Node) {
	sq := q.Shape().Dim(1)
	if rows >= sq {
		return mathAttention(q, k, v, heads, causal, mask)
	}
	kv := newAttentionKV(k, v, heads)
	q = scaleQuery(q, kv.dh) // [B, Sq, C]
	var outs, masses []*Node
	for row0 := 0; row0 < sq; row0 += rows {
		qc := SliceAxis(q, 1, AxisRange(row0, min(row0+rows, sq))) // [B, n, C]
		if len(outs) > 0 {
			// Chunk i+1 starts once chunk i is done: one chunk's scores live at a time.
			qc = SchedulingBarrier(qc, outs[len(outs)-1])
		}
		o, m := attendRows(qc, kv, causal, row0, mask) // [B, n, C], [B, n]
		outs, masses = append(outs, o), append(masses, m)
	}
	if mask != nil {
		mass = Concatenate(masses, 1) // [B, Sq]
	}
	return Concatenate(outs, 1), mass // [B, Sq, C]
}

// hasFusedAttention reports whether g's backend has a fused scaled dot-product attention.
func hasFusedAttention(g *Graph) bool {
	return g.Backend().Capabilities().Operations[compute.OpTypeFusedScaledDotProductAttention]
}

// fusedFits reports whether the fused kernel serves q [B, Sq, C], k, v [B, Sk, C] with `heads` heads:
// self-attention (Sq = Sk) with a head dim that is a multiple of 8 and at most maxFusedHeadDim.
func fusedFits(q, k, v *Node, heads int) bool {
	dh := q.Shape().Dim(2) / heads
	sameDType := k.DType() == q.DType() && v.DType() == q.DType()
	return q.Shape().Dim(1) == k.Shape().Dim(1) && sameDType && dh%8 == 0 && dh <= maxFusedHeadDim
}

// fusedAttention is the backend's FusedScaledDotProductAttention in the [B, S, H, Dh] layout, with
// the math path as its fallback and, where the backend has no fused backward, as its gradient (as
// gomlx's ml/layers/attention.Core does). explicit makes a fallback panic instead.
// q, k, v: [B, S, H·Dh] → [B, S, H·Dh].
func fusedAttention(q, k, v *Node, heads int, causal, explicit bool) *Node {
	b, sq, c := q.Shape().Dim(0), q.Shape().Dim(1), q.Shape().Dim(2)
	sk, dh := k.Shape().Dim(1), c/heads
	g := q.Graph()
	cfg := &compute.ScaledDotProductAttentionConfig{Scale: 1 / math.Sqrt(float64(dh)), Causal: causal}
	hasVJP := g.Backend().Capabilities().Operations[compute.OpTypeFusedScaledDotProductAttentionVJP]
	out, fused := InternalFusedOpCaller(func() *Node {
		o, _ := BackendFusedScaledDotProductAttention(Reshape(q, b, sq, heads, dh), Reshape(k, b, sk, heads, dh),
			Reshape(v, b, sk, heads, dh), compute.AttentionAxesLayoutBSHD, cfg) // [B, Sq, H, Dh]
		return o
	}, func() *Node {
		o, _ := mathAttention(q, k, v, heads, causal, nil)
		return Reshape(o, b, sq, heads, dh) // [B, Sq, H, Dh]
	}, !hasVJP)
	if !fused && explicit {
		exceptions.Panicf("nn.ScaledDotProductAttention: attention %q (train.attention) was asked for, but the backend %q declined FusedScaledDotProductAttention for q %s, k %s (or GOMLX fusion is disabled); use auto, chunked or math",
			AttentionFused, g.Backend().Description(), q.Shape(), k.Shape())
	}
	return Reshape(out, b, sq, c) // [B, Sq, H·Dh]
}
