package nn

import (
	"fmt"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
)

// BenchmarkAttentionModes times one self-attention call of SD1.5's first UNet level at 512²
// (batch 2, Sq = Sk = 4096 tokens, 8 heads × 40 = 320 channels; 1 GiB of float32 scores), math
// against chunked (the default: 16 chunks of 256 query rows, 64 MiB of scores each; and 4 chunks
// of 1024 rows), in three passes: the forward alone; the forward and the gradients w.r.t. q, k
// and v; the same with the attention as one gradient-checkpointed block (q.Checkpoint(), as
// models/unet checkpoints a BasicTransformerBlock). measure reports peak-heap-MB (the working set),
// alloc-MB/op and GFLOP/s (the useful 4·B·Sq·Sk·C of the forward, 3× that with the gradients).
//
//	go test ./models/nn/ -run XXX -bench AttentionModes -benchtime 2x
func BenchmarkAttentionModes(b *testing.B) {
	backend := testBackend(b)
	const batch, seq, heads, channels = 2, 4096, 8, 320
	q, k, v := randomF32(batch, seq, channels), randomF32(batch, seq, channels), randomF32(batch, seq, channels)
	flops := 4.0 * batch * seq * seq * channels
	for _, pass := range []string{"forward", "backward", "backward+checkpoint"} {
		for _, o := range []MemoryOptions{{Attention: AttentionMath}, {Attention: AttentionChunked}, {Attention: AttentionChunked, AttentionChunk: 1024}} {
			b.Run(fmt.Sprintf("%s/%s/chunk=%d", pass, o.Attention, o.AttentionChunk), func(b *testing.B) {
				exec := MustNewExec(backend, func(q, k, v *Node) []*Node {
					UseMemoryOptions(q.Graph(), o)
					return attentionBenchGraph(pass, q, k, v, heads)
				})
				defer exec.Finalize()
				perOp := flops
				if pass != "forward" {
					perOp *= 3
				}
				measure(b, perOp, func() {
					for _, t := range exec.MustExec(q, k, v) {
						t.FinalizeAll()
					}
				})
			})
		}
	}
}

// attentionBenchGraph is BenchmarkAttentionModes' graph for one pass: the attention output, or the
// gradients of Σ out² w.r.t. q, k, v (with the attention checkpointed for "backward+checkpoint").
func attentionBenchGraph(pass string, q, k, v *Node, heads int) []*Node {
	if pass == "forward" {
		return []*Node{ScaledDotProductAttention(q, k, v, heads, false)} // [B, S, C]
	}
	x := q
	if pass == "backward+checkpoint" {
		x = q.Checkpoint()
	}
	out := ScaledDotProductAttention(x, k, v, heads, false) // [B, S, C]
	if pass == "backward+checkpoint" {
		out = out.StopCheckpoint()
	}
	return Gradient(ReduceAllSum(Mul(out, out)), q, k, v)
}
