package gradfix_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/internal/gradfix"
	"github.com/loba-dev/loba/internal/gradfix/gradcheck"
	"github.com/loba-dev/loba/internal/testutil"
)

// testBackend is the tests' simplego backend (unbounded parallelism; see models/backend for
// the deadlock that avoids).
func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	return testutil.Backend(t)
}

// checkFn runs gradcheck.Check on a pure function of the inputs.
func checkFn(t *testing.T, f func(xs []*Node) *Node, inputs []*tensors.Tensor, opts gradcheck.Options) {
	t.Helper()
	gradcheck.Check(t, testBackend(t), model.NewStore().RootScope(), func(_ *model.Scope, xs []*Node) *Node { return f(xs) }, inputs, opts)
}

// withStock runs fn with gomlx's stock VJPs registered.
func withStock(fn func()) {
	gradfix.Uninstall()
	defer gradfix.Install()
	fn()
}

func maxRelDiff(a, b []float64) float64 {
	var num, den float64
	for i := range a {
		num += (a[i] - b[i]) * (a[i] - b[i])
		den += b[i] * b[i]
	}
	if den == 0 {
		return num
	}
	return num / den
}

func TestInstallUninstall(t *testing.T) {
	if !gradfix.Installed() {
		t.Fatal("gradfix not installed by init")
	}
	fixedDot := fmt.Sprintf("%p", VJPRegistration[NodeTypeDotGeneral])
	withStock(func() {
		if fmt.Sprintf("%p", VJPRegistration[NodeTypeDotGeneral]) == fixedDot {
			t.Error("Uninstall kept the fixed DotGeneral VJP")
		}
		if _, ok := VJPRegistration[NodeTypeRsqrt]; ok {
			t.Error("Uninstall kept an Rsqrt VJP, stock gomlx v0.28.8 has none")
		}
	})
	for _, nt := range gradfix.NodeTypes() {
		if VJPRegistration[nt] == nil {
			t.Errorf("%s: no VJP after Install", nt)
		}
	}
}

type dotCase struct {
	name           string
	lhs, rhs       []int
	lc, lb, rc, rb []int
}

var dotCases = []dotCase{
	{"matmul", []int{3, 4}, []int{4, 5}, []int{1}, nil, []int{0}, nil},
	{"linear", []int{2, 3, 4}, []int{5, 4}, []int{2}, nil, []int{1}, nil},
	{"batched", []int{2, 3, 4}, []int{2, 5, 4}, []int{2}, []int{0}, []int{2}, []int{0}},
	{"permuted", []int{4, 2, 3}, []int{5, 4, 2}, []int{0}, []int{1}, []int{1}, []int{2}},
	{"two-contracting-swapped", []int{2, 3, 4, 2}, []int{4, 2, 2, 5, 3}, []int{2, 0}, []int{3}, []int{0, 2}, []int{1}},
	{"two-batch-swapped", []int{2, 3, 4}, []int{3, 4, 2, 5}, []int{2}, []int{1, 0}, []int{1}, []int{0, 2}},
	{"attention-scores", []int{2, 5, 2, 3}, []int{2, 4, 2, 3}, []int{3}, []int{0, 2}, []int{3}, []int{0, 2}},
	{"inner-product", []int{4}, []int{4}, []int{0}, nil, []int{0}, nil},
	{"outer-product", []int{3}, []int{5}, nil, nil, nil, nil},
}

func (c dotCase) fn(xs []*Node) *Node { return DotGeneral(xs[0], c.lc, c.lb, xs[1], c.rc, c.rb) }

// stockFails lists the DotGeneral cases whose stock v0.28.8 gradient cannot be built (see
// TestStockVJPs).
var stockFails = map[string]bool{"two-contracting-swapped": true}

func TestDotGeneralMatchesStock(t *testing.T) {
	backend := testBackend(t)
	for i, c := range dotCases {
		if stockFails[c.name] {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			inputs := []*tensors.Tensor{gradcheck.Random(uint64(10+i), c.lhs...), gradcheck.Random(uint64(20+i), c.rhs...)}
			_, fixed, fixedOps := gradcheck.Gradients(backend, c.fn, inputs, 0)
			var stock [][]float64
			var stockOps map[NodeType]int
			withStock(func() { _, stock, stockOps = gradcheck.Gradients(backend, c.fn, inputs, 0) })
			// Fixed: the forward DotGeneral plus one gemm per operand, always (stock falls back
			// to Mul+ReduceSum where the other operand has no free axes, e.g. an inner product).
			if fixedOps[NodeTypeDotGeneral] != 3 {
				t.Errorf("DotGeneral nodes: fixed %d (want 3), stock %d", fixedOps[NodeTypeDotGeneral], stockOps[NodeTypeDotGeneral])
			}
			for k := range fixed {
				if d := maxRelDiff(fixed[k], stock[k]); d > 1e-24 {
					t.Errorf("operand %d: fixed and stock gradients differ (squared rel. diff %.3g)", k, d)
				}
			}
		})
	}
}

// TestStockVJPs records why each replaced gradient is still replaced on gomlx v0.28.8, and that
// the one no longer replaced (Slice) is right: when upstream fixes one, this test fails and the
// replacement can go.
func TestStockVJPs(t *testing.T) {
	backend := testBackend(t)
	buildErr := func(fn func(xs []*Node) *Node, inputs []*tensors.Tensor) (err error) {
		withStock(func() {
			err = exceptions.TryCatch[error](func() { gradcheck.Gradients(backend, fn, inputs, 0) })
		})
		return err
	}
	t.Run("DotGeneral-unsorted-contracting-axes", func(t *testing.T) {
		c := dotCases[slices.IndexFunc(dotCases, func(c dotCase) bool { return stockFails[c.name] })]
		err := buildErr(c.fn, []*tensors.Tensor{gradcheck.Random(1, c.lhs...), gradcheck.Random(2, c.rhs...)})
		if err == nil {
			t.Fatalf("stock DotGeneral gradient of %s builds now: compare it and drop gradfix's DotGeneral VJP if it matches", c.name)
		}
		t.Logf("stock: %.160s", err)
	})
	t.Run("ConvGeneral", func(t *testing.T) {
		err := buildErr(func(xs []*Node) *Node {
			return ConvGeneral(xs[0], xs[1], nchwAxes, []int{1, 1}, [][2]int{{1, 1}, {1, 1}}, []int{1, 1}, []int{1, 1}, 1, 1)
		}, []*tensors.Tensor{gradcheck.Random(3, 2, 3, 5, 6), gradcheck.Random(4, 4, 3, 3, 3)})
		if err == nil {
			t.Fatal("stock ConvGeneral gradient builds now: check it with TestConvGeneral's cases and drop gradfix's if they pass")
		}
		t.Logf("stock: %.160s", err)
	})
	t.Run("Rsqrt", func(t *testing.T) {
		withStock(func() {
			if VJPRegistration[NodeTypeRsqrt] != nil {
				t.Error("gomlx has an Rsqrt gradient now: check it with TestRsqrt and drop gradfix's if it passes")
			}
		})
	})
	t.Run("Slice-stock-is-right", func(t *testing.T) {
		if VJPRegistration[NodeTypeSlice] == nil {
			t.Fatal("no Slice gradient registered")
		}
		TestSlice(t) // with gomlx's own Slice VJP (gradfix does not replace it)
	})
}

func TestDotGeneralFiniteDifferences(t *testing.T) {
	for i, c := range dotCases {
		t.Run(c.name, func(t *testing.T) {
			checkFn(t, c.fn, []*tensors.Tensor{gradcheck.Random(uint64(30+i), c.lhs...), gradcheck.Random(uint64(40+i), c.rhs...)},
				gradcheck.Options{Tol: 1e-7})
		})
	}
}

func TestRsqrt(t *testing.T) {
	fn := func(xs []*Node) *Node { return Rsqrt(AddScalar(Square(xs[0]), 0.5)) }
	checkFn(t, fn, []*tensors.Tensor{gradcheck.Random(70, 3, 5)}, gradcheck.Options{Tol: 1e-7})
}

func TestSlice(t *testing.T) {
	cases := []struct {
		name string
		dims []int
		spec []SliceAxisSpec
	}{
		{"start-end", []int{5, 6}, []SliceAxisSpec{AxisRange(1, 4), AxisRange(2)}},
		{"stride2", []int{7, 6}, []SliceAxisSpec{AxisRange().Stride(2), AxisRange(1, 6).Stride(2)}},
		{"stride3-offset", []int{2, 10}, []SliceAxisSpec{AxisRange(), AxisRange(2, 9).Stride(3)}},
		{"single", []int{4, 3, 5}, []SliceAxisSpec{AxisElem(2), AxisRange(), AxisRange(4)}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fn := func(xs []*Node) *Node { return Slice(xs[0], c.spec...) }
			checkFn(t, fn, []*tensors.Tensor{gradcheck.Random(uint64(80+i), c.dims...)}, gradcheck.Options{Tol: 1e-7, MaxElements: -1})
		})
	}
}

// nchwAxes is the convolution layout nn uses: NCHW input and output, OIHW kernel.
var nchwAxes = ConvolveAxesConfig{InputBatch: 0, InputChannels: 1, InputSpatial: []int{2, 3},
	KernelOutputChannels: 0, KernelInputChannels: 1, KernelSpatial: []int{2, 3},
	OutputBatch: 0, OutputChannels: 1, OutputSpatial: []int{2, 3}}

func TestConvGeneral(t *testing.T) {
	nchw := nchwAxes
	nhwc := ConvolveAxesConfig{InputBatch: 0, InputChannels: 3, InputSpatial: []int{1, 2},
		KernelSpatial: []int{0, 1}, KernelInputChannels: 2, KernelOutputChannels: 3,
		OutputBatch: 0, OutputChannels: 3, OutputSpatial: []int{1, 2}}
	// Input NCHW, kernel HWIO, output NHWC: three different layouts.
	mixed := ConvolveAxesConfig{InputBatch: 0, InputChannels: 1, InputSpatial: []int{2, 3},
		KernelSpatial: []int{0, 1}, KernelInputChannels: 2, KernelOutputChannels: 3,
		OutputBatch: 0, OutputChannels: 3, OutputSpatial: []int{1, 2}}
	type convCase struct {
		name       string
		axes       ConvolveAxesConfig
		x, k       []int
		strides    []int
		paddings   [][2]int
		kDilations []int
	}
	cases := []convCase{
		{"nchw-3x3-s1-p1", nchw, []int{2, 3, 5, 6}, []int{4, 3, 3, 3}, []int{1, 1}, [][2]int{{1, 1}, {1, 1}}, []int{1, 1}},
		{"nchw-3x3-s2-p1", nchw, []int{2, 3, 7, 6}, []int{4, 3, 3, 3}, []int{2, 2}, [][2]int{{1, 1}, {1, 1}}, []int{1, 1}},
		{"nchw-3x3-s2-asym", nchw, []int{1, 2, 6, 7}, []int{3, 2, 3, 3}, []int{2, 2}, [][2]int{{0, 1}, {1, 0}}, []int{1, 1}},
		{"nchw-3x3-s2-nopad-remainder", nchw, []int{1, 2, 8, 6}, []int{3, 2, 3, 3}, []int{2, 2}, [][2]int{{0, 0}, {0, 0}}, []int{1, 1}},
		{"nchw-3x3-s1-asym", nchw, []int{1, 2, 5, 4}, []int{3, 2, 3, 3}, []int{1, 1}, [][2]int{{2, 0}, {0, 1}}, []int{1, 1}},
		{"nchw-1x1", nchw, []int{2, 3, 4, 5}, []int{4, 3, 1, 1}, []int{1, 1}, [][2]int{{0, 0}, {0, 0}}, []int{1, 1}},
		{"nchw-1x1-pad1-s2", nchw, []int{1, 3, 4, 5}, []int{2, 3, 1, 1}, []int{2, 2}, [][2]int{{1, 1}, {1, 0}}, []int{1, 1}},
		{"nchw-3x2-s1x2", nchw, []int{1, 2, 6, 7}, []int{3, 2, 3, 2}, []int{1, 2}, [][2]int{{1, 1}, {0, 1}}, []int{1, 1}},
		{"nchw-dilation2", nchw, []int{1, 2, 7, 7}, []int{2, 2, 3, 3}, []int{1, 1}, [][2]int{{2, 2}, {1, 1}}, []int{2, 2}},
		{"nhwc-3x3-s2", nhwc, []int{2, 6, 5, 3}, []int{3, 3, 3, 4}, []int{2, 2}, [][2]int{{1, 1}, {1, 1}}, []int{1, 1}},
		{"mixed-layouts-s2", mixed, []int{1, 3, 6, 5}, []int{3, 3, 3, 2}, []int{2, 1}, [][2]int{{1, 0}, {1, 1}}, []int{1, 1}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fn := func(xs []*Node) *Node {
				return ConvGeneral(xs[0], xs[1], c.axes, c.strides, c.paddings, []int{1, 1}, c.kDilations, 1, 1)
			}
			checkFn(t, fn, []*tensors.Tensor{gradcheck.Random(uint64(90+i), c.x...), gradcheck.Random(uint64(100+i), c.k...)},
				gradcheck.Options{Tol: 1e-7})
		})
	}
	t.Run("1d", func(t *testing.T) {
		axes := ConvolveAxesConfig{InputBatch: 0, InputChannels: 1, InputSpatial: []int{2},
			KernelOutputChannels: 0, KernelInputChannels: 1, KernelSpatial: []int{2},
			OutputBatch: 0, OutputChannels: 1, OutputSpatial: []int{2}}
		fn := func(xs []*Node) *Node {
			return ConvGeneral(xs[0], xs[1], axes, []int{2}, [][2]int{{2, 1}}, []int{1}, []int{1}, 1, 1)
		}
		checkFn(t, fn, []*tensors.Tensor{gradcheck.Random(120, 2, 3, 9), gradcheck.Random(121, 2, 3, 4)}, gradcheck.Options{Tol: 1e-7})
	})
}
