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
// error naming the file.
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

	type found struct {
		t               target
		down, up, alpha string
	}
	byModule := map[*Module]*found{}
	var unmatched, problems []string
	saiCount, diffCount := 0, 0
	for _, key := range f.Names() {
		name, suffix, ok := strings.Cut(key, ".")
		t, known := fwd[name]
		if !ok || !known || (suffix != suffixDown && suffix != suffixUp && suffix != suffixAlpha) {
			unmatched = append(unmatched, key)
			continue
		}
		fm := byModule[t.module]
		if fm == nil {
			fm = &found{t: t}
			byModule[t.module] = fm
			if bases[t.base].Component == UNet {
				if t.sai {
					saiCount++
				} else {
					diffCount++
				}
			}
		} else if fm.t.sai != t.sai {
			problems = append(problems, fmt.Sprintf("%s: module %s appears under both its diffusers and its SAI name", key, t.module.Path))
			continue
		}
		slot := map[string]*string{suffixDown: &fm.down, suffixUp: &fm.up, suffixAlpha: &fm.alpha}[suffix]
		if *slot != "" {
			problems = append(problems, fmt.Sprintf("%s and %s are the same tensor of module %s", *slot, key, t.module.Path))
			continue
		}
		*slot = key
	}
	if len(unmatched) > 0 {
		return nil, fmt.Errorf("lora: %s: %d keys match no module of %s: %s", path, len(unmatched), baseNames(bases), strings.Join(unmatched, ", "))
	}

	l := &Loaded{Path: path, Metadata: f.Metadata(), Weights: map[string]map[string]ModuleWeights{}}
	switch {
	case saiCount > 0 && diffCount > 0:
		problems = append(problems, fmt.Sprintf("UNet names mix the diffusers (%d modules) and SAI (%d modules) layouts", diffCount, saiCount))
	case saiCount > 0:
		l.Layout = LayoutSAI
	case diffCount > 0:
		l.Layout = LayoutDiffusers
	}
	nets := make([]*Network, len(bases))
	for src, fm := range byModule {
		if fm.down == "" || fm.up == "" {
			problems = append(problems, fmt.Sprintf("%s: module %s needs both lora_down.weight and lora_up.weight", bases[fm.t.base].Component, src.Path))
			continue
		}
		di, _ := f.Info(fm.down)
		ui, _ := f.Info(fm.up)
		m := &Module{Path: src.Path, Kind: src.Kind, In: src.In, Out: src.Out, Kernel: src.Kernel, LRScale: 1, LDMPath: src.LDMPath}
		if len(di.Shape) > 0 {
			m.Rank = di.Shape[0]
		}
		if m.Rank <= 0 || !slices.Equal(di.Shape, m.DownShape()) || !slices.Equal(ui.Shape, m.UpShape()) {
			problems = append(problems, fmt.Sprintf("%s: lora_down %v / lora_up %v do not fit the base %s %v (want [r %s] / %v)",
				fm.down, di.Shape, ui.Shape, m.Kind, m.BaseShape(), strings.Trim(fmt.Sprint(m.DownShape()[1:]), "[]"), m.UpShape()))
			continue
		}
		m.Alpha = float64(m.Rank)
		if fm.alpha != "" {
			a, _, err := f.Float64s(fm.alpha)
			if err != nil || len(a) != 1 {
				problems = append(problems, fmt.Sprintf("%s: want one alpha value (%v)", fm.alpha, err))
				continue
			}
			m.Alpha = a[0]
		}
		if err := m.validate(); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		down, err := f.Tensor(fm.down, dtypes.Float32)
		if err != nil {
			return nil, err
		}
		up, err := f.Tensor(fm.up, dtypes.Float32)
		if err != nil {
			return nil, err
		}
		b := fm.t.base
		if nets[b] == nil {
			nets[b] = &Network{Component: bases[b].Component}
			l.Weights[bases[b].Component] = map[string]ModuleWeights{}
		}
		nets[b].Modules = append(nets[b].Modules, m)
		l.Weights[bases[b].Component][m.Path] = ModuleWeights{Down: down, Up: up}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("lora: %s: %s", path, strings.Join(problems, "; "))
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

func baseNames(bases []Base) string {
	var s []string
	for _, b := range bases {
		s = append(s, b.Component)
	}
	return strings.Join(s, ", ")
}
