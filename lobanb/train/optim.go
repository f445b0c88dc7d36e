package train

// Optimizers: ports torch.optim.AdamW and torch.optim.SGD (PyTorch 2.x single-tensor algorithms, the
// "Algorithm" boxes of their documentation) and Lion (lucidrains/lion-pytorch, Chen et al. 2023,
// "Symbolic Discovery of Optimization Algorithms", Algorithm 2 with decoupled weight decay), plus
// torch.nn.utils.clip_grad_norm_.
//
// They are written here rather than taken from gomlx's optimizers package because the trainer needs
// per-variable learning-rate multipliers, a learning rate computed on the host (so the train-step graph
// is never rebuilt when it changes), an explicit step count and exact, checkpointable state. All the
// arithmetic is float32 on tensors; scalar factors (bias corrections, lr·wd) are computed in float64 in
// the graph and rounded once, as torch computes them as Python floats.

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// optimizerScope is the root scope of every optimizer state variable: the state of variable
// "/unet/a/lora_A" "weight" lives in scope "/optimizer/unet/a/lora_A/weight" (variables "m", "v",
// "momentum_buffer"), non-trainable, float32, with the parameter's shape.
const optimizerScope = "optimizer"

// Optimizer names accepted by NewOptimizer.
const (
	OptimizerAdamW = "adamw"
	OptimizerLion  = "lion"
	OptimizerSGD   = "sgd"
)

var validOptimizers = []string{OptimizerAdamW, OptimizerLion, OptimizerSGD}

// OptimizerConfig configures NewOptimizer. The fields are used literally: a zero field means zero, not
// "default". Start from DefaultOptimizerConfig(name) to get the reference defaults and override fields.
type OptimizerConfig struct {
	// Name is one of adamw, lion, sgd.
	Name string `json:"name" yaml:"name"`
	// Beta1, Beta2: AdamW moment decays (torch betas); Lion interpolation (β1) and moment decay (β2).
	Beta1 float64 `json:"beta1" yaml:"beta1"`
	Beta2 float64 `json:"beta2" yaml:"beta2"`
	// Eps is AdamW's denominator epsilon (added after the bias-corrected square root, as torch).
	Eps float64 `json:"eps" yaml:"eps"`
	// WeightDecay: decoupled (p ← p·(1 − lr·wd)) for AdamW and Lion; coupled (g ← g + wd·p) for SGD.
	WeightDecay float64 `json:"weight_decay" yaml:"weight_decay"`
	// Momentum and Nesterov are SGD's (torch semantics, dampening 0).
	Momentum float64 `json:"momentum" yaml:"momentum"`
	Nesterov bool    `json:"nesterov" yaml:"nesterov"`
}

// DefaultOptimizerConfig returns the reference defaults: adamw as torch.optim.AdamW (betas (0.9,
// 0.999), eps 1e-8, weight_decay 1e-2); lion as lion-pytorch (betas (0.9, 0.99), weight_decay 0);
// sgd as torch.optim.SGD (momentum 0, weight_decay 0, no Nesterov).
func DefaultOptimizerConfig(name string) (OptimizerConfig, error) {
	switch name {
	case OptimizerAdamW:
		return OptimizerConfig{Name: name, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2}, nil
	case OptimizerLion:
		return OptimizerConfig{Name: name, Beta1: 0.9, Beta2: 0.99}, nil
	case OptimizerSGD:
		return OptimizerConfig{Name: name}, nil
	}
	return OptimizerConfig{}, unknownOptimizer(name)
}

func unknownOptimizer(name string) error {
	return fmt.Errorf("train: unknown optimizer %q, valid optimizers: %s", name, strings.Join(validOptimizers, ", "))
}

// Validate checks the fields the named optimizer uses; the error names the bad key and value.
func (c OptimizerConfig) Validate() error {
	if !slices.Contains(validOptimizers, c.Name) {
		return unknownOptimizer(c.Name)
	}
	bad := func(key string, v float64, want string) error {
		return fmt.Errorf("train: optimizer %s: %s = %v, want %s", c.Name, key, v, want)
	}
	if c.WeightDecay < 0 || math.IsNaN(c.WeightDecay) || math.IsInf(c.WeightDecay, 0) {
		return bad("weight_decay", c.WeightDecay, "a finite value >= 0")
	}
	switch c.Name {
	case OptimizerAdamW, OptimizerLion:
		if !(c.Beta1 >= 0 && c.Beta1 < 1) {
			return bad("beta1", c.Beta1, "0 <= beta1 < 1")
		}
		if !(c.Beta2 >= 0 && c.Beta2 < 1) {
			return bad("beta2", c.Beta2, "0 <= beta2 < 1")
		}
		if c.Name == OptimizerAdamW && !(c.Eps > 0) {
			return bad("eps", c.Eps, "eps > 0 (torch default 1e-8; start from DefaultOptimizerConfig)")
		}
		if c.Momentum != 0 || c.Nesterov {
			return fmt.Errorf("train: optimizer %s: momentum/nesterov are SGD settings, got momentum = %v, nesterov = %v",
				c.Name, c.Momentum, c.Nesterov)
		}
	case OptimizerSGD:
		if !(c.Momentum >= 0 && c.Momentum <= 1) {
			return bad("momentum", c.Momentum, "0 <= momentum <= 1")
		}
		if c.Nesterov && c.Momentum == 0 {
			return fmt.Errorf("train: optimizer sgd: nesterov = true requires momentum > 0 (as torch.optim.SGD)")
		}
	}
	return nil
}

// Param is a trainable variable and its learning-rate multiplier: the variable is updated with
// lr·LRScale (weight decay included, as a torch param group with its own lr). LRScale must be > 0;
// leave a variable out of the list to freeze it.
type Param struct {
	Var     *model.Variable
	LRScale float64
}

// Optimizer holds its state (moments, momentum buffers) in ctx under scope "/optimizer/<variable scope
// path>/<variable name>", as non-trainable float32 variables, so checkpoints save and restore it exactly.
// The step count is not part of it: the caller owns the step and passes it in.
type Optimizer interface {
	// Update builds, inside the train-step graph, the update of every param from its gradient
	// (grads[i] is the gradient of params[i]; same shape). lr is a scalar graph input (the host
	// computes the schedule, so the graph is never rebuilt) and step the 1-based count of updates
	// including this one (AdamW's bias correction; any numeric dtype, scalar). It calls
	// Var.SetValueGraph for params and state. It may be called several times in one graph with
	// disjoint params (e.g. param groups with their own lr node). Panics on bad input.
	Update(ctx *model.Scope, params []Param, grads []*Node, lr, step *Node)
	// StateVariables lists the optimizer's state variables in ctx, sorted by scope and name.
	StateVariables(ctx *model.Scope) []*model.Variable
}

// NewOptimizer returns the optimizer cfg names, after cfg.Validate().
func NewOptimizer(cfg OptimizerConfig) (Optimizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Name {
	case OptimizerAdamW:
		return &adamW{cfg: cfg}, nil
	case OptimizerLion:
		return &lion{cfg: cfg}, nil
	default:
		return &sgd{cfg: cfg}, nil
	}
}

// stateVariables lists every variable under the "/optimizer" scope of ctx, sorted by scope and name.
func stateVariables(ctx *model.Scope) []*model.Variable {
	var vars []*model.Variable
	for v := range ctx.Store().Scope(model.ScopeSeparator + optimizerScope).IterVariables() {
		vars = append(vars, v)
	}
	slices.SortFunc(vars, func(a, b *model.Variable) int { return strings.Compare(a.Path(), b.Path()) })
	return vars
}

// stateVariable returns (creating it, zero-initialised, on first use) the float32 state variable
// `name` of trainable variable v.
func stateVariable(ctx *model.Scope, v *model.Variable, name string) *model.Variable {
	scope := model.ScopeSeparator + optimizerScope
	if v.Scope() != model.RootScopePath {
		scope += v.Scope()
	}
	scope += model.ScopeSeparator + v.Name()
	shape := shapes.Make(dtypes.Float32, v.Shape().Dimensions...)
	return ctx.Store().Scope(scope).WithInitializer(initializer.Zero).
		VariableWithShape(name, shape).SetTrainable(false)
}

// paramUpdate is what every optimizer does per parameter: it receives the float32 value, gradient and
// the per-param learning rate as a float64 scalar node, and returns the new float32 value.
type paramUpdate func(i int, p Param, value, grad, lr64 *Node) *Node

// applyUpdates checks the inputs and runs fn for every param, writing the result back in the
// variable's dtype.
func applyUpdates(name string, params []Param, grads []*Node, lr *Node, fn paramUpdate) {
	if len(params) != len(grads) {
		exceptions.Panicf("train: %s.Update: %d params but %d gradients", name, len(params), len(grads))
	}
	if len(params) == 0 {
		exceptions.Panicf("train: %s.Update: no params", name)
	}
	if lr == nil || !lr.IsScalar() {
		exceptions.Panicf("train: %s.Update: lr must be a scalar node, got %v", name, lr)
	}
	g := lr.Graph()
	lr64 := ConvertDType(lr, dtypes.Float64)
	for i, p := range params {
		if p.Var == nil {
			exceptions.Panicf("train: %s.Update: params[%d] has no variable", name, i)
		}
		if !(p.LRScale > 0) {
			exceptions.Panicf("train: %s.Update: %s: LRScale = %v, want > 0 (leave a variable out to freeze it)",
				name, p.Var.Path(), p.LRScale)
		}
		grad := grads[i]
		if grad == nil {
			exceptions.Panicf("train: %s.Update: no gradient for %s", name, p.Var.Path())
		}
		if !slices.Equal(grad.Shape().Dimensions, p.Var.Shape().Dimensions) {
			exceptions.Panicf("train: %s.Update: gradient of %s has shape %s, variable %s",
				name, p.Var.Path(), grad.Shape(), p.Var.Shape())
		}
		value := ConvertDType(p.Var.NodeValue(g), dtypes.Float32)
		grad = ConvertDType(grad, dtypes.Float32)
		plr := lr64
		if p.LRScale != 1 {
			plr = MulScalar(lr64, p.LRScale)
		}
		updated := fn(i, p, value, grad, plr)
		p.Var.SetNodeValue(ConvertDType(updated, p.Var.DType()))
	}
}

// f32 rounds a float64 scalar node to float32.
func f32(x *Node) *Node { return ConvertDType(x, dtypes.Float32) }

// adamW ports torch.optim.AdamW (amsgrad=False, maximize=False):
//
//	θ ← θ·(1 − γλ)
//	m ← β1·m + (1 − β1)·g            (as torch: m.lerp_(g, 1 − β1))
//	v ← β2·v + (1 − β2)·g²
//	θ ← θ − (γ / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + ε)
type adamW struct{ cfg OptimizerConfig }

func (o *adamW) StateVariables(ctx *model.Scope) []*model.Variable { return stateVariables(ctx) }

func (o *adamW) Update(ctx *model.Scope, params []Param, grads []*Node, lr, step *Node) {
	if step == nil || !step.IsScalar() {
		exceptions.Panicf("train: adamw.Update: step must be a scalar node (1-based), got %v", step)
	}
	g := step.Graph()
	t := ConvertDType(step, dtypes.Float64)
	bc1 := OneMinus(Pow(Scalar(g, dtypes.Float64, o.cfg.Beta1), t))           // 1 − β1^t
	bc2Sqrt := Sqrt(OneMinus(Pow(Scalar(g, dtypes.Float64, o.cfg.Beta2), t))) // sqrt(1 − β2^t)
	b1, b2 := o.cfg.Beta1, o.cfg.Beta2
	applyUpdates("adamw", params, grads, lr, func(_ int, p Param, value, grad, plr *Node) *Node {
		mVar, vVar := stateVariable(ctx, p.Var, "m"), stateVariable(ctx, p.Var, "v")
		if o.cfg.WeightDecay != 0 {
			value = Mul(value, f32(OneMinus(MulScalar(plr, o.cfg.WeightDecay))))
		}
		m := lerp(mVar.NodeValue(g), grad, 1-b1)                                                       // exp_avg.lerp_(grad, 1-β1)
		v := Add(MulScalar(vVar.NodeValue(g), float32(b2)), Mul(MulScalar(grad, float32(1-b2)), grad)) // addcmul_
		mVar.SetNodeValue(m)
		vVar.SetNodeValue(v)
		denom := AddScalar(Div(Sqrt(v), f32(bc2Sqrt)), float32(o.cfg.Eps))
		stepSize := f32(Div(plr, bc1))
		return Sub(value, Mul(stepSize, Div(m, denom)))
	})
}

// lerp is torch.lerp's CPU formula for a scalar weight w: a + w·(b − a) if w < 0.5, else
// b − (b − a)·(1 − w).
func lerp(a, b *Node, w float64) *Node {
	w32 := float32(w)
	if w32 < 0.5 {
		return Add(a, MulScalar(Sub(b, a), w32))
	}
	return Sub(b, MulScalar(Sub(b, a), 1-w32))
}

// lion ports lion-pytorch's update_fn:
//
//	θ ← θ·(1 − γλ)
//	θ ← θ − γ·sign(β1·m + (1 − β1)·g)
//	m ← β2·m + (1 − β2)·g
type lion struct{ cfg OptimizerConfig }

func (o *lion) StateVariables(ctx *model.Scope) []*model.Variable { return stateVariables(ctx) }

func (o *lion) Update(ctx *model.Scope, params []Param, grads []*Node, lr, _ *Node) {
	b1, b2 := o.cfg.Beta1, o.cfg.Beta2
	applyUpdates("lion", params, grads, lr, func(_ int, p Param, value, grad, plr *Node) *Node {
		g := value.Graph()
		mVar := stateVariable(ctx, p.Var, "m")
		m := mVar.NodeValue(g)
		if o.cfg.WeightDecay != 0 {
			value = Mul(value, f32(OneMinus(MulScalar(plr, o.cfg.WeightDecay))))
		}
		update := Sign(Add(MulScalar(m, float32(b1)), MulScalar(grad, float32(1-b1))))
		mVar.SetNodeValue(Add(MulScalar(m, float32(b2)), MulScalar(grad, float32(1-b2))))
		return Sub(value, Mul(f32(plr), update))
	})
}

// sgd ports torch.optim.SGD (dampening 0, maximize=False):
//
//	g ← g + λθ                        (if weight_decay ≠ 0)
//	b ← μ·b + g   (b = g at the first step, i.e. b starts at 0)  (if momentum ≠ 0)
//	g ← g + μ·b if nesterov else b
//	θ ← θ − γ·g
type sgd struct{ cfg OptimizerConfig }

func (o *sgd) StateVariables(ctx *model.Scope) []*model.Variable { return stateVariables(ctx) }

func (o *sgd) Update(ctx *model.Scope, params []Param, grads []*Node, lr, _ *Node) {
	mu := o.cfg.Momentum
	applyUpdates("sgd", params, grads, lr, func(_ int, p Param, value, grad, plr *Node) *Node {
		if o.cfg.WeightDecay != 0 {
			grad = Add(grad, MulScalar(value, float32(o.cfg.WeightDecay)))
		}
		if mu != 0 {
			bufVar := stateVariable(ctx, p.Var, "momentum_buffer")
			buf := Add(MulScalar(bufVar.NodeValue(value.Graph()), float32(mu)), grad)
			bufVar.SetNodeValue(buf)
			if o.cfg.Nesterov {
				grad = Add(grad, MulScalar(buf, float32(mu)))
			} else {
				grad = buf
			}
		}
		return Sub(value, Mul(f32(plr), grad))
	})
}

// ClipGradNorm ports torch.nn.utils.clip_grad_norm_ (norm_type 2): totalNorm is the L2 norm of the
// per-tensor L2 norms (i.e. of all gradients together), computed in float32; every gradient is scaled by
// min(1, maxNorm/(totalNorm + 1e-6)). Nil gradients stay nil. maxNorm must be > 0 (+Inf disables the
// clipping but still returns the norm).
func ClipGradNorm(grads []*Node, maxNorm float64) (clipped []*Node, totalNorm *Node) {
	if !(maxNorm > 0) {
		exceptions.Panicf("train: ClipGradNorm: maxNorm = %v, want > 0", maxNorm)
	}
	var sumSq *Node
	for _, gr := range grads {
		if gr == nil {
			continue
		}
		n := Sqrt(ReduceAllSum(Square(ConvertDType(gr, dtypes.Float32))))
		if sumSq == nil {
			sumSq = Square(n)
		} else {
			sumSq = Add(sumSq, Square(n))
		}
	}
	if sumSq == nil {
		exceptions.Panicf("train: ClipGradNorm: no gradients")
	}
	g := sumSq.Graph()
	totalNorm = Sqrt(sumSq)
	coef := Div(Scalar(g, dtypes.Float32, maxNorm), AddScalar(totalNorm, 1e-6))
	coef = Min(coef, ScalarOne(g, dtypes.Float32))
	clipped = make([]*Node, len(grads))
	for i, gr := range grads {
		if gr != nil {
			clipped[i] = ConvertDType(Mul(ConvertDType(gr, dtypes.Float32), coef), gr.DType())
		}
	}
	return clipped, totalNorm
}
