package nn

import (
	"math"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/loba-dev/loba/internal/testutil"
)

// TestExpLogisticAccuracy checks the Go backend's float32 Exp and Logistic — computed in pure Go by
// LOBA's patched copy of gomlx/compute (internal/third_party/compute/LOBA_PATCH.md) — against
// math.Exp, special values included.
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
