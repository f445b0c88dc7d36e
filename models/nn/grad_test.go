package nn

import (
	"fmt"
	"math"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"

	"github.com/loba-dev/loba/internal/gradfix"
	"github.com/loba-dev/loba/internal/gradfix/gradcheck"
	"github.com/loba-dev/loba/internal/testutil"
)

// Gradient checks of the layers on simplego, in float64: analytic gradients (with package
// gradfix's VJPs, installed by importing nn) against central finite differences, w.r.t. the inputs
// and every weight. Layers that compute statistics or scores in float32 get a larger step and
// the 2e-3 tolerance; pure float64 layers are checked to 1e-6.

const (
	tolFloat64 = 1e-6
	tolFloat32 = 2e-3 // layers with float32 internals
	epsFloat32 = 1e-3
)

// testBackend is the tests' simplego backend (unbounded parallelism; see models/backend for
// the deadlock that avoids).
func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	return testutil.Backend(t)
}

// newCtx returns a context whose weights are N(0, 0.5²) with a fixed seed.
func newCtx() *model.Scope {
	ctx := model.NewStore().RootScope()
	ctx.SetParam(model.ParamInitialSeed, int64(42))
	return ctx.WithInitializer(initializer.RandomNormalFn(ctx, 0.5))
}

func check(t *testing.T, f gradcheck.Func, inputs []*tensors.Tensor, opts gradcheck.Options) []gradcheck.Result {
	t.Helper()
	results := gradcheck.Check(t, testBackend(t), newCtx(), f, inputs, opts)
	for _, r := range results {
		t.Logf("%-24s rel. err %.2e (%d elements)", r.Name, r.RelErr, r.Checked)
	}
	return results
}

func TestGradLinear(t *testing.T) {
	for _, bias := range []bool{true, false} {
		t.Run(fmt.Sprintf("bias=%v", bias), func(t *testing.T) {
			results := check(t, func(ctx *model.Scope, xs []*Node) *Node {
				return Linear(ctx.At("proj"), xs[0], 4, bias)
			}, []*tensors.Tensor{gradcheck.Random(1, 2, 3, 5)}, gradcheck.Options{Tol: tolFloat64})
			if want := 2 + btoi(bias); len(results) != want {
				t.Errorf("checked %d tensors, want %d (input, weight[, bias])", len(results), want)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// convCases are the Conv2D configurations checked: 1×1 and 3×3, stride 1 and 2, symmetric and
// asymmetric padding, non-square inputs.
var convCases = []struct {
	name string
	x    []int // [B, C, H, W]
	cfg  Conv2DConfig
}{
	{"3x3-s1-p1", []int{2, 3, 5, 6}, Conv2DConfig{Out: 4, Kernel: 3, Stride: 1, Padding: [2][2]int{{1, 1}, {1, 1}}}},
	{"3x3-s2-p1", []int{2, 3, 7, 6}, Conv2DConfig{Out: 4, Kernel: 3, Stride: 2, Padding: [2][2]int{{1, 1}, {1, 1}}}},
	{"3x3-s2-asym", []int{1, 2, 6, 7}, Conv2DConfig{Out: 3, Kernel: 3, Stride: 2, Padding: [2][2]int{{0, 1}, {0, 1}}}},
	{"3x3-s1-asym", []int{1, 2, 5, 4}, Conv2DConfig{Out: 3, Kernel: 3, Stride: 1, Padding: [2][2]int{{2, 0}, {0, 1}}}},
	{"3x3-s2-nopad", []int{1, 2, 8, 5}, Conv2DConfig{Out: 3, Kernel: 3, Stride: 2}},
	{"1x1", []int{2, 3, 4, 5}, Conv2DConfig{Out: 4, Kernel: 1, Stride: 1}},
	{"1x1-s2-nobias", []int{1, 3, 5, 4}, Conv2DConfig{Out: 2, Kernel: 1, Stride: 2, NoBias: true}},
}

func TestConv2DIm2colMatchesNative(t *testing.T) {
	backend := testBackend(t)
	for i, c := range convCases {
		for _, dtype := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
			t.Run(fmt.Sprintf("%s/%s", c.name, dtype), func(t *testing.T) {
				var im2col bool
				outs := MustExecOnceN(backend, func(x, w *Node) (*Node, *Node) {
					im2col = useIm2col(x.Graph())
					x, w = ConvertDType(x, dtype), ConvertDType(w, dtype)
					return conv2DIm2col(x, w, c.cfg.Stride, c.cfg.Padding), conv2DNative(x, w, c.cfg.Stride, c.cfg.Padding)
				}, gradcheck.Random(uint64(10+i), c.x...), gradcheck.Random(uint64(20+i), c.cfg.Out, c.x[1], c.cfg.Kernel, c.cfg.Kernel))
				if !im2col {
					t.Error("useIm2col is false on simplego")
				}
				if !outs[0].Shape().Equal(outs[1].Shape()) {
					t.Fatalf("im2col shape %s, native %s", outs[0].Shape(), outs[1].Shape())
				}
				tol := 1e-12
				if dtype == dtypes.Float32 {
					tol = 1e-6
				}
				if err := testutil.RelErr(floats(outs[0]), floats(outs[1])); err > tol {
					t.Errorf("im2col vs native Convolve: relative error %.3g > %.3g", err, tol)
				}
			})
		}
	}
}

func floats(t *tensors.Tensor) []float64 {
	if t.DType() == dtypes.Float32 {
		f := tensors.MustCopyFlatData[float32](t)
		out := make([]float64, len(f))
		for i, x := range f {
			out[i] = float64(x)
		}
		return out
	}
	return tensors.MustCopyFlatData[float64](t)
}

// TestGradConv2D checks nn.Conv2DWith (im2col on simplego) w.r.t. input, weight and bias.
func TestGradConv2D(t *testing.T) {
	for i, c := range convCases {
		t.Run(c.name, func(t *testing.T) {
			results := check(t, func(ctx *model.Scope, xs []*Node) *Node {
				return Conv2DWith(ctx.At("conv"), xs[0], c.cfg)
			}, []*tensors.Tensor{gradcheck.Random(uint64(30+i), c.x...)}, gradcheck.Options{Tol: tolFloat64})
			if want := 3 - btoi(c.cfg.NoBias); len(results) != want {
				t.Errorf("checked %d tensors, want %d", len(results), want)
			}
		})
	}
}

// TestGradConv2DNative checks the native ConvGeneral path (XLA's) with gradfix's ConvGeneral VJP.
func TestGradConv2DNative(t *testing.T) {
	for i, c := range convCases {
		t.Run(c.name, func(t *testing.T) {
			check(t, func(_ *model.Scope, xs []*Node) *Node {
				return conv2DNative(xs[0], xs[1], c.cfg.Stride, c.cfg.Padding)
			}, []*tensors.Tensor{gradcheck.Random(uint64(40+i), c.x...), gradcheck.Random(uint64(50+i), c.cfg.Out, c.x[1], c.cfg.Kernel, c.cfg.Kernel)},
				gradcheck.Options{Tol: tolFloat64})
		})
	}
}

func TestGradGroupNorm(t *testing.T) {
	check(t, func(ctx *model.Scope, xs []*Node) *Node {
		return GroupNorm(ctx.At("norm"), xs[0], 2, 1e-5)
	}, []*tensors.Tensor{gradcheck.Random(60, 2, 4, 3, 5)}, gradcheck.Options{Eps: epsFloat32, Tol: tolFloat32})
}

func TestGradLayerNorm(t *testing.T) {
	check(t, func(ctx *model.Scope, xs []*Node) *Node {
		return LayerNorm(ctx.At("norm"), xs[0], 1e-5)
	}, []*tensors.Tensor{gradcheck.Random(61, 2, 3, 6)}, gradcheck.Options{Eps: epsFloat32, Tol: tolFloat32})
}

func TestGradScaledDotProductAttention(t *testing.T) {
	for _, causal := range []bool{false, true} {
		t.Run(fmt.Sprintf("causal=%v", causal), func(t *testing.T) {
			// Self-attention for causal (Sq = Sk), cross-attention with Sk ≠ Sq otherwise.
			sk := 5
			if causal {
				sk = 4
			}
			check(t, func(_ *model.Scope, xs []*Node) *Node {
				return ScaledDotProductAttention(xs[0], xs[1], xs[2], 2, causal)
			}, []*tensors.Tensor{gradcheck.Random(62, 2, 4, 6), gradcheck.Random(63, 2, sk, 6), gradcheck.Random(64, 2, sk, 6)},
				gradcheck.Options{Eps: epsFloat32, Tol: tolFloat32})
		})
	}
}

func TestGradGEGLU(t *testing.T) {
	check(t, func(ctx *model.Scope, xs []*Node) *Node {
		return GEGLU(ctx.At("ff"), xs[0], 3)
	}, []*tensors.Tensor{gradcheck.Random(65, 2, 3, 4)}, gradcheck.Options{Tol: tolFloat64})
}

// TestGradRsqrt checks an RMS-norm built on Rsqrt (stock gomlx v0.26.0 has no Rsqrt gradient).
func TestGradRsqrt(t *testing.T) {
	check(t, func(ctx *model.Scope, xs []*Node) *Node {
		x := xs[0]
		return Mul(x, Rsqrt(AddScalar(ReduceAndKeep(Square(x), ReduceMean, -1), 1e-6)))
	}, []*tensors.Tensor{gradcheck.Random(66, 3, 5)}, gradcheck.Options{Tol: tolFloat64})
}

// TestGradMatchesStock builds a block whose ops all have a stock v0.28.8 gradient on the Go backend
// (Linear, LayerNorm, attention — DotGeneral-heavy, no Slice or conv) and checks that gradfix's
// gradients equal the stock ones.
func TestGradMatchesStock(t *testing.T) {
	backend := testBackend(t)
	block := func(xs []*Node) *Node {
		x, wq := xs[0], xs[1]
		q := EinsumAxes(x, wq, [][2]int{{2, 1}}, nil) // [B, S, C], as Linear
		h := ScaledDotProductAttention(q, x, x, 2, true)
		return Add(h, Einsum("bsc,dc->bsd", h, wq))
	}
	inputs := []*tensors.Tensor{gradcheck.Random(70, 2, 4, 6), gradcheck.Random(71, 6, 6)}
	lossFixed, fixed, fixedOps := gradcheck.Gradients(backend, block, inputs, 0)
	gradfix.Uninstall()
	lossStock, stock, stockOps := gradcheck.Gradients(backend, block, inputs, 0)
	gradfix.Install()
	// 4 forward DotGenerals; both add 2 gemms per forward one.
	if stockOps[NodeTypeDotGeneral] != 12 || fixedOps[NodeTypeDotGeneral] != 12 {
		t.Errorf("DotGeneral nodes: stock %d, fixed %d (want 12 each)", stockOps[NodeTypeDotGeneral], fixedOps[NodeTypeDotGeneral])
	}
	if math.Abs(lossFixed-lossStock) > 1e-12*math.Abs(lossStock) {
		t.Errorf("loss differs: %v vs %v", lossFixed, lossStock)
	}
	for i := range fixed {
		if err := testutil.RelErr(fixed[i], stock[i]); err > 1e-6 {
			t.Errorf("input #%d: fixed vs stock gradient relative error %.3g", i, err)
		} else {
			t.Logf("input #%d: fixed vs stock gradient relative error %.3g", i, err)
		}
	}
}
