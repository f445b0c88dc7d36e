package gemm_test

import (
	"math"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	_ "github.com/loba-dev/loba/internal/gradfix" // the DotGeneral gradients LOBA uses
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/nn/gemm"
)

func random(seed int, dims ...int) *tensors.Tensor {
	t := tensors.FromShape(shapes.Make(dtypes.Float32, dims...))
	tensors.MutableFlatData(t, func(flat []float32) {
		for i := range flat {
			flat[i] = float32(math.Sin(float64(seed*1000+i) * 0.7)) // deterministic, in [-1, 1]
		}
	})
	return t
}

// TestDotGeneralMatchesGraph: gemm.DotGeneral gives graph.DotGeneral's values and output layout
// for batch, permuted, multi-axis and no-contraction products, small (re-laid out) and large
// (passed through).
func TestDotGeneralMatchesGraph(t *testing.T) {
	backend := testutil.Backend(t)
	cases := []struct {
		name           string
		lhs, rhs       []int
		lc, lb, rc, rb []int
	}{
		{"linear", []int{2, 3, 4}, []int{5, 4}, []int{2}, nil, []int{1}, nil},
		{"matmul-kn", []int{3, 4}, []int{4, 5}, []int{1}, nil, []int{0}, nil},
		{"batched", []int{2, 3, 4}, []int{2, 5, 4}, []int{2}, []int{0}, []int{2}, []int{0}},
		{"permuted", []int{4, 2, 3}, []int{5, 4, 2}, []int{0}, []int{1}, []int{1}, []int{2}},
		{"two-contracting-swapped", []int{2, 3, 4, 2}, []int{4, 2, 2, 5, 3}, []int{2, 0}, []int{3}, []int{0, 2}, []int{1}},
		{"attention-scores", []int{2, 5, 2, 3}, []int{2, 4, 2, 3}, []int{3}, []int{0, 2}, []int{3}, []int{0, 2}},
		{"negative-axes", []int{3, 4}, []int{5, 4}, []int{-1}, nil, []int{-1}, nil},
		{"outer-product", []int{3}, []int{5}, nil, nil, nil, nil},
		{"large-passthrough", []int{256, 128}, []int{256, 128}, []int{1}, nil, []int{1}, nil},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lhs, rhs := random(2*i, c.lhs...), random(2*i+1, c.rhs...)
			exec := graph.MustNewExec(backend, func(l, r *graph.Node) (*graph.Node, *graph.Node) {
				return gemm.DotGeneral(l, c.lc, c.lb, r, c.rc, c.rb), graph.DotGeneral(l, c.lc, c.lb, r, c.rc, c.rb)
			})
			outs := exec.MustExec(lhs, rhs)
			if !outs[0].Shape().Equal(outs[1].Shape()) {
				t.Fatalf("shape %s, graph.DotGeneral gives %s", outs[0].Shape(), outs[1].Shape())
			}
			got, want := tensors.MustCopyFlatData[float32](outs[0]), tensors.MustCopyFlatData[float32](outs[1])
			for j := range want {
				if d := math.Abs(float64(got[j] - want[j])); d > 1e-5*(1+math.Abs(float64(want[j]))) {
					t.Fatalf("element %d: %g, graph.DotGeneral gives %g", j, got[j], want[j])
				}
			}
		})
	}
}

// TestDotGeneralGradient: the gradients through gemm.DotGeneral (Transpose, Reshape and gradfix's
// DotGeneral VJP) equal those through graph.DotGeneral.
func TestDotGeneralGradient(t *testing.T) {
	backend := testutil.Backend(t)
	lhs, rhs := random(1, 2, 5, 2, 3), random(2, 2, 4, 2, 3)
	grads := func(f func(l, r *graph.Node) *graph.Node) []*tensors.Tensor {
		exec := graph.MustNewExec(backend, func(l, r *graph.Node) []*graph.Node {
			y := f(l, r)
			loss := graph.ReduceAllSum(graph.Mul(y, graph.Sin(y)))
			return graph.Gradient(loss, l, r)
		})
		return exec.MustExec(lhs, rhs)
	}
	lc, lb, rc, rb := []int{3}, []int{0, 2}, []int{3}, []int{0, 2}
	got := grads(func(l, r *graph.Node) *graph.Node { return gemm.DotGeneral(l, lc, lb, r, rc, rb) })
	want := grads(func(l, r *graph.Node) *graph.Node { return graph.DotGeneral(l, lc, lb, r, rc, rb) })
	for k := range want {
		g, w := tensors.MustCopyFlatData[float32](got[k]), tensors.MustCopyFlatData[float32](want[k])
		for j := range w {
			if d := math.Abs(float64(g[j] - w[j])); d > 1e-5*(1+math.Abs(float64(w[j]))) {
				t.Fatalf("operand %d element %d: %g, want %g", k, j, g[j], w[j])
			}
		}
	}
}
