package lora

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/gomlx/compute/shapes"
)

// Presets of Targets.Preset (docs/ALGORITHMS.md §6; kohya/LECO lora.py target classes).
const (
	PresetLierLa  = "lierla"
	PresetC3Lier  = "c3lier"
	PresetNoXAttn = "noxattn"
	PresetXAttn   = "xattn"
	PresetFull    = "full"
	PresetNone    = "none"
)

// Presets lists the valid Targets.Preset values ("" means PresetLierLa).
var Presets = []string{PresetLierLa, PresetC3Lier, PresetNoXAttn, PresetXAttn, PresetFull, PresetNone}

// ErrNoModule is wrapped by Resolve's error when the targets select no module of the component
// (e.g. preset xattn on a text encoder).
var ErrNoModule = errors.New("no module selected")

// DefaultRank is the rank used when Targets.Rank is 0 (LECO's default).
const DefaultRank = 4

// Selector adds, overrides or removes modules of a Targets preset.
type Selector struct {
	// Match is one of
	//   - a module type: "attn1", "attn2", "attn" (both, and a text encoder's self_attn),
	//     "self_attn", "mlp", "ff", "proj" (proj_in/proj_out), "resnet", "sampler"
	//     (Downsample2D/Upsample2D convs), "transformer" (everything in a Transformer2DModel),
	//     "linear", "conv";
	//   - a block or module path, matched on whole "."-separated segments from the start of the
	//     path, "*" matching any one segment: "down_blocks.1", "mid_block", "up_blocks.*",
	//     "up_blocks.*.attentions", or an exact module path;
	//   - "re:<regexp>": a Go regexp searched in the module path (unanchored).
	Match string
	// Exclude removes the matched modules instead of adding/overriding them.
	Exclude bool
	// Rank, Alpha and LRScale override the matched modules' values; 0 inherits.
	Rank    int
	Alpha   float64
	LRScale float64
}

// Targets chooses the adapted modules of a component: a preset, then each selector in order.
type Targets struct {
	// Preset is one of Presets; "" is PresetLierLa.
	Preset string
	// Rank is the rank of every module (0: DefaultRank). Conv ranks are clamped to min(rank, in, out).
	Rank int
	// Alpha is the alpha of every module; 0 means alpha = rank (scale 1), kohya's convention.
	Alpha float64
	// ConvRank and ConvAlpha, when > 0, replace Rank and Alpha for convolutions with a kernel
	// larger than 1×1 (kohya's conv_dim / conv_alpha); 1×1 convs use Rank like Linears.
	ConvRank  int
	ConvAlpha float64
	// Selectors are applied in order after the preset.
	Selectors []Selector
}

// moduleTypes are the Selector.Match words that select by module type.
var moduleTypes = map[string]func(m *Module, segs []string) bool{
	"attn1": func(_ *Module, s []string) bool { return hasSeg(s, "attn1") },
	"attn2": func(_ *Module, s []string) bool { return hasSeg(s, "attn2") },
	"attn": func(_ *Module, s []string) bool {
		return hasSeg(s, "attn1") || hasSeg(s, "attn2") || hasSeg(s, "self_attn")
	},
	"self_attn":   func(_ *Module, s []string) bool { return hasSeg(s, "self_attn") },
	"mlp":         func(_ *Module, s []string) bool { return hasSeg(s, "mlp") },
	"ff":          func(_ *Module, s []string) bool { return hasSeg(s, "ff") },
	"proj":        func(_ *Module, s []string) bool { l := s[len(s)-1]; return l == "proj_in" || l == "proj_out" },
	"resnet":      func(_ *Module, s []string) bool { return hasSeg(s, "resnets") },
	"sampler":     func(_ *Module, s []string) bool { return hasSeg(s, "downsamplers") || hasSeg(s, "upsamplers") },
	"transformer": func(_ *Module, s []string) bool { return inTransformer(s) },
	"linear":      func(m *Module, _ []string) bool { return m.Kind == Linear },
	"conv":        func(m *Module, _ []string) bool { return m.Kind == Conv },
}

// ModuleTypes lists the module-type words of Selector.Match, sorted.
func ModuleTypes() []string {
	out := make([]string, 0, len(moduleTypes))
	for k := range moduleTypes {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func hasSeg(segs []string, s string) bool {
	for _, x := range segs {
		if x == s {
			return true
		}
	}
	return false
}

// inTransformer reports whether a UNet path is inside a Transformer2DModel: <block>.attentions.<i>.…
func inTransformer(segs []string) bool {
	for i := 1; i+2 < len(segs); i++ {
		if segs[i] == "attentions" && isIndex(segs[i+1]) {
			return true
		}
	}
	return false
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isTextEncoder reports whether a component follows the CLIP text-encoder rules.
func isTextEncoder(component string) bool { return strings.HasPrefix(component, "text_encoder") }

// inPreset reports whether a candidate module belongs to a preset.
func inPreset(component, preset string, m *Module, segs []string) bool {
	if preset == PresetFull {
		return true
	}
	if preset == PresetNone {
		return false
	}
	if isTextEncoder(component) {
		// kohya TEXT_ENCODER_TARGET_REPLACE_MODULE = ["CLIPAttention", "CLIPMLP"] (CLIPSdpaAttention too).
		clip := hasSeg(segs, "layers") && (hasSeg(segs, "self_attn") || hasSeg(segs, "mlp"))
		return clip && preset != PresetXAttn
	}
	tr := inTransformer(segs)
	switch preset {
	case PresetLierLa:
		return tr
	case PresetC3Lier:
		// + ResnetBlock2D, Downsample2D, Upsample2D (UNET_TARGET_REPLACE_MODULE_CONV2D_3X3).
		return tr || hasSeg(segs, "resnets") || hasSeg(segs, "downsamplers") || hasSeg(segs, "upsamplers")
	case PresetNoXAttn:
		return tr && !hasSeg(segs, "attn2")
	case PresetXAttn:
		return tr && hasSeg(segs, "attn2")
	}
	return false
}

// Candidates lists every module of a component that can be adapted: each path with a floating-point
// ".weight" of rank 2 (Linear) or rank 4 with a square kernel (Conv2d), except a text encoder's
// embeddings. Sizes are read from the shapes; Rank, Alpha and LRScale are left 0.
func Candidates(component string, declared map[string]shapes.Shape) []*Module {
	var out []*Module
	for key, s := range declared {
		path, ok := strings.CutSuffix(key, ".weight")
		if !ok || path == "" || !s.DType.IsFloat() {
			continue
		}
		if isTextEncoder(component) && (strings.HasPrefix(path, "text_model.embeddings.") || strings.HasSuffix(path, "embedding")) {
			continue
		}
		d := s.Dimensions
		switch {
		case len(d) == 2:
			out = append(out, &Module{Path: path, Kind: Linear, Out: d[0], In: d[1], Kernel: 1})
		case len(d) == 4 && d[2] == d[3]:
			out = append(out, &Module{Path: path, Kind: Conv, Out: d[0], In: d[1], Kernel: d[2]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// setting is what the selectors decided for one module.
type setting struct {
	rank  int
	alpha float64
	lr    float64
}

// Resolve picks the modules of a component from the weights its model declares (weights.Declared:
// key → shape) as t says: the preset, then each selector in order. For the UNet it also fills
// Module.LDMPath from the single-file tables of models/weights. Errors name the bad preset or
// selector and list the valid values; a selection of no module at all is an error.
func Resolve(component string, declared map[string]shapes.Shape, t Targets) (*Network, error) {
	if err := t.validate(); err != nil {
		return nil, fmt.Errorf("lora: targets of %s: %w", component, err)
	}
	preset := t.Preset
	if preset == "" {
		preset = PresetLierLa
	}
	pick := newSelection(component, preset, declared)
	for si, sel := range t.Selectors {
		if err := pick.apply(si, sel); err != nil {
			return nil, err
		}
	}
	if len(pick.chosen) == 0 {
		return nil, fmt.Errorf("lora: targets of %s (preset %q, %d selectors) select no module out of %d candidates: %w",
			component, preset, len(t.Selectors), len(pick.cands), ErrNoModule)
	}
	ldm := map[string]string{}
	if component == UNet {
		ldm, _ = ldmPaths(declared) // a UNet the tables cannot map just has no SAI names
	}
	net := &Network{Component: component}
	for i, st := range pick.chosen {
		c := pick.cands[i]
		net.Modules = append(net.Modules, t.module(c, st, ldm[c.Path]))
	}
	net.sortModules()
	return net, nil
}

// selection is Resolve's work in progress: the candidate modules of a component, their paths split
// at ".", and the settings of the candidates chosen so far, by index in cands.
type selection struct {
	component string
	cands     []*Module
	segs      [][]string
	chosen    map[int]*setting
}

// newSelection lists the candidates of component in declared and chooses those of preset.
func newSelection(component, preset string, declared map[string]shapes.Shape) *selection {
	cands := Candidates(component, declared)
	s := &selection{component: component, cands: cands, segs: make([][]string, len(cands)), chosen: map[int]*setting{}}
	for i, m := range cands {
		s.segs[i] = strings.Split(m.Path, ".")
	}
	for i, m := range cands {
		if inPreset(component, preset, m, s.segs[i]) {
			s.chosen[i] = &setting{}
		}
	}
	return s
}

// apply applies sel, the selector number si: it removes the candidates it matches (Exclude) or
// chooses them with its overrides. A path selector that matches no candidate is an error.
func (s *selection) apply(si int, sel Selector) error {
	match, isType, err := sel.matcher()
	if err != nil {
		return fmt.Errorf("lora: targets of %s: selector %d: %w", s.component, si, err)
	}
	n := 0
	for i, m := range s.cands {
		if !match(m, s.segs[i]) {
			continue
		}
		n++
		if sel.Exclude {
			delete(s.chosen, i)
			continue
		}
		st := s.chosen[i]
		if st == nil {
			st = &setting{}
			s.chosen[i] = st
		}
		st.override(sel)
	}
	if n == 0 && !isType {
		return fmt.Errorf("lora: targets of %s: selector %d %q matches no module (valid: a module type %s, "+
			"a block or module path such as \"down_blocks.1\", \"mid_block\", \"up_blocks.*.attentions\" or "+
			"\"text_model.encoder.layers.0\" (\"*\" = one path segment), or \"re:<regexp>\")",
			s.component, si, sel.Match, strings.Join(ModuleTypes(), ", "))
	}
	return nil
}

// override sets the rank, alpha and lr scale that sel gives (> 0); the others are kept.
func (st *setting) override(sel Selector) {
	if sel.Rank > 0 {
		st.rank = sel.Rank
	}
	if sel.Alpha > 0 {
		st.alpha = sel.Alpha
	}
	if sel.LRScale > 0 {
		st.lr = sel.LRScale
	}
}

// module builds the adapted module of candidate c with the selectors' setting s: rank and alpha
// from s, else from t (ConvRank/ConvAlpha for a conv with a kernel larger than 1×1), else the
// defaults (DefaultRank; alpha = rank).
func (t Targets) module(c *Module, s *setting, ldmPath string) *Module {
	m := &Module{Path: c.Path, Kind: c.Kind, In: c.In, Out: c.Out, Kernel: c.Kernel, LRScale: 1, LDMPath: ldmPath}
	bigConv := c.Kind == Conv && c.Kernel > 1
	m.Rank = firstSet(s.rank, t.ConvRank, t.Rank, bigConv, DefaultRank)
	if c.Kind == Conv {
		m.Rank = min(m.Rank, c.In, c.Out) // LECO lora.py: self.lora_dim = min(self.lora_dim, in_dim, out_dim)
	}
	m.Alpha = firstSet(s.alpha, t.ConvAlpha, t.Alpha, bigConv, float64(m.Rank))
	if s.lr > 0 {
		m.LRScale = s.lr
	}
	return m
}

// firstSet picks a module's rank or alpha: the selector's value sel, else the conv value conv for
// a conv with a kernel larger than 1×1 (bigConv), else the targets' value all, else def; a value
// is set when > 0.
func firstSet[T int | float64](sel, conv, all T, bigConv bool, def T) T {
	switch {
	case sel > 0:
		return sel
	case bigConv && conv > 0:
		return conv
	case all > 0:
		return all
	}
	return def
}

// validate checks the preset and the numbers of t.
func (t Targets) validate() error {
	if t.Preset != "" && !hasSeg(Presets, t.Preset) {
		return fmt.Errorf("unknown preset %q (valid: %s)", t.Preset, strings.Join(Presets, ", "))
	}
	if t.Rank < 0 || t.ConvRank < 0 || t.Alpha < 0 || t.ConvAlpha < 0 {
		return fmt.Errorf("rank %d, alpha %g, conv rank %d, conv alpha %g: must not be negative", t.Rank, t.Alpha, t.ConvRank, t.ConvAlpha)
	}
	for i, s := range t.Selectors {
		if s.Rank < 0 || s.Alpha < 0 || s.LRScale < 0 {
			return fmt.Errorf("selector %d %q: rank %d, alpha %g, lr scale %g: must not be negative", i, s.Match, s.Rank, s.Alpha, s.LRScale)
		}
	}
	return nil
}

// Validate checks the selector's syntax (a module type, a block/module path, or "re:<regexp>"),
// without a model; the error names the selector and the valid forms.
func (s Selector) Validate() error {
	_, _, err := s.matcher()
	return err
}

// segmentPattern is what a block/path selector may contain.
var segmentPattern = regexp.MustCompile(`^[A-Za-z0-9_*]+(\.[A-Za-z0-9_*]+)*$`)

// matcher compiles a selector; isType tells a module-type or regexp selector, which may match
// nothing in a component (e.g. "attn2" on a text encoder), from a path selector, which must match.
func (s Selector) matcher() (match func(m *Module, segs []string) bool, isType bool, err error) {
	if f, ok := moduleTypes[s.Match]; ok {
		return f, true, nil
	}
	if expr, ok := strings.CutPrefix(s.Match, "re:"); ok {
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, false, fmt.Errorf("bad regexp in selector %q: %v", s.Match, err)
		}
		return func(m *Module, _ []string) bool { return re.MatchString(m.Path) }, true, nil
	}
	if !segmentPattern.MatchString(s.Match) {
		return nil, false, fmt.Errorf("bad selector %q (valid: a module type %s, a block or module path such as "+
			"\"down_blocks.1\", \"mid_block\", \"up_blocks.*.attentions\" (\"*\" = one path segment), or \"re:<regexp>\")",
			s.Match, strings.Join(ModuleTypes(), ", "))
	}
	pat := strings.Split(s.Match, ".")
	return func(_ *Module, segs []string) bool {
		if len(segs) < len(pat) {
			return false
		}
		for i, p := range pat {
			if p != "*" && p != segs[i] {
				return false
			}
		}
		return true
	}, false, nil
}
