package lora

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/ml/model"
)

// Merge folds a LoRA into the frozen base weights of a component, the merge rule of every consumer
// (kohya networks/lora.py merge_to, A1111, ComfyUI calculate_weight):
//
//	W' = W + strength·(α/r)·reshape(up.flatten(1) @ down.flatten(1), W.shape)
//
// times the module's layer multiplier m_l when the network has them (SetLayerMultipliers; a loaded
// file's alphas already hold them).
//
// ctxBase holds the base weights; componentScope is the scope of the component's root ("/" or
// "/unet"), so the base weight of module p is variable "weight" at componentScope/<p with "." →
// "/">. w maps module path → weights (Loaded.Weights[component] or Network.Weights). The product is
// computed on the host in float64 and written back in the base variable's dtype; the variables keep
// their trainable flag.
func Merge(ctxBase *model.Scope, componentScope string, net *Network, w map[string]ModuleWeights, strength float64) error {
	cs := strings.TrimRight(componentScope, "/")
	if cs != "" && !strings.HasPrefix(cs, "/") {
		cs = "/" + cs
	}
	for _, m := range net.Modules {
		mw, ok := w[m.Path]
		if !ok || mw.Down == nil || mw.Up == nil {
			return fmt.Errorf("lora: Merge %s: no weights for module %s", net.Component, m.Path)
		}
		if !slices.Equal(mw.Down.Shape().Dimensions, m.DownShape()) || !slices.Equal(mw.Up.Shape().Dimensions, m.UpShape()) {
			return fmt.Errorf("lora: Merge %s %s: lora_down %v / lora_up %v, want %v / %v", net.Component, m.Path,
				mw.Down.Shape().Dimensions, mw.Up.Shape().Dimensions, m.DownShape(), m.UpShape())
		}
		scope := cs + "/" + strings.ReplaceAll(m.Path, ".", "/")
		v := ctxBase.Store().GetVariable(model.JoinPath(scope, VarName))
		if v == nil {
			return fmt.Errorf("lora: Merge %s: base weight %s/%s not found", net.Component, scope, VarName)
		}
		if !slices.Equal(v.Shape().Dimensions, m.BaseShape()) {
			return fmt.Errorf("lora: Merge %s %s: base weight is %s, want dims %v", net.Component, m.Path, v.Shape(), m.BaseShape())
		}
		base, err := v.Value()
		if err != nil {
			return fmt.Errorf("lora: Merge %s %s: %w", net.Component, m.Path, err)
		}
		wv, err := float64s(base)
		if err != nil {
			return fmt.Errorf("lora: Merge %s %s: %w", net.Component, m.Path, err)
		}
		down, err := float64s(mw.Down)
		if err != nil {
			return fmt.Errorf("lora: Merge %s %s: %w", net.Component, m.Path, err)
		}
		up, err := float64s(mw.Up)
		if err != nil {
			return fmt.Errorf("lora: Merge %s %s: %w", net.Component, m.Path, err)
		}
		s := strength * m.Scale() * net.LayerMultiplier(m.Path)
		cols := m.In * m.Kernel * m.Kernel // down.flatten(1): [r, cols]; up.flatten(1): [out, r]
		for o := range m.Out {
			row := wv[o*cols : (o+1)*cols]
			for k := range m.Rank {
				f := s * up[o*m.Rank+k]
				if f == 0 {
					continue
				}
				d := down[k*cols : (k+1)*cols]
				for c := range row {
					row[c] += f * d[c]
				}
			}
		}
		t, err := tensorOf(v.DType(), wv, v.Shape().Dimensions)
		if err != nil {
			return fmt.Errorf("lora: Merge %s %s: %w", net.Component, m.Path, err)
		}
		if err := v.SetValue(t); err != nil {
			return fmt.Errorf("lora: Merge %s %s: %w", net.Component, m.Path, err)
		}
	}
	return nil
}
