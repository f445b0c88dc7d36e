package nn

import (
	"fmt"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"

	"github.com/loba-dev/loba/internal/testutil"
)

// BenchmarkDenseLayouts times x [M, K] · w on the Go backend with w stored [N, K] (torch's Linear
// layout: DotGeneral's "transposed" layout) and [K, N] ("non-transposed"), for the gemm shapes of
// the tiny SD1.5 UNet at batch 2 (16×16 latents: M = 512 tokens).
func BenchmarkDenseLayouts(b *testing.B) {
	backend := testutil.Backend(b)
	for _, s := range [][3]int{{512, 32, 32}, {512, 32, 256}, {512, 128, 32}, {512, 288, 32}, {128, 576, 64}, {512, 36, 32}, {2048, 8, 256}, {512, 32, 4}, {512, 4, 32}, {2048, 288, 32}, {32, 288, 2048}, {2048, 576, 64}, {64, 576, 2048}} {
		m, k, n := s[0], s[1], s[2]
		x := randomF32(m, k)
		for _, layout := range []string{"NK", "KN", "NK-T"} {
			var w = randomF32(n, k)
			contract := 1
			if layout == "KN" {
				w = randomF32(k, n)
				contract = 0
			}
			exec := MustNewExec(backend, func(x, w *Node) *Node {
				if layout == "NK-T" { // stored [N, K], transposed in the graph
					return DotGeneral(x, []int{1}, nil, Transpose(w, 0, 1), []int{0}, nil)
				}
				return DotGeneral(x, []int{1}, nil, w, []int{contract}, nil)
			})
			b.Run(fmt.Sprintf("%dx%dx%d/%s", m, k, n, layout), func(b *testing.B) {
				measure(b, 2*float64(m*n*k), func() { exec.MustExec(x, w)[0].FinalizeAll() })
			})
		}
	}
}

// BenchmarkAttentionLayouts times attention's probs·v on the Go backend for the tiny SD1.5 UNet's
// shapes (batch 2 × 4 heads, 256 queries, head dim 8; 256 self- or 77 cross-attention keys):
// "PV" is probs [BH, Sq, Sk] · v [BH, Sk, Dh] → [BH, Sq, Dh] (the small kernel vectorises over
// Dh = 8, below its 16 lanes, so it runs unvectorised), "VtPt" computes the transpose,
// vᵀ [BH, Dh, Sk] · probsᵀ → [BH, Dh, Sq], as ScaledDotProductAttention does on this backend.
func BenchmarkAttentionLayouts(b *testing.B) {
	backend := testutil.Backend(b)
	const bh, sq, dh = 8, 256, 8
	for _, sk := range []int{256, 77} {
		p, v, vt := randomF32(bh*sq, sk), randomF32(bh*sk, dh), randomF32(bh*dh, sk)
		pv := MustNewExec(backend, func(p, v *Node) *Node {
			return DotGeneral(Reshape(p, bh, sq, sk), []int{2}, []int{0}, Reshape(v, bh, sk, dh), []int{1}, []int{0})
		})
		vtpt := MustNewExec(backend, func(p, vt *Node) *Node {
			return DotGeneral(Reshape(vt, bh, dh, sk), []int{2}, []int{0}, Reshape(p, bh, sq, sk), []int{2}, []int{0})
		})
		flops := 2 * float64(bh*sq*sk*dh)
		b.Run(fmt.Sprintf("Sk=%d/PV", sk), func(b *testing.B) {
			measure(b, flops, func() { pv.MustExec(p, v)[0].FinalizeAll() })
		})
		b.Run(fmt.Sprintf("Sk=%d/VtPt", sk), func(b *testing.B) {
			measure(b, flops, func() { vtpt.MustExec(p, vt)[0].FinalizeAll() })
		})
	}
}

// BenchmarkUnary times the Go backend's transcendental element-wise ops on 1M float32 values: Exp
// and Logistic (pure Go in LOBA's patched compute, see internal/third_party/compute/LOBA_PATCH.md),
// and Erf (exact GELU).
func BenchmarkUnary(b *testing.B) {
	backend := testutil.Backend(b)
	x := randomF32(4, 4, 256, 256)
	for name, op := range map[string]func(*Node) *Node{"Exp": Exp, "Logistic": Sigmoid, "Erf": Erf} {
		exec := MustNewExec(backend, op)
		b.Run(name, func(b *testing.B) { measure(b, 0, func() { exec.MustExec(x)[0].FinalizeAll() }) })
	}
}
