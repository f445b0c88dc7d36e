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
	opts.setDefaults()
	analytic, vars := analyticGradients(backend, ctx, f, inputs, opts.Seed)
	lossExec := model.MustNewExec(backend, ctx.Store(), func(_ *model.Scope, xs []*Node) *Node {
		return weightedSum(f(ctx, xs), opts.Seed)
	})
	defer lossExec.Finalize()
	current := slices.Clone(inputs)
	loss := func() float64 { return tensors.MustCopyFlatData[float64](lossExec.MustExec(asArgs(current)...)[0])[0] }
	targets := newTargets(inputs, vars, current)

	r := rand.New(rand.NewPCG(opts.Seed, 11))
	results := make([]Result, len(targets))
	for ti, tg := range targets {
		idx := sampleElements(r, len(tg.values), opts.MaxElements)
		rel, numNorm := tg.relativeError(analytic[ti], idx, opts.Eps, loss)
		results[ti] = Result{Name: tg.name, RelErr: rel, Checked: len(idx), Analytic: analytic[ti]}
		if !(rel <= opts.Tol) {
			t.Errorf("gradient w.r.t. %s %v: relative error %.3g > %.3g (%d elements checked, ||numeric||=%.4g)",
				tg.name, tg.dims, rel, opts.Tol, len(idx), numNorm)
		}
	}
	return results
}

func (opts *Options) setDefaults() {
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
}

// weightedSum is L = Σ out·R, in float64, with R ~ N(0, 1) drawn from seed.
func weightedSum(out *Node, seed uint64) *Node {
	r := rand.New(rand.NewPCG(seed, 7))
	w := make([]float64, out.Shape().Size())
	for i := range w {
		w[i] = r.NormFloat64()
	}
	wt := tensors.FromFlatDataAndDimensions(w, out.Shape().Dimensions...)
	return ReduceAllSum(Mul(ConvertDType(out, dtypes.Float64), Const(out.Graph(), wt)))
}

// analyticGradients runs graph.Gradient of L w.r.t. the inputs and then the trainable variables f
// uses (sorted by path), which it returns with the gradients, as float64.
func analyticGradients(backend compute.Backend, ctx *model.Scope, f Func, inputs []*tensors.Tensor, seed uint64) (
	grads [][]float64, vars []*model.Variable) {
	exec := model.MustNewExec(backend, ctx.Store(), func(_ *model.Scope, xs []*Node) []*Node {
		loss := weightedSum(f(ctx, xs), seed)
		g := loss.Graph()
		vars = trainableVariables(ctx, g)
		targets := slices.Clone(xs)
		for _, v := range vars {
			targets = append(targets, v.NodeValue(g))
		}
		return append([]*Node{loss}, Gradient(loss, targets...)...)
	})
	defer exec.Finalize()
	for _, g := range exec.MustExec(asArgs(inputs)...)[1:] {
		grads = append(grads, toFloat64(g))
	}
	return grads, vars
}

// trainableVariables are the trainable variables of ctx graph g uses, sorted by path.
func trainableVariables(ctx *model.Scope, g *Graph) []*model.Variable {
	var vars []*model.Variable
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
	return vars
}

// target is a tensor Check perturbs (an input or a variable): its current values, and a setter.
type target struct {
	name   string
	values []float64
	dims   []int
	dtype  dtypes.DType
	set    func(*tensors.Tensor)
}

// newTargets are the inputs (whose setters write into current) and then the variables, as targets.
func newTargets(inputs []*tensors.Tensor, vars []*model.Variable, current []*tensors.Tensor) []target {
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
	return targets
}

// sampleElements is the indices of the elements of an n-element tensor to check: all of them, or
// maxElements (when positive and fewer) chosen with r.
func sampleElements(r *rand.Rand, n, maxElements int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	if maxElements > 0 && len(idx) > maxElements {
		r.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
		idx = idx[:maxElements]
	}
	return idx
}

// relativeError compares the analytic gradient with central differences of loss (±eps) at the
// elements idx, restoring the target's values after; it returns ||numeric − analytic||₂ over
// ||numeric||₂ (the absolute error when the latter is 0) and ||numeric||₂.
func (tg target) relativeError(analytic []float64, idx []int, eps float64, loss func() float64) (rel, numNorm float64) {
	var num2, diff2 float64
	values := slices.Clone(tg.values)
	for _, i := range idx {
		orig := values[i]
		values[i] = orig + eps
		tg.set(fromFloat64(values, tg.dims, tg.dtype))
		plus := loss()
		values[i] = orig - eps
		tg.set(fromFloat64(values, tg.dims, tg.dtype))
		minus := loss()
		values[i] = orig
		numeric := (plus - minus) / (2 * eps)
		num2 += numeric * numeric
		diff2 += (numeric - analytic[i]) * (numeric - analytic[i])
	}
	tg.set(fromFloat64(values, tg.dims, tg.dtype))
	rel = math.Sqrt(diff2)
	if num2 > 0 {
		rel = math.Sqrt(diff2 / num2)
	}
	return rel, math.Sqrt(num2)
}

// Gradients compiles f on backend and returns L, its analytic gradients w.r.t. the inputs, as
// float64, and the number of nodes of each type in the graph — for comparing two gradient
// implementations.
func Gradients(backend compute.Backend, f func(inputs []*Node) *Node, inputs []*tensors.Tensor, seed uint64) (loss float64, grads [][]float64, ops map[NodeType]int) {
	if seed == 0 {
		seed = 1
	}
	exec := MustNewExec(backend, func(xs []*Node) []*Node {
		l := weightedSum(f(xs), seed)
		outs := append([]*Node{l}, Gradient(l, xs...)...)
		ops = make(map[NodeType]int)
		for _, node := range l.Graph().Nodes() {
			ops[node.Type()]++
		}
		return outs
	})
	defer exec.Finalize()
	outs := exec.MustExec(asArgs(inputs)...)
	loss = toFloat64(outs[0])[0]
	for _, g := range outs[1:] {
		grads = append(grads, toFloat64(g))
	}
	return
}

// asArgs is xs as the arguments of an Exec.
func asArgs(xs []*tensors.Tensor) []any {
	args := make([]any, len(xs))
	for i, x := range xs {
		args[i] = x
	}
	return args
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
