package train

import (
	"math"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/internal/testutil"
)

// optimParam is one test variable: its scope, initial value, lr scale and the quadratic loss
// L = Σ ½·a·p² − b·p whose gradient a·p − b drives it.
type optimParam struct {
	scope   []string
	name    string
	dims    []int
	init    []float64
	a, b    []float64
	lrScale float64
}

func testParams() []optimParam {
	return []optimParam{
		{scope: []string{"unet", "x", "lora_A"}, name: "weight", dims: []int{2, 3},
			init: []float64{0.5, -1.2, 2.0, 0.3, -0.7, 1.1}, a: []float64{1, 2, 0.5, 3, 1.5, 0.8},
			b: []float64{0.2, -0.4, 0.1, 0.7, -0.3, 0.05}, lrScale: 1},
		{scope: []string{"unet", "x", "lora_B"}, name: "weight", dims: []int{4},
			init: []float64{-0.25, 0.75, 1.5, -2}, a: []float64{0.6, 1.2, 2.5, 0.9},
			b: []float64{0.5, 0.1, -0.2, 0.3}, lrScale: 2.5},
		{scope: nil, name: "root_var", dims: []int{1}, init: []float64{1.3}, a: []float64{0.7}, b: []float64{-0.1}, lrScale: 0.5},
	}
}

func toF32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

func toF64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func scopedCtx(ctx *model.Scope, scope []string) *model.Scope {
	for _, s := range scope {
		ctx = ctx.At("%s", s)
	}
	return ctx
}

// newOptimCtx creates the test variables in a fresh context.
func newOptimCtx(ps []optimParam) (*model.Scope, []Param) {
	ctx := model.NewStore().RootScope()
	params := make([]Param, len(ps))
	for i, p := range ps {
		v := scopedCtx(ctx, p.scope).VariableWithValue(p.name, tensors.FromFlatDataAndDimensions(toF32(p.init), p.dims...))
		params[i] = Param{Var: v, LRScale: p.lrScale}
	}
	return ctx, params
}

// stepExec builds the train step: quadratic-loss gradients, optional clipping, optimizer update.
// Inputs: lr (float32 scalar), step (int32 scalar). Output: the gradient norm.
func stepExec(t *testing.T, ctx *model.Scope, params []Param, ps []optimParam, opt Optimizer, maxNorm float64) *model.Exec {
	t.Helper()
	exec, err := model.NewExec(testutil.Backend(t), ctx.Store(), func(_ *model.Scope, lr, step *Node) *Node {
		g := lr.Graph()
		grads := make([]*Node, len(params))
		for i, p := range params {
			v := p.Var.NodeValue(g)
			a := Const(g, tensors.FromFlatDataAndDimensions(toF32(ps[i].a), ps[i].dims...))
			b := Const(g, tensors.FromFlatDataAndDimensions(toF32(ps[i].b), ps[i].dims...))
			grads[i] = Sub(Mul(a, v), b)
		}
		var norm *Node
		if maxNorm > 0 {
			grads, norm = ClipGradNorm(grads, maxNorm)
		} else {
			norm = ScalarZero(g, lr.DType())
		}
		opt.Update(ctx, params, grads, lr, step)
		return norm
	})
	if err != nil {
		t.Fatal(err)
	}
	return exec
}

func testLR(k int) float64 { return 0.02 * (1 + 0.1*float64(k%5)) } // varies per step: lr is a graph input

// runGraph runs steps first..last (1-based) and returns the variables' values.
func runGraph(t *testing.T, exec *model.Exec, params []Param, first, last int) [][]float64 {
	t.Helper()
	for k := first; k <= last; k++ {
		if _, err := exec.Exec(float32(testLR(k)), int32(k)); err != nil {
			t.Fatalf("step %d: %v", k, err)
		}
	}
	out := make([][]float64, len(params))
	for i, p := range params {
		out[i] = toF64(tensors.MustCopyFlatData[float32](p.Var.MustValue()))
	}
	return out
}

// refOptimizer is a float64 re-implementation of the torch algorithms, one parameter tensor at a time.
type refOptimizer func(cfg OptimizerConfig, p, g, m, v []float64, lr float64, t int)

// refAdamW follows the torch.optim.AdamW documentation ("Algorithm"):
//
//	θ_t ← θ_{t−1} − γλθ_{t−1}
//	m_t ← β1 m_{t−1} + (1 − β1) g_t
//	v_t ← β2 v_{t−1} + (1 − β2) g_t²
//	m̂_t ← m_t/(1 − β1^t);  v̂_t ← v_t/(1 − β2^t)
//	θ_t ← θ_t − γ m̂_t/(√v̂_t + ε)
func refAdamW(cfg OptimizerConfig, p, g, m, v []float64, lr float64, t int) {
	for i := range p {
		p[i] -= lr * cfg.WeightDecay * p[i]
		m[i] = cfg.Beta1*m[i] + (1-cfg.Beta1)*g[i]
		v[i] = cfg.Beta2*v[i] + (1-cfg.Beta2)*g[i]*g[i]
		mh := m[i] / (1 - math.Pow(cfg.Beta1, float64(t)))
		vh := v[i] / (1 - math.Pow(cfg.Beta2, float64(t)))
		p[i] -= lr * mh / (math.Sqrt(vh) + cfg.Eps)
	}
}

// refLion follows lion-pytorch update_fn:
//
//	p ← p·(1 − lr·wd); u ← sign(β1·m + (1 − β1)·g); p ← p − lr·u; m ← β2·m + (1 − β2)·g
func refLion(cfg OptimizerConfig, p, g, m, _ []float64, lr float64, _ int) {
	for i := range p {
		p[i] *= 1 - lr*cfg.WeightDecay
		c := cfg.Beta1*m[i] + (1-cfg.Beta1)*g[i]
		u := 0.0
		if c > 0 {
			u = 1
		} else if c < 0 {
			u = -1
		}
		p[i] -= lr * u
		m[i] = cfg.Beta2*m[i] + (1-cfg.Beta2)*g[i]
	}
}

// refSGD follows the torch.optim.SGD documentation (dampening τ = 0):
//
//	g ← g + λθ; b_t ← μ b_{t−1} + g (b_1 = g); g ← g + μ b_t if nesterov else b_t; θ ← θ − γ g
func refSGD(cfg OptimizerConfig, p, g, buf, _ []float64, lr float64, t int) {
	for i := range p {
		gi := g[i] + cfg.WeightDecay*p[i]
		if cfg.Momentum != 0 {
			if t == 1 {
				buf[i] = gi
			} else {
				buf[i] = cfg.Momentum*buf[i] + gi
			}
			if cfg.Nesterov {
				gi += cfg.Momentum * buf[i]
			} else {
				gi = buf[i]
			}
		}
		p[i] -= lr * gi
	}
}

// runRef runs the reference for steps 1..K with the same gradients (and clipping) as the graph.
func runRef(ref refOptimizer, cfg OptimizerConfig, ps []optimParam, steps int, maxNorm float64) [][]float64 {
	p := make([][]float64, len(ps))
	m := make([][]float64, len(ps))
	v := make([][]float64, len(ps))
	for i, q := range ps {
		p[i] = append([]float64(nil), q.init...)
		m[i] = make([]float64, len(q.init))
		v[i] = make([]float64, len(q.init))
	}
	for k := 1; k <= steps; k++ {
		grads := make([][]float64, len(ps))
		var ss float64
		for i, q := range ps {
			grads[i] = make([]float64, len(q.init))
			for j := range q.init {
				grads[i][j] = q.a[j]*p[i][j] - q.b[j]
				ss += grads[i][j] * grads[i][j]
			}
		}
		if maxNorm > 0 { // torch.nn.utils.clip_grad_norm_
			coef := min(1, maxNorm/(math.Sqrt(ss)+1e-6))
			for i := range grads {
				for j := range grads[i] {
					grads[i][j] *= coef
				}
			}
		}
		for i, q := range ps {
			ref(cfg, p[i], grads[i], m[i], v[i], testLR(k)*q.lrScale, k)
		}
	}
	return p
}

func mustOptimizer(t *testing.T, cfg OptimizerConfig) Optimizer {
	t.Helper()
	opt, err := NewOptimizer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return opt
}

func TestOptimizersMatchTorchReference(t *testing.T) {
	adamw, _ := DefaultOptimizerConfig("adamw")
	adamwNoWD := adamw
	adamwNoWD.WeightDecay = 0
	lion, _ := DefaultOptimizerConfig("lion")
	lionWD := lion
	lionWD.WeightDecay = 0.1
	sgdPlain := OptimizerConfig{Name: "sgd"}
	sgdMom := OptimizerConfig{Name: "sgd", Momentum: 0.9, WeightDecay: 0.01}
	sgdNesterov := OptimizerConfig{Name: "sgd", Momentum: 0.8, Nesterov: true, WeightDecay: 0.05}
	cases := []struct {
		name    string
		cfg     OptimizerConfig
		ref     refOptimizer
		maxNorm float64
	}{
		{"adamw", adamw, refAdamW, 0},
		{"adamw_no_wd", adamwNoWD, refAdamW, 0},
		{"adamw_clipped", adamw, refAdamW, 0.5},
		{"lion", lion, refLion, 0},
		{"lion_wd", lionWD, refLion, 0},
		{"sgd", sgdPlain, refSGD, 0},
		{"sgd_momentum", sgdMom, refSGD, 0},
		{"sgd_nesterov_clipped", sgdNesterov, refSGD, 1.0},
	}
	const steps = 12
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := testParams()
			ctx, params := newOptimCtx(ps)
			got := runGraph(t, stepExec(t, ctx, params, ps, mustOptimizer(t, c.cfg), c.maxNorm), params, 1, steps)
			want := runRef(c.ref, c.cfg, ps, steps, c.maxNorm)
			for i := range ps {
				if e := testutil.RelErr(got[i], want[i]); e > 2e-6 {
					t.Errorf("param %d (%s): rel err %.3g\n got  %v\n want %v", i, ps[i].name, e, got[i], want[i])
				}
				if testutil.RelErr(got[i], ps[i].init) < 1e-3 {
					t.Errorf("param %d did not move", i)
				}
			}
		})
	}
}

// TestOptimAdamWWeightDecayShrinks guards the gomlx trap (GOMLX.md §1: "adamw" without decay): with
// zero gradients, AdamW must still shrink every weight by (1 − lr·scale·wd) per step.
func TestOptimAdamWWeightDecayShrinks(t *testing.T) {
	ps := testParams()
	for i := range ps {
		ps[i].a = make([]float64, len(ps[i].init))
		ps[i].b = make([]float64, len(ps[i].init))
	}
	cfg, _ := DefaultOptimizerConfig("adamw")
	ctx, params := newOptimCtx(ps)
	const steps = 5
	got := runGraph(t, stepExec(t, ctx, params, ps, mustOptimizer(t, cfg), 0), params, 1, steps)
	for i, q := range ps {
		for j, p0 := range q.init {
			want := p0
			for k := 1; k <= steps; k++ {
				want *= 1 - testLR(k)*q.lrScale*cfg.WeightDecay
			}
			if math.Abs(got[i][j]-want) > 1e-6*math.Abs(p0) || math.Abs(got[i][j]) >= math.Abs(p0) {
				t.Errorf("param %d[%d]: got %v, want %v (from %v)", i, j, got[i][j], want, p0)
			}
		}
	}
}

// TestOptimLRScaleDoublesStep: two identical variables with LRScale 1 and 2 move by Δ and 2Δ in the
// first step (no weight decay).
func TestOptimLRScaleDoublesStep(t *testing.T) {
	base := optimParam{name: "w", dims: []int{3}, init: []float64{1, -2, 0.5}, a: []float64{1, 0.5, 2}, b: []float64{0.3, 0.1, -0.4}}
	for _, name := range []string{"adamw", "lion", "sgd"} {
		t.Run(name, func(t *testing.T) {
			p1, p2 := base, base
			p1.scope, p1.lrScale = []string{"one"}, 1
			p2.scope, p2.lrScale = []string{"two"}, 2
			ps := []optimParam{p1, p2}
			cfg, _ := DefaultOptimizerConfig(name)
			cfg.WeightDecay = 0
			ctx, params := newOptimCtx(ps)
			got := runGraph(t, stepExec(t, ctx, params, ps, mustOptimizer(t, cfg), 0), params, 1, 1)
			for j, p0 := range base.init {
				d1, d2 := got[0][j]-p0, got[1][j]-p0
				if d1 == 0 || math.Abs(d2-2*d1) > 5e-7 { // float32 values near 1: ulp ≈ 1.2e-7
					t.Errorf("[%d]: Δ(scale 1) = %v, Δ(scale 2) = %v", j, d1, d2)
				}
			}
		})
	}
}

// TestOptimStateCheckpointResume: the state lives in /optimizer/<scope>/<name>/{m,v,...}; copying
// params and state into a fresh context after K1 steps and running K2 more gives bit-identical values.
func TestOptimStateCheckpointResume(t *testing.T) {
	for _, cfg := range []OptimizerConfig{
		{Name: "adamw", Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01},
		{Name: "lion", Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.1},
		{Name: "sgd", Momentum: 0.9},
	} {
		t.Run(cfg.Name, func(t *testing.T) {
			ps := testParams()
			opt := mustOptimizer(t, cfg)
			ctx, params := newOptimCtx(ps)
			exec := stepExec(t, ctx, params, ps, opt, 0)
			runGraph(t, exec, params, 1, 4)

			state := opt.StateVariables(ctx)
			wantNames := map[string][]string{"adamw": {"m", "v"}, "lion": {"m"}, "sgd": {"momentum_buffer"}}[cfg.Name]
			if len(state) != len(ps)*len(wantNames) {
				t.Fatalf("%d state variables, want %d", len(state), len(ps)*len(wantNames))
			}
			var names []string
			for _, v := range state {
				names = append(names, v.Path())
				if v.Trainable {
					t.Errorf("%s is trainable", v.Path())
				}
			}
			joined := strings.Join(names, " ")
			for _, want := range []string{"/optimizer/unet/x/lora_A/weight/" + wantNames[0], "/optimizer/root_var/" + wantNames[0]} {
				if !strings.Contains(joined, want) {
					t.Errorf("state %v lacks %s", names, want)
				}
			}

			// "Checkpoint": copy every variable's value into a fresh context.
			saved := map[string]*tensors.Tensor{}
			for v := range ctx.IterVariables() {
				saved[v.Path()] = tensors.FromFlatDataAndDimensions(tensors.MustCopyFlatData[float32](v.MustValue()), v.Shape().Dimensions...)
			}
			want := runGraph(t, exec, params, 5, 9)

			ctx2, params2 := newOptimCtx(ps)
			for name, val := range saved {
				scope, vname := model.SplitPath(name)
				if v := ctx2.Store().GetVariable(model.JoinPath(scope, vname)); v != nil {
					v.MustSetValue(val)
				} else {
					ctx2.Store().Scope(scope).VariableWithValue(vname, val).SetTrainable(false)
				}
			}
			got := runGraph(t, stepExec(t, ctx2, params2, ps, mustOptimizer(t, cfg), 0), params2, 5, 9)
			for i := range got {
				for j := range got[i] {
					if got[i][j] != want[i][j] {
						t.Fatalf("param %d[%d]: resumed %v, uninterrupted %v", i, j, got[i][j], want[i][j])
					}
				}
			}
		})
	}
}

func TestOptimClipGradNorm(t *testing.T) {
	g1 := []float32{3, 0, -4, 1}
	g2 := []float32{2, -2}
	total := math.Sqrt(9 + 16 + 1 + 4 + 4)
	for _, maxNorm := range []float64{1, 2.5, 100, math.Inf(1)} {
		out := MustExecOnceN(testutil.Backend(t), func(a, b *Node) []*Node {
			c, n := ClipGradNorm([]*Node{a, nil, b}, maxNorm)
			if c[1] != nil {
				t.Error("nil gradient not kept nil")
			}
			return []*Node{c[0], c[2], n}
		}, g1, g2)
		coef := min(1, maxNorm/(total+1e-6))
		if n := float64(tensors.ToScalar[float32](out[2])); math.Abs(n-total) > 1e-6*total {
			t.Errorf("maxNorm %v: total norm %v, want %v", maxNorm, n, total)
		}
		for k, g := range [][]float32{g1, g2} {
			got := tensors.MustCopyFlatData[float32](out[k])
			for j := range g {
				if want := float64(g[j]) * coef; math.Abs(float64(got[j])-want) > 1e-6 {
					t.Errorf("maxNorm %v: grad %d[%d] = %v, want %v", maxNorm, k, j, got[j], want)
				}
			}
		}
	}
}

func TestOptimConfigErrors(t *testing.T) {
	if _, err := NewOptimizer(OptimizerConfig{Name: "adam"}); err == nil ||
		!strings.Contains(err.Error(), `"adam"`) || !strings.Contains(err.Error(), "adamw, lion, sgd") {
		t.Errorf("unknown optimizer: %v", err)
	}
	if _, err := DefaultOptimizerConfig("rmsprop"); err == nil || !strings.Contains(err.Error(), "rmsprop") {
		t.Errorf("unknown default: %v", err)
	}
	bad := []OptimizerConfig{
		{Name: "adamw", Beta1: 0.9, Beta2: 0.999},                 // eps 0
		{Name: "adamw", Beta1: 1, Beta2: 0.999, Eps: 1e-8},        // beta1 1
		{Name: "lion", Beta1: 0.9, Beta2: 0.99, WeightDecay: -1},  // negative decay
		{Name: "sgd", Nesterov: true},                             // nesterov without momentum
		{Name: "lion", Beta1: 0.9, Beta2: 0.99, Momentum: 0.9},    // SGD setting on lion
		{Name: "sgd", Momentum: 1.5},                              // momentum > 1
		{Name: "adamw", Beta1: 0.9, Beta2: math.NaN(), Eps: 1e-8}, // NaN
		{Name: "adamw", Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: math.Inf(1)},
	}
	for _, c := range bad {
		if _, err := NewOptimizer(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	for _, name := range validOptimizers {
		cfg, err := DefaultOptimizerConfig(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewOptimizer(cfg); err != nil {
			t.Errorf("default %s: %v", name, err)
		}
	}
}
