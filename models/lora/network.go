package lora

import (
	"fmt"
	"sort"
	"strings"
)

// Kind is the kind of base layer a module adapts.
type Kind string

const (
	// Linear is a torch.nn.Linear: weight [out, in]; LoRA down [r, in], up [out, r].
	Linear Kind = "linear"
	// Conv is a torch.nn.Conv2d: weight [out, in, k, k]; LoCon down [r, in, k, k], up [out, r, 1, 1].
	Conv Kind = "conv"
)

// Components LOBA adapts, as named in a diffusers model folder.
const (
	UNet         = "unet"
	TextEncoder  = "text_encoder"
	TextEncoder2 = "text_encoder_2"
)

// Module is one adapted layer of a component (ports the per-layer LoRAModule of kohya's
// networks/lora.py / LECO's lora.py).
type Module struct {
	// Path is the diffusers module path under the component root, e.g.
	// "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q".
	Path string
	Kind Kind
	// In, Out are the base weight's sizes: [Out, In] (Linear) or [Out, In, Kernel, Kernel] (Conv).
	In, Out int
	// Kernel is 1 for Linear.
	Kernel int
	// Rank is the LoRA rank r; a conv rank is clamped to min(rank, In, Out) as LECO does.
	Rank int
	// Alpha is the LoRA alpha; the update is scaled by Alpha/Rank.
	Alpha float64
	// LRScale multiplies the learning rate of the module's weights (default 1).
	LRScale float64
	// LDMPath is the module's LDM/SAI path (UNet only: "input_blocks.1.1.proj_in"), used by the
	// SAI file layout; "" when the UNet layout could not be mapped.
	LDMPath string
}

// Scale is Alpha / Rank, the factor applied to up(down(x)).
func (m *Module) Scale() float64 { return m.Alpha / float64(m.Rank) }

// DownShape is the shape of lora_down.weight: [r, in] or [r, in, k, k].
func (m *Module) DownShape() []int {
	if m.Kind == Conv {
		return []int{m.Rank, m.In, m.Kernel, m.Kernel}
	}
	return []int{m.Rank, m.In}
}

// UpShape is the shape of lora_up.weight: [out, r] or [out, r, 1, 1].
func (m *Module) UpShape() []int {
	if m.Kind == Conv {
		return []int{m.Out, m.Rank, 1, 1}
	}
	return []int{m.Out, m.Rank}
}

// BaseShape is the shape of the adapted base weight.
func (m *Module) BaseShape() []int {
	if m.Kind == Conv {
		return []int{m.Out, m.In, m.Kernel, m.Kernel}
	}
	return []int{m.Out, m.In}
}

// KindName is the kind as the real/lora fixtures write it: "linear", "conv1x1", "conv3x3", …
func (m *Module) KindName() string {
	if m.Kind == Conv {
		return fmt.Sprintf("conv%dx%d", m.Kernel, m.Kernel)
	}
	return string(m.Kind)
}

// Network is the set of adapted modules of one component.
type Network struct {
	// Component is "unet", "text_encoder" or "text_encoder_2".
	Component string
	// Modules are sorted by Path.
	Modules []*Module

	// layerMultipliers maps module path → multiplier (SetLayerMultipliers); nil: every module 1.
	layerMultipliers map[string]float64
	// layerSelectors are the selector → multiplier map as set, for the files' metadata.
	layerSelectors map[string]float64
}

// Module returns the module at a diffusers path, or nil.
func (n *Network) Module(path string) *Module {
	i := sort.Search(len(n.Modules), func(i int) bool { return n.Modules[i].Path >= path })
	if i < len(n.Modules) && n.Modules[i].Path == path {
		return n.Modules[i]
	}
	return nil
}

// sortModules sorts the modules by path.
func (n *Network) sortModules() {
	sort.Slice(n.Modules, func(i, j int) bool { return n.Modules[i].Path < n.Modules[j].Path })
}

// File layouts of the kohya format.
const (
	// LayoutDiffusers names UNet modules by their diffusers path (kohya SD1.x, LECO, sliders, ai-toolkit).
	LayoutDiffusers = "diffusers"
	// LayoutSAI names UNet modules by their LDM/SAI path (kohya SDXL: lora_unet_input_blocks_4_1_…).
	LayoutSAI = "sai"
)

// KohyaPrefix is the kohya name prefix of a component: "lora_unet", "lora_te" (SD1.x/2.x text
// encoder), "lora_te1"/"lora_te2" (SDXL's two text encoders).
func KohyaPrefix(component string, sdxl bool) (string, error) {
	switch component {
	case UNet:
		return "lora_unet", nil
	case TextEncoder:
		if sdxl {
			return "lora_te1", nil
		}
		return "lora_te", nil
	case TextEncoder2:
		return "lora_te2", nil
	}
	return "", fmt.Errorf("lora: no kohya prefix for component %q (valid: %q, %q, %q)", component, UNet, TextEncoder, TextEncoder2)
}

// KohyaName is the kohya name of a module: prefix + "_" + path with "." → "_", where the UNet path
// is the diffusers path (LayoutDiffusers) or the LDM path (LayoutSAI). Text encoders always use
// transformers names (kohya does the same for SDXL's OpenCLIP text_encoder_2).
func (n *Network) KohyaName(m *Module, layout string, sdxl bool) (string, error) {
	prefix, err := KohyaPrefix(n.Component, sdxl)
	if err != nil {
		return "", err
	}
	path := m.Path
	switch layout {
	case "", LayoutDiffusers:
	case LayoutSAI:
		if n.Component == UNet {
			if m.LDMPath == "" {
				return "", fmt.Errorf("lora: module %s of %s has no SAI/LDM name (the UNet layout could not be mapped)", m.Path, n.Component)
			}
			path = m.LDMPath
		}
	default:
		return "", fmt.Errorf("lora: unknown layout %q (valid: %q, %q)", layout, LayoutDiffusers, LayoutSAI)
	}
	return prefix + "_" + strings.ReplaceAll(path, ".", "_"), nil
}
