package lora

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Scope names of the LoRA variables.
const (
	RootScope = "lora"
	DownScope = "lora_down"
	UpScope   = "lora_up"
	VarName   = "weight"
)

// Up initialisations of InitOptions.UpInit.
const (
	// UpInitZero: down kaiming-uniform (a=√5, torch.nn.Linear's default), up zero, both trained
	// (kohya / LECO lora.py:90-92). The adapter starts as the identity.
	UpInitZero = "zero"
	// UpInitOrthonormal: up has orthonormal columns (UᵀU = I_r; orthonormal rows when r > out) and is
	// frozen, down starts at zero and is trained (the Flux-sliders style of docs/ALGORITHMS.md §6). The
	// adapter also starts as the identity.
	UpInitOrthonormal = "orthonormal"
)

// InitOptions sets how Init fills the variables.
type InitOptions struct {
	// Seed makes the values reproducible; each module draws from its own stream, keyed by the
	// component and path, so a module's values do not depend on which other modules are targeted.
	Seed uint64
	// UpInit is UpInitZero ("" too) or UpInitOrthonormal.
	UpInit string
	// DType of the variables (default Float32).
	DType dtypes.DType
}

// ModuleWeights are one module's LoRA weights: Down [r, in] or [r, in, k, k], Up [out, r] or
// [out, r, 1, 1].
type ModuleWeights struct {
	Down, Up *tensors.Tensor
}

// moduleCtx is the scope of one of a module's variables: lora/<component>/<path parts>/<which>.
func (n *Network) moduleCtx(ctxRoot *model.Scope, m *Module, which string) *model.Scope {
	c := ctxRoot.At("%s", RootScope).At("%s", n.Component)
	for _, p := range strings.Split(m.Path, ".") {
		c = c.At("%s", p)
	}
	return c.At("%s", which)
}

// Init creates the network's variables in ctxRoot with their initial values (see InitOptions). The
// up weights are frozen (not trainable) with UpInitOrthonormal. Calling it when any of the
// variables already exists is an error.
func (n *Network) Init(ctxRoot *model.Scope, opts InitOptions) error {
	dt := opts.DType
	if dt == dtypes.InvalidDType {
		dt = dtypes.Float32
	}
	if opts.UpInit != "" && opts.UpInit != UpInitZero && opts.UpInit != UpInitOrthonormal {
		return fmt.Errorf("lora: Init %s: unknown UpInit %q (valid: %q, %q)", n.Component, opts.UpInit, UpInitZero, UpInitOrthonormal)
	}
	var exist []string
	for _, m := range n.Modules {
		for _, w := range []string{DownScope, UpScope} {
			if c := n.moduleCtx(ctxRoot, m, w); c.GetVariable(VarName) != nil {
				exist = append(exist, c.Scope())
			}
		}
	}
	if len(exist) > 0 {
		return fmt.Errorf("lora: Init %s: %d variables already exist (Init called twice?): %s", n.Component, len(exist), strings.Join(exist, ", "))
	}
	for _, m := range n.Modules {
		if err := m.validate(); err != nil {
			return fmt.Errorf("lora: Init %s: %w", n.Component, err)
		}
		h := fnv.New64a()
		h.Write([]byte(n.Component + "/" + m.Path))
		rng := rand.New(rand.NewPCG(opts.Seed, h.Sum64()))
		down := make([]float64, m.Rank*m.In*m.Kernel*m.Kernel)
		up := make([]float64, m.Out*m.Rank)
		frozenUp := opts.UpInit == UpInitOrthonormal
		if frozenUp {
			orthonormal(rng, up, m.Out, m.Rank)
		} else {
			// torch.nn.init.kaiming_uniform_(w, a=√5): bound = gain·√(3/fan_in), gain = √(2/(1+a²)),
			// i.e. bound = 1/√fan_in with fan_in = in·k·k.
			bound := 1 / math.Sqrt(float64(m.In*m.Kernel*m.Kernel))
			for i := range down {
				down[i] = (2*rng.Float64() - 1) * bound
			}
		}
		dT, err := tensorOf(dt, down, m.DownShape())
		if err != nil {
			return fmt.Errorf("lora: Init %s: %w", n.Component, err)
		}
		uT, err := tensorOf(dt, up, m.UpShape())
		if err != nil {
			return fmt.Errorf("lora: Init %s: %w", n.Component, err)
		}
		n.moduleCtx(ctxRoot, m, DownScope).VariableWithValue(VarName, dT).SetTrainable(true)
		n.moduleCtx(ctxRoot, m, UpScope).VariableWithValue(VarName, uT).SetTrainable(!frozenUp)
	}
	return nil
}

// orthonormal fills u ([rows, cols], row-major) with a random matrix with orthonormal columns
// (orthonormal rows when cols > rows): Gaussian draws, then modified Gram-Schmidt, twice.
func orthonormal(rng *rand.Rand, u []float64, rows, cols int) {
	for i := range u {
		u[i] = rng.NormFloat64()
	}
	// vectors: columns (stride cols) or rows (stride 1).
	nv, dim := cols, rows
	at := func(v, k int) *float64 { return &u[k*cols+v] }
	if cols > rows {
		nv, dim = rows, cols
		at = func(v, k int) *float64 { return &u[v*cols+k] }
	}
	for pass := 0; pass < 2; pass++ {
		for v := range nv {
			for w := range v {
				dot := 0.0
				for k := range dim {
					dot += *at(v, k) * *at(w, k)
				}
				for k := range dim {
					*at(v, k) -= dot * *at(w, k)
				}
			}
			norm := 0.0
			for k := range dim {
				norm += *at(v, k) * *at(v, k)
			}
			norm = math.Sqrt(norm)
			for k := range dim {
				*at(v, k) /= norm
			}
		}
	}
}

// validate checks a module's sizes.
func (m *Module) validate() error {
	if m.Kind != Linear && m.Kind != Conv {
		return fmt.Errorf("module %s: unknown kind %q (valid: %q, %q)", m.Path, m.Kind, Linear, Conv)
	}
	if m.Rank <= 0 || m.In <= 0 || m.Out <= 0 || m.Kernel <= 0 || (m.Kind == Linear && m.Kernel != 1) {
		return fmt.Errorf("module %s: bad sizes rank=%d in=%d out=%d kernel=%d", m.Path, m.Rank, m.In, m.Out, m.Kernel)
	}
	if m.Alpha <= 0 || math.IsNaN(m.Alpha) || math.IsInf(m.Alpha, 0) {
		return fmt.Errorf("module %s: alpha %g must be positive", m.Path, m.Alpha)
	}
	return nil
}

// Variables lists the network's variables in Modules order (down then up of each module), for
// optimizers and checkpoints. Frozen ones (an orthonormal up) are included: check Trainable.
func (n *Network) Variables(ctxRoot *model.Scope) ([]*model.Variable, error) {
	out := make([]*model.Variable, 0, 2*len(n.Modules))
	var missing []string
	for _, m := range n.Modules {
		for _, w := range []string{DownScope, UpScope} {
			c := n.moduleCtx(ctxRoot, m, w)
			v := c.GetVariable(VarName)
			if v == nil {
				missing = append(missing, c.Scope())
				continue
			}
			out = append(out, v)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("lora: %s: %d variables missing (call Init or SetWeights first): %s", n.Component, len(missing), strings.Join(missing, ", "))
	}
	return out, nil
}

// Weights reads the current values of the network's variables, by module path.
func (n *Network) Weights(ctxRoot *model.Scope) (map[string]ModuleWeights, error) {
	vars, err := n.Variables(ctxRoot)
	if err != nil {
		return nil, err
	}
	out := make(map[string]ModuleWeights, len(n.Modules))
	for i, m := range n.Modules {
		d, err := vars[2*i].Value()
		if err != nil {
			return nil, fmt.Errorf("lora: %s %s: %w", n.Component, m.Path, err)
		}
		u, err := vars[2*i+1].Value()
		if err != nil {
			return nil, fmt.Errorf("lora: %s %s: %w", n.Component, m.Path, err)
		}
		out[m.Path] = ModuleWeights{Down: d, Up: u}
	}
	return out, nil
}

// SetWeights creates or overwrites the network's variables with w (module path → weights, e.g.
// Loaded.Weights[component]): every module needs an entry of the right shapes, and w may hold no
// other. New variables take the tensors' dtype and are trainable; existing ones keep their dtype
// (the values are converted) and their trainable flag.
func (n *Network) SetWeights(ctxRoot *model.Scope, w map[string]ModuleWeights) error {
	var problems []string
	for _, m := range n.Modules {
		mw, ok := w[m.Path]
		if !ok || mw.Down == nil || mw.Up == nil {
			problems = append(problems, m.Path+": missing")
			continue
		}
		if got := mw.Down.Shape().Dimensions; !slices.Equal(got, m.DownShape()) {
			problems = append(problems, fmt.Sprintf("%s: lora_down %v, want %v", m.Path, got, m.DownShape()))
		}
		if got := mw.Up.Shape().Dimensions; !slices.Equal(got, m.UpShape()) {
			problems = append(problems, fmt.Sprintf("%s: lora_up %v, want %v", m.Path, got, m.UpShape()))
		}
	}
	for p := range w {
		if n.Module(p) == nil {
			problems = append(problems, p+": not a module of the network")
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("lora: SetWeights %s: %s", n.Component, strings.Join(problems, "; "))
	}
	for _, m := range n.Modules {
		mw := w[m.Path]
		for _, x := range []struct {
			which string
			t     *tensors.Tensor
		}{{DownScope, mw.Down}, {UpScope, mw.Up}} {
			c := n.moduleCtx(ctxRoot, m, x.which)
			v := c.GetVariable(VarName)
			if v == nil {
				// A copy: the context owns its variables' values (an executor may donate their buffers).
				t, err := x.t.LocalClone()
				if err != nil {
					return fmt.Errorf("lora: SetWeights %s %s: %w", n.Component, m.Path, err)
				}
				c.VariableWithValue(VarName, t)
				continue
			}
			if !slices.Equal(v.Shape().Dimensions, x.t.Shape().Dimensions) {
				return fmt.Errorf("lora: SetWeights %s: variable %s/%s is %s, want dims %v", n.Component, c.Scope(), VarName, v.Shape(), x.t.Shape().Dimensions)
			}
			t, err := convertTensor(x.t, v.DType())
			if err == nil && t == x.t {
				t, err = x.t.LocalClone()
			}
			if err != nil {
				return fmt.Errorf("lora: SetWeights %s %s: %w", n.Component, m.Path, err)
			}
			if err := v.SetValue(t); err != nil {
				return fmt.Errorf("lora: SetWeights %s %s: %w", n.Component, m.Path, err)
			}
		}
	}
	return nil
}
