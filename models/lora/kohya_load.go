package lora

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/safetensors"
)

// Base describes one component a LoRA file may adapt, for LoadKohya: its declared weights
// (weights.Declared: every Linear/Conv2d module is then known) or a Network (only its modules).
type Base struct {
	Component string
	Declared  map[string]shapes.Shape
	Network   *Network
}

// Loaded is a LoRA file read by LoadKohya.
type Loaded struct {
	Path     string
	Metadata map[string]string
	// Layout is LayoutDiffusers or LayoutSAI (the UNet names found), or "" when the file holds no
	// UNet module.
	Layout string
	// Networks holds, in the order of the bases, one network per component with modules in the
	// file; ranks come from the lora_down shapes and alphas from the .alpha tensors (alpha = rank,
	// i.e. scale 1, where a file has none, as ComfyUI does).
	Networks []*Network
	// Weights maps component → module path → weights, as float32.
	Weights map[string]map[string]ModuleWeights
}

// Network returns the loaded network of a component, or nil.
func (l *Loaded) Network(component string) *Network {
	for _, n := range l.Networks {
		if n.Component == component {
			return n
		}
	}
	return nil
}

// SetWeights creates or sets the variables of every loaded network in ctxRoot (Network.SetWeights).
func (l *Loaded) SetWeights(ctxRoot *model.Scope) error {
	for _, n := range l.Networks {
		if err := n.SetWeights(ctxRoot, l.Weights[n.Component]); err != nil {
			return fmt.Errorf("%s: %w", l.Path, err)
		}
	}
	return nil
}

// target is where one kohya name points.
type target struct {
	base   int
	module *Module
	sai    bool
}

// forwardMap builds kohya name → module for every module of the bases, in both UNet layouts and
// with both text-encoder prefixes (lora_te_ and lora_te1_ for text_encoder).
func forwardMap(bases []Base) (map[string]target, error) {
	fwd := map[string]target{}
	add := func(name string, t target) error {
		if prev, ok := fwd[name]; ok && prev.module != t.module {
			return fmt.Errorf("lora: kohya name %s is ambiguous: %s %s and %s %s", name,
				bases[prev.base].Component, prev.module.Path, bases[t.base].Component, t.module.Path)
		}
		fwd[name] = t
		return nil
	}
	for bi, b := range bases {
		var mods []*Module
		switch {
		case b.Network != nil:
			mods = b.Network.Modules
			if b.Component == "" {
				b.Component = b.Network.Component
				bases[bi].Component = b.Network.Component
			}
		case b.Declared != nil:
			mods = Candidates(b.Component, b.Declared)
			if b.Component == UNet {
				if ldm, err := ldmPaths(b.Declared); err == nil {
					for _, m := range mods {
						m.LDMPath = ldm[m.Path]
					}
				}
			}
		default:
			return nil, fmt.Errorf("lora: base %q has neither Declared nor Network", b.Component)
		}
		var prefixes []string
		switch b.Component {
		case UNet:
			prefixes = []string{"lora_unet"}
		case TextEncoder:
			prefixes = []string{"lora_te", "lora_te1"}
		case TextEncoder2:
			prefixes = []string{"lora_te2"}
		default:
			return nil, fmt.Errorf("lora: base component %q has no kohya prefix (valid: %q, %q, %q)", b.Component, UNet, TextEncoder, TextEncoder2)
		}
		for _, m := range mods {
			for _, p := range prefixes {
				if err := add(p+"_"+strings.ReplaceAll(m.Path, ".", "_"), target{base: bi, module: m}); err != nil {
					return nil, err
				}
				if m.LDMPath != "" {
					if err := add(p+"_"+strings.ReplaceAll(m.LDMPath, ".", "_"), target{base: bi, module: m, sai: true}); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return fwd, nil
}

// LoadKohya reads a kohya LoRA file (diffusers or SAI names for the UNet; lora_te_ / lora_te1_ /
// lora_te2_ for the text encoders) onto the given bases. Every key is looked up exactly in the
// forward map of the bases' modules (names are never split at "_"); keys that match no module,
// modules with a missing half, and shapes that do not fit the base layer are all reported in one
// error naming the file. A file holding a NaN or ±Inf value in any tensor is refused, whatever
// strength it would be used at (the file is damaged): the error names the file and the keys and
// wraps safetensors.ErrNonFinite.
func LoadKohya(path string, bases ...Base) (*Loaded, error) {
	bases = slices.Clone(bases)
	fwd, err := forwardMap(bases)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	keys := matchKeys(f.Names(), fwd, bases)
	if len(keys.unmatched) > 0 {
		return nil, fmt.Errorf("lora: %s: %d keys match no module of %s: %s", path, len(keys.unmatched), baseNames(bases), strings.Join(keys.unmatched, ", "))
	}
	if err := f.CheckAllFinite(); err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	l := &Loaded{Path: path, Metadata: f.Metadata(), Weights: map[string]map[string]ModuleWeights{}}
	l.Layout = keys.layout()
	nets, err := keys.loadModules(f, bases, l)
	if err != nil {
		return nil, err
	}
	if len(keys.problems) > 0 {
		sort.Strings(keys.problems)
		return nil, fmt.Errorf("lora: %s: %s", path, strings.Join(keys.problems, "; "))
	}
	for _, n := range nets {
		if n != nil {
			n.sortModules()
			l.Networks = append(l.Networks, n)
		}
	}
	if len(l.Networks) == 0 {
		return nil, fmt.Errorf("lora: %s holds no LoRA module", path)
	}
	return l, nil
}

// foundModule holds the keys of one module's tensors in a kohya file ("" where absent).
type foundModule struct {
	t               target
	down, up, alpha string
}

// kohyaKeys is the keys of a kohya file sorted by module, with what did not fit.
type kohyaKeys struct {
	byModule  map[*Module]*foundModule
	unmatched []string // keys naming no module of the bases
	problems  []string // one line per key or module that cannot be loaded
	// saiCount and diffCount count the UNet modules found under their SAI / diffusers names.
	saiCount, diffCount int
}

// matchKeys files every key of a kohya file under its module, looked up in the forward map fwd.
func matchKeys(names []string, fwd map[string]target, bases []Base) *kohyaKeys {
	k := &kohyaKeys{byModule: map[*Module]*foundModule{}}
	for _, key := range names {
		k.add(key, fwd, bases)
	}
	return k
}

// add files key (<kohya name>.<lora_down.weight|lora_up.weight|alpha>) under its module: an unknown
// name or suffix is unmatched; a module under both its names, or a tensor twice, is a problem.
func (k *kohyaKeys) add(key string, fwd map[string]target, bases []Base) {
	name, suffix, ok := strings.Cut(key, ".")
	t, known := fwd[name]
	if !ok || !known || (suffix != suffixDown && suffix != suffixUp && suffix != suffixAlpha) {
		k.unmatched = append(k.unmatched, key)
		return
	}
	fm := k.byModule[t.module]
	if fm == nil {
		fm = &foundModule{t: t}
		k.byModule[t.module] = fm
		if bases[t.base].Component == UNet {
			if t.sai {
				k.saiCount++
			} else {
				k.diffCount++
			}
		}
	} else if fm.t.sai != t.sai {
		k.problems = append(k.problems, fmt.Sprintf("%s: module %s appears under both its diffusers and its SAI name", key, t.module.Path))
		return
	}
	slot := map[string]*string{suffixDown: &fm.down, suffixUp: &fm.up, suffixAlpha: &fm.alpha}[suffix]
	if *slot != "" {
		k.problems = append(k.problems, fmt.Sprintf("%s and %s are the same tensor of module %s", *slot, key, t.module.Path))
		return
	}
	*slot = key
}

// layout is the UNet layout of the keys: LayoutSAI, LayoutDiffusers, or "" when there is no UNet
// module or when they mix both (a problem).
func (k *kohyaKeys) layout() string {
	switch {
	case k.saiCount > 0 && k.diffCount > 0:
		k.problems = append(k.problems, fmt.Sprintf("UNet names mix the diffusers (%d modules) and SAI (%d modules) layouts", k.diffCount, k.saiCount))
	case k.saiCount > 0:
		return LayoutSAI
	case k.diffCount > 0:
		return LayoutDiffusers
	}
	return ""
}

// loadModules reads, as float32, the weights of every found module that fits its base into
// l.Weights and returns the networks, one per base (nil where the file has no module of it); a
// module that does not fit is a problem instead.
func (k *kohyaKeys) loadModules(f *safetensors.File, bases []Base, l *Loaded) ([]*Network, error) {
	nets := make([]*Network, len(bases))
	for src, fm := range k.byModule {
		b := fm.t.base
		m, problem := fitModule(f, src, fm, bases[b].Component)
		if m == nil {
			k.problems = append(k.problems, problem)
			continue
		}
		// The stored values are finite (LoadKohya checked); an F64 file's may still overflow F32.
		down, err := f.FiniteTensor(fm.down, dtypes.Float32)
		if err != nil {
			return nil, fmt.Errorf("lora: %w", err)
		}
		up, err := f.FiniteTensor(fm.up, dtypes.Float32)
		if err != nil {
			return nil, fmt.Errorf("lora: %w", err)
		}
		if nets[b] == nil {
			nets[b] = &Network{Component: bases[b].Component}
			l.Weights[bases[b].Component] = map[string]ModuleWeights{}
		}
		nets[b].Modules = append(nets[b].Modules, m)
		l.Weights[bases[b].Component][m.Path] = ModuleWeights{Down: down, Up: up}
	}
	return nets, nil
}

// fitModule builds the loaded twin of src, a module of component, from its tensors in f: the rank
// from the lora_down shape, alpha from the .alpha tensor (= rank without one). When the tensors do
// not fit src it returns nil and the problem.
func fitModule(f *safetensors.File, src *Module, fm *foundModule, component string) (*Module, string) {
	if fm.down == "" || fm.up == "" {
		return nil, fmt.Sprintf("%s: module %s needs both lora_down.weight and lora_up.weight", component, src.Path)
	}
	di, _ := f.Info(fm.down)
	ui, _ := f.Info(fm.up)
	m := &Module{Path: src.Path, Kind: src.Kind, In: src.In, Out: src.Out, Kernel: src.Kernel, LRScale: 1, LDMPath: src.LDMPath}
	if len(di.Shape) > 0 {
		m.Rank = di.Shape[0]
	}
	if m.Rank <= 0 || !slices.Equal(di.Shape, m.DownShape()) || !slices.Equal(ui.Shape, m.UpShape()) {
		return nil, fmt.Sprintf("%s: lora_down %v / lora_up %v do not fit the base %s %v (want [r %s] / %v)",
			fm.down, di.Shape, ui.Shape, m.Kind, m.BaseShape(), strings.Trim(fmt.Sprint(m.DownShape()[1:]), "[]"), m.UpShape())
	}
	m.Alpha = float64(m.Rank)
	if fm.alpha != "" {
		a, _, err := f.Float64s(fm.alpha)
		if err != nil || len(a) != 1 {
			return nil, fmt.Sprintf("%s: want one alpha value (%v)", fm.alpha, err)
		}
		m.Alpha = a[0]
	}
	if err := m.validate(); err != nil {
		return nil, err.Error()
	}
	return m, ""
}

func baseNames(bases []Base) string {
	var s []string
	for _, b := range bases {
		s = append(s, b.Component)
	}
	return strings.Join(s, ", ")
}
