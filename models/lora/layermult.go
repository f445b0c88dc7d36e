package lora

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// MetaLayerMultipliers is the metadata key under which SaveKohya and SavePEFT record the per-layer
// multipliers of the networks they write: a JSON object component → selector → multiplier, e.g.
// {"unet":{"attn2":0.5,"mid_block":2}}. It is informative only: the file's alphas (kohya) or
// lora_B weights (PEFT) already include the multipliers, so a loader must not apply them again.
const MetaLayerMultipliers = "loba_layer_multipliers"

// SetLayerMultipliers sets the per-layer multipliers of the network (U-LOBA's per-layer schedule,
// docs/ALGORITHMS.md §5): selector → multiplier m ≥ 0, each selector in Selector.Match's syntax (a
// module type such as "attn2", a block or module path such as "mid_block" or "up_blocks.*", or
// "re:<regexp>"). A module's multiplier is the product of the values of every selector that matches
// it (1 when none does), so "attn2": 2 and "mid_block": 0.5 give the mid block's attn2 modules 1.
//
// The multiplier scales the module's update in the Adapter's forward — m_l·s·(α/r)·up(down(x)) with
// s the run multiplier — and in Merge, and SaveKohya writes it into the file as a scaled alpha
// (α·m_l), so that every loader computes W' = W + s·(α·m_l/r)·up@down. A module with m_l = 0 is still
// written, with its alpha unchanged and its lora_up zeroed: kohya's sd-scripts reads an alpha of 0
// as alpha = rank (networks/lora.py LoRAModule: `alpha = lora_dim if alpha is None or alpha == 0`),
// which would apply the module at full strength. SavePEFT folds α·m_l/r into lora_B.
//
// The values are read when a graph is built: set them before building the training graphs. The
// call replaces the previous multipliers; a nil or empty map removes them (every module 1, the
// graphs and files exactly as without). Errors name the selector: a negative, NaN or infinite
// value, a malformed selector, or a block/module path that matches no module of the network (a
// module type or regexp may match none, e.g. "attn2" on a text encoder).
func (n *Network) SetLayerMultipliers(multipliers map[string]float64) error {
	perModule := map[string]float64{}
	keys := slices.Sorted(maps.Keys(multipliers))
	for _, sel := range keys {
		v := multipliers[sel]
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("lora: layer multipliers of %s: selector %q has multiplier %g (want a finite value ≥ 0)", n.Component, sel, v)
		}
		match, isType, err := Selector{Match: sel}.matcher()
		if err != nil {
			return fmt.Errorf("lora: layer multipliers of %s: %w", n.Component, err)
		}
		found := 0
		for _, m := range n.Modules {
			if !match(m, strings.Split(m.Path, ".")) {
				continue
			}
			found++
			prev, ok := perModule[m.Path]
			if !ok {
				prev = 1
			}
			perModule[m.Path] = prev * v
		}
		if found == 0 && !isType {
			return fmt.Errorf("lora: layer multipliers of %s: selector %q matches no module of the network (%d modules)", n.Component, sel, len(n.Modules))
		}
	}
	if len(multipliers) == 0 {
		n.layerMultipliers, n.layerSelectors = nil, nil
		return nil
	}
	n.layerMultipliers, n.layerSelectors = perModule, maps.Clone(multipliers)
	return nil
}

// LayerMultiplier is the multiplier of the module at path (SetLayerMultipliers): 1 when none is set.
func (n *Network) LayerMultiplier(path string) float64 {
	if m, ok := n.layerMultipliers[path]; ok {
		return m
	}
	return 1
}

// LayerMultipliers returns a copy of the selector → multiplier map last set, or nil.
func (n *Network) LayerMultipliers() map[string]float64 { return maps.Clone(n.layerSelectors) }

// fileAlpha is what a file stores for module m: the alpha α·m_l and the factor of lora_up (1, or 0
// for a module whose multiplier is 0, see SetLayerMultipliers).
func (n *Network) fileAlpha(m *Module) (alpha, upScale float64) {
	switch mult := n.LayerMultiplier(m.Path); mult {
	case 1:
		return m.Alpha, 1
	case 0:
		return m.Alpha, 0
	default:
		return m.Alpha * mult, 1
	}
}

// layerMultipliersMeta is the MetaLayerMultipliers value for nets, or "" when none has multipliers.
func layerMultipliersMeta(nets []*Network) string {
	all := map[string]map[string]float64{}
	for _, n := range nets {
		if len(n.layerSelectors) > 0 {
			all[n.Component] = n.layerSelectors
		}
	}
	if len(all) == 0 {
		return ""
	}
	b, _ := json.Marshal(all) // map keys sorted: the same multipliers give the same bytes
	return string(b)
}
