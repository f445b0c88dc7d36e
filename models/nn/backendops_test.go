package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/loba-dev/loba/internal/testutil"
)

// The tests below check the float32 fast paths LOBA's patched Go backend adds
// (internal/third_party/compute/internal/gobackend/ops/loba_fastpaths.go: broadcasting
// Add/Sub/Mul/Div, ReduceSum/ReduceMax, unit-stride Slice, Transpose) against plain index
// arithmetic here, over random shapes, broadcast patterns, axes and permutations.

// refIndex is the row-major flat index of idx in dims.
func refIndex(dims, idx []int) int {
	f := 0
	for a, d := range dims {
		f = f*d + idx[a]
	}
	return f
}

// refEach calls fn with every index of dims in row-major order.
func refEach(dims []int, fn func(idx []int)) {
	idx := make([]int, len(dims))
	n := 1
	for _, d := range dims {
		n *= d
	}
	for range n {
		fn(idx)
		for a := len(dims) - 1; a >= 0; a-- {
			idx[a]++
			if idx[a] < dims[a] {
				break
			}
			idx[a] = 0
		}
	}
}

func randDims(rng *rand.Rand, rank int) []int {
	dims := make([]int, rank)
	for a := range dims {
		dims[a] = 1 + rng.IntN(6)
	}
	return dims
}

func randTensor(rng *rand.Rand, dims []int) (*tensors.Tensor, []float32) {
	n := 1
	for _, d := range dims {
		n *= d
	}
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64()) + 3 // away from 0: Div stays finite
	}
	return tensors.FromFlatDataAndDimensions(x, dims...), x
}

func requireClose(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s: value %d = %g, want %g", what, i, got[i], want[i])
		}
	}
}

func TestBackendBroadcastBinary(t *testing.T) {
	backend := testutil.Backend(t)
	rng := rand.New(rand.NewPCG(3, 4))
	ops := []struct {
		name string
		g    func(a, b *Node) *Node
		f    func(a, b float32) float32
	}{
		{"Add", Add, func(a, b float32) float32 { return a + b }},
		{"Sub", Sub, func(a, b float32) float32 { return a - b }},
		{"Mul", Mul, func(a, b float32) float32 { return a * b }},
		{"Div", Div, func(a, b float32) float32 { return a / b }},
	}
	for c := range 40 {
		out := randDims(rng, 1+rng.IntN(5))
		ld, rd := slices.Clone(out), slices.Clone(out)
		for a := range out { // each axis: both full, or one side broadcast
			switch rng.IntN(3) {
			case 1:
				ld[a] = 1
			case 2:
				rd[a] = 1
			}
		}
		if c%10 == 9 { // a scalar operand
			rd = nil
		}
		lt, lx := randTensor(rng, ld)
		rt, rx := randTensor(rng, rd)
		for _, op := range ops {
			t.Run(fmt.Sprintf("%s%v%v", op.name, ld, rd), func(t *testing.T) {
				got := tensors.MustCopyFlatData[float32](MustNewExec(backend, op.g).MustExec(lt, rt)[0])
				var want []float32
				outDims := slices.Clone(ld)
				for a := range outDims {
					if rd != nil {
						outDims[a] = max(ld[a], rd[a])
					}
				}
				refEach(outDims, func(idx []int) {
					li, ri := make([]int, len(ld)), make([]int, len(rd))
					for a := range idx {
						li[a] = min(idx[a], ld[a]-1)
						if rd != nil {
							ri[a] = min(idx[a], rd[a]-1)
						}
					}
					want = append(want, op.f(lx[refIndex(ld, li)], rx[refIndex(rd, ri)]))
				})
				requireClose(t, op.name, got, want)
			})
		}
	}
}

func TestBackendReduce(t *testing.T) {
	backend := testutil.Backend(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for range 40 {
		dims := randDims(rng, 1+rng.IntN(5))
		var axes []int
		for a := range dims {
			if rng.IntN(2) == 0 {
				axes = append(axes, a)
			}
		}
		if len(axes) == 0 {
			axes = []int{rng.IntN(len(dims))}
		}
		xt, x := randTensor(rng, dims)
		t.Run(fmt.Sprintf("%v%v", dims, axes), func(t *testing.T) {
			outs := MustNewExec(backend, func(v *Node) (*Node, *Node) {
				return ReduceSum(v, axes...), ReduceMax(v, axes...)
			}).MustExec(xt)
			var outDims []int
			for a, d := range dims {
				if !slices.Contains(axes, a) {
					outDims = append(outDims, d)
				}
			}
			n := 1
			for _, d := range outDims {
				n *= d
			}
			sum, mx := make([]float32, n), make([]float32, n)
			for i := range mx {
				mx[i] = float32(math.Inf(-1))
			}
			refEach(dims, func(idx []int) {
				var oi []int
				for a := range idx {
					if !slices.Contains(axes, a) {
						oi = append(oi, idx[a])
					}
				}
				o := refIndex(outDims, oi)
				v := x[refIndex(dims, idx)]
				sum[o] += v
				mx[o] = max(mx[o], v)
			})
			requireClose(t, "ReduceSum", tensors.MustCopyFlatData[float32](outs[0]), sum)
			requireClose(t, "ReduceMax", tensors.MustCopyFlatData[float32](outs[1]), mx)
		})
	}
	t.Run("NaN", func(t *testing.T) {
		x := []float32{1, float32(math.NaN()), 3, 4, 5, 6}
		out := MustNewExec(backend, func(v *Node) *Node { return ReduceMax(v, 1) }).MustExec(tensors.FromFlatDataAndDimensions(x, 2, 3))[0]
		got := tensors.MustCopyFlatData[float32](out)
		if !math.IsNaN(float64(got[0])) || got[1] != 6 {
			t.Errorf("ReduceMax over [[1 NaN 3] [4 5 6]] = %v, want [NaN 6]", got)
		}
	})
}

func TestBackendSliceTranspose(t *testing.T) {
	backend := testutil.Backend(t)
	rng := rand.New(rand.NewPCG(7, 8))
	// The UNets' layouts first (conv weights, NCHW ↔ NHWC, a 2-D transpose with both sides
	// above the 16-wide special cases), then random shapes and permutations.
	fixed := []struct{ dims, perm []int }{
		{[]int{64, 32, 3, 3}, []int{2, 3, 1, 0}}, {[]int{2, 16, 16, 32}, []int{0, 3, 1, 2}},
		{[]int{2, 32, 16, 16}, []int{0, 2, 3, 1}}, {[]int{40, 50}, []int{1, 0}}, {[]int{3, 17, 33}, []int{0, 2, 1}},
	}
	for c := range 45 {
		dims := randDims(rng, 1+rng.IntN(5))
		perm := rng.Perm(len(dims))
		if c < len(fixed) {
			dims, perm = fixed[c].dims, fixed[c].perm
		}
		xt, x := randTensor(rng, dims)
		starts, limits := make([]int, len(dims)), make([]int, len(dims))
		for a, d := range dims {
			starts[a] = rng.IntN(d)
			limits[a] = starts[a] + 1 + rng.IntN(d-starts[a])
		}
		t.Run(fmt.Sprintf("%v%v", dims, perm), func(t *testing.T) {
			outs := MustNewExec(backend, func(v *Node) (*Node, *Node) {
				specs := make([]SliceAxisSpec, len(dims))
				for a := range dims {
					specs[a] = AxisRange(starts[a], limits[a])
				}
				return TransposeAllAxes(v, perm...), Slice(v, specs...)
			}).MustExec(xt)
			tDims := make([]int, len(dims))
			for a, p := range perm {
				tDims[a] = dims[p]
			}
			var wantT []float32
			refEach(tDims, func(idx []int) {
				in := make([]int, len(dims))
				for a, p := range perm {
					in[p] = idx[a]
				}
				wantT = append(wantT, x[refIndex(dims, in)])
			})
			requireClose(t, "Transpose", tensors.MustCopyFlatData[float32](outs[0]), wantT)
			sDims := make([]int, len(dims))
			for a := range dims {
				sDims[a] = limits[a] - starts[a]
			}
			var wantS []float32
			refEach(sDims, func(idx []int) {
				in := make([]int, len(dims))
				for a := range idx {
					in[a] = starts[a] + idx[a]
				}
				wantS = append(wantS, x[refIndex(dims, in)])
			})
			requireClose(t, "Slice", tensors.MustCopyFlatData[float32](outs[1]), wantS)
		})
	}
}
