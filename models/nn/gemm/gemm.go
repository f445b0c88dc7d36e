// Package gemm lays out DotGeneral for the kernels that run it fast.
//
// On the pure-Go backend (compute v0.1.6) a DotGeneral below 4Mi multiply-adds runs a "small" kernel
// whose speed depends on the layout it is given: for lhs [B, M, K] · rhs [B, K, N] ("non-transposed")
// it vectorises over N; for rhs [B, N, K] ("transposed"), and for any layout it has to normalise
// (contracting axes not last/first, several batch or contracting axes), it computes every output
// as a separate dot product closed by a horizontal vector sum, 10–25× slower at the shapes of
// LOBA's tiny UNets (models/nn BenchmarkDenseLayouts: 512×32×32 takes 2.6 ms against 0.11 ms).
// DotGeneral here transposes and reshapes small products into [B, M, K] · [B, K, N] itself, so the
// fast kernel runs; larger products, and every product on other backends (XLA fuses layouts), go to
// graph.DotGeneral unchanged.
package gemm

import (
	"slices"
	"sync"

	"github.com/gomlx/gomlx/core/graph"
)

// SmallThreshold is the Go backend's threshold, in multiply-adds, below which it uses its small
// kernels (compute v0.1.6 internal/gobackend/dot/matmul/nosimd.go noSIMDSmallMatMulSizeThreshold).
const SmallThreshold = 4 * 1024 * 1024

// goBackendName is the registration name of the pure-Go backend.
const goBackendName = "go"

// OnGoBackend reports whether g is built for the pure-Go backend (and not marked BuildAsAccelerator).
func OnGoBackend(g *graph.Graph) bool {
	if asAccelerator(g) {
		return false
	}
	b := g.Backend()
	return b != nil && b.String() == goBackendName
}

var accelerated sync.Map // graph.GraphId → true

// BuildAsAccelerator makes the layers built in g lay themselves out as for an accelerator backend
// (no Go-backend layouts: no im2col, no transposed operands), although g is built on the Go
// backend. The memory plan builds its shape-only graphs of a GPU run this way; such a graph is
// never executed.
func BuildAsAccelerator(g *graph.Graph) { accelerated.Store(g.GraphId(), true) }

func asAccelerator(g *graph.Graph) bool {
	_, ok := accelerated.Load(g.GraphId())
	return ok
}

// DotGeneral is graph.DotGeneral(lhs, lc, lb, rhs, rc, rb) — same result, same output layout
// [batch..., lhs free axes..., rhs free axes...] — laid out for the Go backend's fast small kernel
// (see the package doc).
func DotGeneral(lhs *graph.Node, lc, lb []int, rhs *graph.Node, rc, rb []int) *graph.Node {
	if !OnGoBackend(lhs.Graph()) {
		return graph.DotGeneral(lhs, lc, lb, rhs, rc, rb)
	}
	lc, lb = NonNegative(lhs.Rank(), lc), NonNegative(lhs.Rank(), lb)
	rc, rb = NonNegative(rhs.Rank(), rc), NonNegative(rhs.Rank(), rb)
	lFree, rFree := FreeAxes(lhs.Rank(), lc, lb), FreeAxes(rhs.Rank(), rc, rb)
	dims := func(x *graph.Node, axes []int) (out []int, size int) {
		size = 1
		for _, a := range axes {
			out = append(out, x.Shape().Dim(a))
			size *= x.Shape().Dim(a)
		}
		return out, size
	}
	bDims, b := dims(lhs, lb)
	mDims, m := dims(lhs, lFree)
	_, k := dims(lhs, lc)
	nDims, n := dims(rhs, rFree)
	if b*m*n*k >= SmallThreshold || m == 0 || n == 0 || k == 0 {
		return graph.DotGeneral(lhs, lc, lb, rhs, rc, rb)
	}
	l := TransposeIfNeeded(lhs, slices.Concat(lb, lFree, lc))             // [batch..., M..., K...]
	r := TransposeIfNeeded(rhs, slices.Concat(rb, rc, rFree))             // [batch..., K..., N...]
	l = graph.Reshape(l, b, m, k)                                         // [B, M, K]
	r = graph.Reshape(r, b, k, n)                                         // [B, K, N]
	out := graph.DotGeneral(l, []int{2}, []int{0}, r, []int{1}, []int{0}) // [B, M, N]
	return graph.Reshape(out, slices.Concat(bDims, mDims, nDims)...)      // [batch..., M..., N...]
}

// FreeAxes lists, ascending, the axes of a rank-`rank` operand that are neither contracting nor
// batch.
func FreeAxes(rank int, contracting, batch []int) []int {
	var free []int
	for axis := range rank {
		if !slices.Contains(contracting, axis) && !slices.Contains(batch, axis) {
			free = append(free, axis)
		}
	}
	return free
}

// NonNegative returns axes with negative ones counted from the end of a rank-`rank` operand.
func NonNegative(rank int, axes []int) []int {
	out := make([]int, len(axes))
	for i, a := range axes {
		if a < 0 {
			a += rank
		}
		out[i] = a
	}
	return out
}

// TransposeIfNeeded returns x transposed so that the result's axis a is x's axis perm[a]; an
// identity permutation adds no node.
func TransposeIfNeeded(x *graph.Node, perm []int) *graph.Node {
	for i, p := range perm {
		if i != p {
			return graph.TransposeAllAxes(x, perm...)
		}
	}
	return x
}
