package nn

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/gradfix/gradcheck"
	"github.com/loba-dev/loba/internal/testutil"
)

// chunkedTol bounds the relative L2 error between the chunked and the math attention's outputs
// and gradients: the same rows, only the gemms' summation order may differ.
const chunkedTol = 1e-5

// attentionRun is the output of ScaledDotProductAttention(q, k, v, heads, causal) under o, the
// gradients of Σ out·R w.r.t. q, k, v (float64), and the number of nodes of each type.
func attentionRun(t *testing.T, o MemoryOptions, heads int, causal bool, qkv []*tensors.Tensor) (out []float64, grads [][]float64, ops map[NodeType]int) {
	t.Helper()
	var outs []*tensors.Tensor
	_, grads, ops = gradcheck.Gradients(testBackend(t), func(xs []*Node) *Node {
		UseMemoryOptions(xs[0].Graph(), o)
		return ScaledDotProductAttention(xs[0], xs[1], xs[2], heads, causal)
	}, qkv, 0)
	outs = MustExecOnceN(testBackend(t), func(xs []*Node) []*Node {
		UseMemoryOptions(xs[0].Graph(), o)
		return []*Node{ScaledDotProductAttention(xs[0], xs[1], xs[2], heads, causal)}
	}, qkv[0], qkv[1], qkv[2])
	return tensors.MustCopyFlatData[float64](outs[0]), grads, ops
}

// TestAttentionChunkedMatchesMath compares chunked with math attention — forward and gradients —
// for self- and cross-attention, causal or not, with chunks that divide Sq and chunks that leave
// a short last one; the chunked graph must hold one SchedulingBarrier per chunk after the first.
func TestAttentionChunkedMatchesMath(t *testing.T) {
	for _, c := range []struct {
		name           string
		sq, sk, heads  int
		causal         bool
		chunks, counts []int // AttentionChunk values, and the chunks each gives
	}{
		{"self-causal", 77, 77, 2, true, []int{1, 24, 76, 77}, []int{77, 4, 2, 1}},
		{"self", 40, 40, 4, false, []int{8, 13}, []int{5, 4}},
		{"cross", 24, 77, 2, false, []int{5, 12}, []int{5, 2}},
	} {
		qkv := []*tensors.Tensor{gradcheck.Random(80, 2, c.sq, 16), gradcheck.Random(81, 2, c.sk, 16), gradcheck.Random(82, 2, c.sk, 16)}
		wantOut, wantGrads, _ := attentionRun(t, MemoryOptions{Attention: AttentionMath}, c.heads, c.causal, qkv)
		for i, chunk := range c.chunks {
			t.Run(fmt.Sprintf("%s/chunk=%d", c.name, chunk), func(t *testing.T) {
				out, grads, ops := attentionRun(t, MemoryOptions{Attention: AttentionChunked, AttentionChunk: chunk}, c.heads, c.causal, qkv)
				require.Equal(t, c.counts[i]-1, ops[NodeTypeSchedulingBarrier], "barriers (chunks - 1)")
				rel := testutil.RelErr(out, wantOut)
				t.Logf("output rel. err %.2e", rel)
				require.LessOrEqual(t, rel, chunkedTol, "output")
				for j, name := range []string{"q", "k", "v"} {
					rel := testutil.RelErr(grads[j], wantGrads[j])
					t.Logf("∂/∂%s rel. err %.2e", name, rel)
					require.LessOrEqual(t, rel, chunkedTol, "gradient w.r.t. %s", name)
				}
			})
		}
	}
}

// TestAttentionAutoIsMath checks that auto (the zero MemoryOptions) builds exactly the math graph
// for the small calls of the tiny models, with bit-identical outputs and gradients.
func TestAttentionAutoIsMath(t *testing.T) {
	for _, causal := range []bool{false, true} {
		qkv := []*tensors.Tensor{gradcheck.Random(83, 2, 30, 12), gradcheck.Random(84, 2, 30, 12), gradcheck.Random(85, 2, 30, 12)}
		mathOut, mathGrads, mathOps := attentionRun(t, MemoryOptions{Attention: AttentionMath}, 3, causal, qkv)
		autoOut, autoGrads, autoOps := attentionRun(t, MemoryOptions{}, 3, causal, qkv)
		require.Equal(t, mathOps, autoOps, "causal=%v: node types", causal)
		require.Equal(t, mathOut, autoOut, "causal=%v: output", causal)
		require.Equal(t, mathGrads, autoGrads, "causal=%v: gradients", causal)
	}
}

// buildAttention builds (without running) one attention call of q [B, Sq, C], k, v [B, Sk, C] under
// o and returns the number of SchedulingBarrier nodes, or the panic's error.
func buildAttention(t *testing.T, o MemoryOptions, dtype dtypes.DType, b, sq, sk, c, heads int) (barriers int, err error) {
	g := NewGraph(testBackend(t), "attention")
	defer g.Finalize()
	UseMemoryOptions(g, o)
	defer UseMemoryOptions(g, MemoryOptions{})
	err = exceptions.TryCatch[error](func() {
		q := Parameter(g, "q", shapesMake(dtype, b, sq, c))
		k := Parameter(g, "k", shapesMake(dtype, b, sk, c))
		ScaledDotProductAttention(q, k, k, heads, false)
	})
	for _, n := range g.Nodes() {
		if n.Type() == NodeTypeSchedulingBarrier {
			barriers++
		}
	}
	return barriers, err
}

// TestAttentionAutoChunksLongSequences checks auto's choice on the Go backend: math up to
// AttentionScoresBudget of scores, chunked above it in chunks within the budget; and the chunk
// sizes explicit chunked mode picks with AttentionChunk 0.
func TestAttentionAutoChunksLongSequences(t *testing.T) {
	for _, c := range []struct {
		o                   MemoryOptions
		b, sq, sk, c, heads int
		wantBarriers        int
	}{
		{MemoryOptions{}, 1, 4096, 4096, 64, 1, 0},    // 64 MiB of scores: math
		{MemoryOptions{}, 2, 4096, 4096, 320, 8, 15},  // SD1.5 level 1: 1 GiB, 16 chunks of 256 rows
		{MemoryOptions{}, 2, 4096, 77, 320, 8, 0},     // its cross-attention: 19 MiB
		{MemoryOptions{}, 2, 1024, 1024, 640, 8, 0},   // SD1.5 level 2: 64 MiB, at the budget
		{MemoryOptions{}, 2, 1024, 1024, 1280, 20, 2}, // SDXL level 3 at 1024²: 160 MiB, 3 chunks of 342 rows
		{MemoryOptions{Attention: AttentionMath}, 2, 4096, 4096, 320, 8, 0},
		{MemoryOptions{Attention: AttentionChunked}, 2, 1000, 1000, 16, 2, 0},                      // fits the budget: one chunk
		{MemoryOptions{Attention: AttentionChunked}, 1, 4500, 4500, 16, 1, 1},                      // 77 MiB: 2 chunks of 2250 rows
		{MemoryOptions{Attention: AttentionChunked, AttentionChunk: 100}, 1, 1000, 1000, 16, 2, 9}, // 10 chunks
	} {
		barriers, err := buildAttention(t, c.o, dtypes.Float32, c.b, c.sq, c.sk, c.c, c.heads)
		require.NoError(t, err)
		require.Equal(t, c.wantBarriers, barriers, "%+v B=%d Sq=%d Sk=%d C=%d H=%d", c.o, c.b, c.sq, c.sk, c.c, c.heads)
	}
}

// TestAttentionFusedOnGoBackend checks that fused attention asked for on the Go backend (which has
// no FusedScaledDotProductAttention) fails at graph building with an error naming the setting and
// the backend, that auto there never takes the fused path (bf16 included), and that an unknown
// setting is an error.
func TestAttentionFusedOnGoBackend(t *testing.T) {
	_, err := buildAttention(t, MemoryOptions{Attention: AttentionFused}, dtypes.BFloat16, 2, 64, 64, 64, 2)
	require.Error(t, err)
	for _, want := range []string{`"fused"`, "train.attention", testBackend(t).Description(), "FusedScaledDotProductAttention"} {
		require.Contains(t, err.Error(), want)
	}
	_, err = buildAttention(t, MemoryOptions{}, dtypes.BFloat16, 2, 64, 64, 64, 2)
	require.NoError(t, err)
	_, err = buildAttention(t, MemoryOptions{Attention: "flash"}, dtypes.Float32, 2, 64, 64, 64, 2)
	require.ErrorContains(t, err, `"flash"`)
}

// TestFusedAttentionFallback runs fusedAttention itself on the Go backend, which declines the fused
// op (compute.ErrNotImplemented): not explicit, it is the math path; explicit, an error.
func TestFusedAttentionFallback(t *testing.T) {
	qkv := []*tensors.Tensor{gradcheck.Random(86, 2, 24, 16), gradcheck.Random(87, 2, 24, 16), gradcheck.Random(88, 2, 24, 16)}
	for _, causal := range []bool{false, true} {
		want := MustExecOnce(testBackend(t), func(q, k, v *Node) *Node { o, _ := mathAttention(q, k, v, 2, causal, nil); return o }, qkv[0], qkv[1], qkv[2])
		got := MustExecOnce(testBackend(t), func(q, k, v *Node) *Node { return fusedAttention(q, k, v, 2, causal, false) }, qkv[0], qkv[1], qkv[2])
		require.Equal(t, tensors.MustCopyFlatData[float64](want), tensors.MustCopyFlatData[float64](got), "causal=%v", causal)
	}
	err := exceptions.TryCatch[error](func() {
		MustExecOnce(testBackend(t), func(q, k, v *Node) *Node { return fusedAttention(q, k, v, 2, false, true) }, qkv[0], qkv[1], qkv[2])
	})
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "declined"), err.Error())
}
