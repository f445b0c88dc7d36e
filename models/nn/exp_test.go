package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/loba-dev/loba/internal/testutil"
)

// TestExpLogisticAccuracy checks the Go backend's float32 Exp and Logistic — computed by LOBA's
// patched copy of gomlx/compute (internal/third_party/compute/LOBA_PATCH.md: pure Go, or AVX-512
// with GOEXPERIMENT=simd) — against math.Exp, special values included. The sweep's length is not
// a multiple of 16, so the vector kernels' partial last block is checked too.
func TestExpLogisticAccuracy(t *testing.T) {
	backend := testutil.Backend(t)
	var xs []float32
	for x := -110.0; x <= 90; x += 0.0137 {
		xs = append(xs, float32(x))
	}
	xs = append(xs, 0, float32(math.Copysign(0, -1)), float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.MaxFloat32, -math.MaxFloat32, 1e-30, -1e-30)
	in := tensors.FromShape(shapes.Make(dtypes.Float32, len(xs)))
	tensors.MutableFlatData(in, func(flat []float32) { copy(flat, xs) })
	exec := MustNewExec(backend, func(x *Node) (*Node, *Node) { return Exp(x), Sigmoid(x) })
	outs := exec.MustExec(in)
	gotExp, gotSig := tensors.MustCopyFlatData[float32](outs[0]), tensors.MustCopyFlatData[float32](outs[1])
	check := func(name string, x, got float32, want float64) {
		w := float32(want)
		switch {
		case math.IsNaN(float64(w)):
			if !math.IsNaN(float64(got)) {
				t.Errorf("%s(%g) = %g, want NaN", name, x, got)
			}
		case math.IsInf(float64(w), 0) || w == 0:
			if got != w {
				t.Errorf("%s(%g) = %g, want %g", name, x, got, w)
			}
		default:
			// Relative error within 4 float32 ulps (subnormal results: absolute 2 ulps of the
			// smallest normal).
			tol := 4 * float64(math.Nextafter32(float32(math.Abs(float64(w))), float32(math.Inf(1)))-float32(math.Abs(float64(w))))
			if tol < 2*float64(math.SmallestNonzeroFloat32) {
				tol = 2 * float64(math.SmallestNonzeroFloat32)
			}
			if d := math.Abs(float64(got) - want); d > tol {
				t.Errorf("%s(%g) = %g, want %g (|diff| %.3g > %.3g)", name, x, got, want, d, tol)
			}
		}
	}
	for i, x := range xs {
		check("Exp", x, gotExp[i], math.Exp(float64(x)))
		check("Logistic", x, gotSig[i], 1/(1+math.Exp(-float64(x))))
	}
}

// TestErfAccuracy checks the Go backend's float32 Erf (the patched rational approximation, GELU's
// erf) against math.Erf: within 5e-7 absolute, NaN and ±Inf included.
func TestErfAccuracy(t *testing.T) {
	backend := testutil.Backend(t)
	var xs []float32
	for x := -7.0; x <= 7; x += 0.000731 {
		xs = append(xs, float32(x))
	}
	xs = append(xs, 0, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, 1e-30)
	in := tensors.FromShape(shapes.Make(dtypes.Float32, len(xs)))
	tensors.MutableFlatData(in, func(flat []float32) { copy(flat, xs) })
	got := tensors.MustCopyFlatData[float32](MustNewExec(backend, Erf).MustExec(in)[0])
	for i, x := range xs {
		want := math.Erf(float64(x))
		switch {
		case math.IsNaN(want):
			if !math.IsNaN(float64(got[i])) {
				t.Errorf("Erf(%g) = %g, want NaN", x, got[i])
			}
		case math.Abs(float64(got[i])-want) > 5e-7:
			t.Errorf("Erf(%g) = %.9g, want %.9g", x, got[i], want)
		}
	}
}

// TestSoftmaxAccuracy checks the Go backend's float32 softmax over the last axis (the patched
// row kernel, rows spread over workers) and over a middle axis against a float64 reference, for
// row lengths around the 16-lane blocks, large logits, and a NaN that must stay NaN.
func TestSoftmaxAccuracy(t *testing.T) {
	backend := testutil.Backend(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, dims := range [][]int{{3, 1}, {2, 7}, {4, 16}, {3, 77}, {600, 256}, {5, 300}} {
		rows, n := dims[0], dims[1]
		t.Run(fmt.Sprintf("%dx%d", rows, n), func(t *testing.T) {
			x := make([]float32, rows*n)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 8)
			}
			x[0] = 90 // exp(90) overflows float32: the max must be subtracted first
			if n > 1 {
				x[n+1] = -200
			}
			in := tensors.FromFlatDataAndDimensions(x, rows, n)
			outs := MustNewExec(backend, func(v *Node) (*Node, *Node) {
				return Softmax(v, -1), Transpose(Softmax(Transpose(v, 0, 1), 0), 0, 1)
			}).MustExec(in)
			for k, out := range outs {
				got := tensors.MustCopyFlatData[float32](out)
				for r := range rows {
					row := x[r*n : (r+1)*n]
					m := math.Inf(-1)
					for _, v := range row {
						m = math.Max(m, float64(v))
					}
					// The reference takes x−max rounded to float32, as the kernel does: that rounding,
					// not the exponential, bounds the relative error of small outputs.
					shifted := func(v float32) float64 { return float64(v - float32(m)) }
					var sum float64
					for _, v := range row {
						sum += math.Exp(shifted(v))
					}
					for j, v := range row {
						want := math.Exp(shifted(v)) / sum
						if d := math.Abs(float64(got[r*n+j]) - want); d > 2e-6*want+1e-30 {
							t.Fatalf("output %d, row %d, col %d: got %g, want %g", k, r, j, got[r*n+j], want)
						}
					}
				}
			}
		})
	}
	t.Run("NaN", func(t *testing.T) {
		x := make([]float32, 40)
		x[33] = float32(math.NaN())
		out := MustNewExec(backend, func(v *Node) *Node { return Softmax(v, -1) }).MustExec(tensors.FromFlatDataAndDimensions(x, 1, 40))[0]
		if got := tensors.MustCopyFlatData[float32](out); !math.IsNaN(float64(got[33])) {
			t.Errorf("softmax of a row holding NaN: got %g at the NaN, want NaN", got[33])
		}
	})
}
