package slider

import "github.com/loba-dev/loba/models/lora"

// TextEncoderNetwork is the adapter of the CLIP text encoders (network.text_encoder): LoRA on the
// Linear layers of their attention and MLP blocks (kohya's CLIPAttention and CLIPMLP), on every text
// encoder the model has (SDXL: both), saved with kohya's names lora_te_… (SD1.x) or lora_te1_… and
// lora_te2_… (SDXL). The adapter's prediction reads the target prompt's conditioning through the
// adapted encoders at the entry's multiplier; the references keep the frozen encoders' (cached). A
// partial denoise with the adapter (denoise_with_adapter) encodes both of its prompts through them.
// Off when Targets is "" (default).
type TextEncoderNetwork struct {
	// Targets: "" (off) | lierla (self_attn and mlp: kohya's default) | self_attn | mlp.
	Targets string `yaml:"targets" json:"targets"`
	// Rank and Alpha default to network.rank and network.alpha.
	Rank  int      `yaml:"rank" json:"rank"`
	Alpha *float64 `yaml:"alpha" json:"alpha"`
	// LRScale multiplies the learning rate of the text-encoder modules (default 1; kohya's
	// text_encoder_lr / unet_lr).
	LRScale *float64 `yaml:"lr_scale" json:"lr_scale"`
}

var validTextEncoderTargets = []string{"", "lierla", "self_attn", "mlp"}

// Enabled tells whether the preset trains a text-encoder adapter.
func (t TextEncoderNetwork) Enabled() bool { return t.Targets != "" }

// LoRATargets is the text-encoder targeting as models/lora resolves it (defaults filled in).
func (t TextEncoderNetwork) LoRATargets() lora.Targets {
	out := lora.Targets{Preset: lora.PresetLierLa, Rank: t.Rank}
	if t.Alpha != nil {
		out.Alpha = *t.Alpha
	}
	if t.Targets == "self_attn" || t.Targets == "mlp" {
		out.Preset = lora.PresetNone
		out.Selectors = []lora.Selector{{Match: t.Targets}}
	}
	return out
}

// fillDefaults sets the text encoder's rank, alpha and lr scale from the network's.
func (t *TextEncoderNetwork) fillDefaults(n *Network) {
	if !t.Enabled() {
		return
	}
	setInt(&t.Rank, n.Rank)
	if t.Alpha == nil {
		t.Alpha = ptr(*n.Alpha)
	}
	setPtr(&t.LRScale, 1)
}

// validateTextEncoder checks network.text_encoder and the UNet's "none".
func (p *Preset) validateTextEncoder(v *validator) {
	t := p.Network.TextEncoder
	v.enum("network.text_encoder.targets", t.Targets, validTextEncoderTargets)
	if p.Network.Targets == lora.PresetNone && !t.Enabled() {
		v.add("network.targets", "none trains no UNet module; give network.text_encoder.targets for a text-encoder-only adapter")
	}
	if !t.Enabled() {
		if t.Rank != 0 || t.Alpha != nil || t.LRScale != nil {
			v.add("network.text_encoder", "rank, alpha or lr_scale without targets; set network.text_encoder.targets (lierla, self_attn, mlp) to train the text encoders")
		}
		return
	}
	v.check(t.Rank >= 1, "network.text_encoder.rank", t.Rank, ">= 1")
	v.check(finite(*t.Alpha) && *t.Alpha > 0, "network.text_encoder.alpha", *t.Alpha, "> 0")
	v.check(finite(*t.LRScale) && *t.LRScale >= 0, "network.text_encoder.lr_scale", *t.LRScale, ">= 0")
}
