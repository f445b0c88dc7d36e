// Package gradcheck compares the gradients GoMLX computes (reverse-mode, graph.Gradient) with
// central finite differences, for tests. The checked function may declare variables in a
// context (layers); their gradients are checked too.
//
// The scalar differentiated is L = Σ f(inputs)·R, with R a fixed pseudo-random tensor shaped like
// f's output, so that every output element contributes with a different weight. Inputs and
// variables should be float64 for tight tolerances; layers that compute in float32 internally
// need a larger Eps (1e-3) and tolerance.
package gradcheck

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Func builds the function checked; inputs are the graph parameters in the order given to Check.
type Func func(ctx *model.Scope, inputs []*Node) *Node

// Options tune Check; zero values take the defaults.
type Options struct {
	// Eps is the central-difference step (default 1e-6).
	Eps float64
	// Tol is the largest accepted relative error ||numeric − analytic||₂ / ||numeric||₂ over the
	// elements checked of one tensor (default 2e-3).
	Tol float64
	// MaxElements is the number of elements perturbed per tensor, chosen at random (default 40;
	// negative: all).
	MaxElements int
	// Seed seeds R and the choice of elements (default 1).
	Seed uint64
}

// Result is the outcome for one tensor (an input or a variable).
type Result struct {
	Name     string
	RelErr   float64
	Checked  int
	Analytic []float64 // full analytic gradient
}

// Check compiles f on backend, computes the analytic gradients of L w.r.t. every input and every
// trainable variable f declares in ctx, and compares a sample of their elements with central
// differences. It reports failures with t.Errorf and returns the per-tensor results.
func Check(t testing.TB, backend compute.Backend, ctx *model.Scope, f Func, inputs []*tensors.Tensor, opts Options) []Result {
	t.Helper()
	if opts.Eps == 0 {
		opts.Eps = 1e-6
	}
	if opts.Tol == 0 {
		opts.Tol = 2e-3
	}
	if opts.MaxElements == 0 {
		opts.MaxElements = 40
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	weighted := func(out *Node) *Node {
		r := rand.New(rand.NewPCG(opts.Seed, 7))
		w := make([]float64, out.Shape().Size())
		for i := range w {
			w[i] = r.NormFloat64()
		}
		wt := tensors.FromFlatDataAndDimensions(w, out.Shape().Dimensions...)
		return ReduceAllSum(Mul(ConvertDType(out, dtypes.Float64), Const(out.Graph(), wt)))
	}

	var vars []*model.Variable
	gradExec := model.MustNewExec(backend, ctx.Store(), func(_ *model.Scope, xs []*Node) []*Node {
		loss := weighted(f(ctx, xs))
		g := loss.Graph()
		vars = vars[:0]
		for v := range ctx.IterVariables() {
			if v.Trainable && v.InUseByGraph(g) {
				vars = append(vars, v)
			}
		}
		slices.SortFunc(vars, func(a, b *model.Variable) int {
			if a.Path() < b.Path() {
				return -1
			}
			return 1
		})
		targets := slices.Clone(xs)
		for _, v := range vars {
			targets = append(targets, v.NodeValue(g))
		}
		return append([]*Node{loss}, Gradient(loss, targets...)...)
	})
	defer gradExec.Finalize()
	args := make([]any, len(inputs))
	for i, x := range inputs {
		args[i] = x
	}
	outs := gradExec.MustExec(args...)
	grads := outs[1:]

	lossExec := model.MustNewExec(backend, ctx.Store(), func(_ *model.Scope, xs []*Node) *Node {
		return weighted(f(ctx, xs))
	})
	defer lossExec.Finalize()
	lossAt := func(xs []*tensors.Tensor) float64 {
		a := make([]any, len(xs))
		for i, x := range xs {
			a[i] = x
		}
		return tensors.MustCopyFlatData[float64](lossExec.MustExec(a...)[0])[0]
	}

	// Each target: its current values, and a setter used to perturb it.
	type target struct {
		name   string
		values []float64
		dims   []int
		dtype  dtypes.DType
		set    func(*tensors.Tensor)
	}
	current := slices.Clone(inputs)
	var targets []target
	for i, x := range inputs {
		targets = append(targets, target{name: fmt.Sprintf("input #%d", i), values: toFloat64(x), dims: x.Shape().Dimensions, dtype: x.DType(),
			set: func(t *tensors.Tensor) { current[i] = t }})
	}
	for _, v := range vars {
		val := v.MustValue()
		targets = append(targets, target{name: v.Path(), values: toFloat64(val), dims: val.Shape().Dimensions, dtype: val.DType(),
			set: func(t *tensors.Tensor) {
				if err := v.SetValue(t); err != nil {
					panic(err)
				}
			}})
	}

	r := rand.New(rand.NewPCG(opts.Seed, 11))
	results := make([]Result, len(targets))
	for ti, tg := range targets {
		analytic := toFloat64(grads[ti])
		idx := make([]int, len(tg.values))
		for i := range idx {
			idx[i] = i
		}
		if opts.MaxElements > 0 && len(idx) > opts.MaxElements {
			r.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
			idx = idx[:opts.MaxElements]
		}
		var num2, diff2 float64
		values := slices.Clone(tg.values)
		for _, i := range idx {
			orig := values[i]
			values[i] = orig + opts.Eps
			tg.set(fromFloat64(values, tg.dims, tg.dtype))
			plus := lossAt(current)
			values[i] = orig - opts.Eps
			tg.set(fromFloat64(values, tg.dims, tg.dtype))
			minus := lossAt(current)
			values[i] = orig
			numeric := (plus - minus) / (2 * opts.Eps)
			num2 += numeric * numeric
			diff2 += (numeric - analytic[i]) * (numeric - analytic[i])
		}
		tg.set(fromFloat64(values, tg.dims, tg.dtype))
		rel := math.Sqrt(diff2)
		if num2 > 0 {
			rel = math.Sqrt(diff2 / num2)
		}
		results[ti] = Result{Name: tg.name, RelErr: rel, Checked: len(idx), Analytic: analytic}
		if !(rel <= opts.Tol) {
			t.Errorf("gradient w.r.t. %s %v: relative error %.3g > %.3g (%d elements checked, ||numeric||=%.4g)",
				tg.name, tg.dims, rel, opts.Tol, len(idx), math.Sqrt(num2))
		}
	}
	return results
}

// Gradients compiles f on backend and returns L, its analytic gradients w.r.t. the inputs, as
// float64, and the number of nodes of each type in the graph — for comparing two gradient
// implementations.
func Gradients(backend compute.Backend, f func(inputs []*Node) *Node, inputs []*tensors.Tensor, seed uint64) (loss float64, grads [][]float64, ops map[NodeType]int) {
	if seed == 0 {
		seed = 1
	}
	exec := MustNewExec(backend, func(xs []*Node) []*Node {
		out := f(xs)
		r := rand.New(rand.NewPCG(seed, 7))
		w := make([]float64, out.Shape().Size())
		for i := range w {
			w[i] = r.NormFloat64()
		}
		wt := tensors.FromFlatDataAndDimensions(w, out.Shape().Dimensions...)
		l := ReduceAllSum(Mul(ConvertDType(out, dtypes.Float64), Const(out.Graph(), wt)))
		outs := append([]*Node{l}, Gradient(l, xs...)...)
		ops = make(map[NodeType]int)
		for _, node := range l.Graph().Nodes() {
			ops[node.Type()]++
		}
		return outs
	})
	defer exec.Finalize()
	args := make([]any, len(inputs))
	for i, x := range inputs {
		args[i] = x
	}
	outs := exec.MustExec(args...)
	loss = toFloat64(outs[0])[0]
	for _, g := range outs[1:] {
		grads = append(grads, toFloat64(g))
	}
	return
}

// Random returns a float64 tensor of the given dimensions with N(0,1) values (seeded).
func Random(seed uint64, dims ...int) *tensors.Tensor {
	r := rand.New(rand.NewPCG(seed, 3))
	n := 1
	for _, d := range dims {
		n *= d
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return tensors.FromFlatDataAndDimensions(v, dims...)
}

func toFloat64(t *tensors.Tensor) []float64 {
	switch t.DType() {
	case dtypes.Float64:
		return tensors.MustCopyFlatData[float64](t)
	case dtypes.Float32:
		f := tensors.MustCopyFlatData[float32](t)
		out := make([]float64, len(f))
		for i, x := range f {
			out[i] = float64(x)
		}
		return out
	}
	panic(fmt.Sprintf("gradcheck: unsupported dtype %s", t.DType()))
}

func fromFloat64(values []float64, dims []int, dtype dtypes.DType) *tensors.Tensor {
	switch dtype {
	case dtypes.Float64:
		return tensors.FromFlatDataAndDimensions(slices.Clone(values), dims...)
	case dtypes.Float32:
		f := make([]float32, len(values))
		for i, x := range values {
			f[i] = float32(x)
		}
		return tensors.FromFlatDataAndDimensions(f, dims...)
	}
	panic(fmt.Sprintf("gradcheck: unsupported dtype %s", dtype))
}
