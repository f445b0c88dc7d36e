package lora

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/safetensors"
)

// SavePEFT writes the networks' current weights (read from ctxRoot) in the diffusers/PEFT layout
// that diffusers' load_lora_weights reads: "<component>.<module path>.lora_A.weight" ([r, in] or
// [r, in, k, k], the kohya lora_down) and "<component>.<module path>.lora_B.weight" ([out, r] or
// [out, r, 1, 1], the kohya lora_up).
//
// PEFT files carry no alpha: diffusers builds the LoraConfig with lora_alpha = r (scale 1) when a
// state dict has no alphas. So the scale α/r is folded into lora_B (B' = (α/r)·B), which makes
// W + s·B'·A equal kohya's W + s·(α/r)·up·down (with layer multipliers, B' = (α·m_l/r)·B). This is exact whenever all modules share one rank;
// with several ranks diffusers takes lora_alpha from the first module's rank, so prefer the kohya
// file (SaveKohya, which diffusers also loads) for mixed-rank networks. The metadata holds
// "format": "pt", "loba.peft_alpha": "folded_into_lora_B" and opts.Metadata. Only opts.DType and
// opts.Metadata are used.
func SavePEFT(ctxRoot *model.Scope, path string, nets []*Network, opts SaveOptions) error {
	dt := opts.DType
	if dt == "" {
		dt = safetensors.F16
	}
	if dt != safetensors.F32 && dt != safetensors.F16 && dt != safetensors.BF16 {
		return fmt.Errorf("lora: SavePEFT %s: SaveOptions.DType %q is not supported (valid: %s, %s, %s)", path, dt, safetensors.F32, safetensors.F16, safetensors.BF16)
	}
	if len(nets) == 0 {
		return fmt.Errorf("lora: SavePEFT %s: no network", path)
	}
	var entries []safetensors.Entry
	for _, n := range nets {
		if strings.ContainsAny(n.Component, ". ") || n.Component == "" {
			return fmt.Errorf("lora: SavePEFT %s: bad component name %q", path, n.Component)
		}
		w, err := n.Weights(ctxRoot)
		if err != nil {
			return fmt.Errorf("lora: SavePEFT %s: %w", path, err)
		}
		for _, m := range n.Modules {
			p := n.Component + "." + m.Path
			es, err := moduleEntries(p+".lora_A.weight", p+".lora_B.weight", n, m, w, dt, m.Scale()*n.LayerMultiplier(m.Path))
			if err != nil {
				return fmt.Errorf("lora: SavePEFT %s: %w", path, err)
			}
			entries = append(entries, es...)
		}
	}
	md := map[string]string{"format": "pt", "loba.peft_alpha": "folded_into_lora_B"}
	if lm := layerMultipliersMeta(nets); lm != "" {
		md[MetaLayerMultipliers] = lm
	}
	for k, v := range opts.Metadata {
		md[k] = v
	}
	return safetensors.WriteEntries(path, entries, md)
}
