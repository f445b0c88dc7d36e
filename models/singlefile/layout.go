// Package singlefile reads and writes LDM/SGM single-file checkpoints (v1-5-pruned-emaonly.safetensors,
// sd_xl_base_1.0.safetensors) as diffusers components, like diffusers' FromSingleFileMixin: Detect
// tells the kind of a file from its tensor names, a Layout holds the real configs of its networks
// (unet.Config, vae.Config, clip.Config, parsed by those packages from config.json files: the
// built-in hub configs of each kind in configs/, or a pipeline folder), and the Layout's Table,
// generated in loops from those configs, renames every tensor and tells how to rearrange it. Load,
// LoadInto and Check report every missing, unexpected and mis-shaped key together before any data
// is read; Save writes the inverse.
//
// The package sits above models/unet, models/vae and models/clip and uses their configs and checks
// as they are: a config those packages accept has a table here, and one they reject is rejected
// with their message.
package singlefile

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/unet"
	"github.com/loba-dev/loba/models/vae"
)

// Single-file checkpoint kinds (see Detect).
const (
	// KindSD15 is a CompVis LDM checkpoint of SD 1.x (v1-5-pruned-emaonly.safetensors):
	// model.diffusion_model.* UNet, first_stage_model.* VAE, cond_stage_model.transformer.* CLIP-L.
	KindSD15 = "sd15"
	// KindSDXLBase is a Stability SGM checkpoint of SDXL base (sd_xl_base_1.0.safetensors):
	// model.diffusion_model.* UNet, first_stage_model.* VAE, conditioner.embedders.0.transformer.*
	// CLIP-L and conditioner.embedders.1.model.* OpenCLIP ViT-bigG.
	KindSDXLBase = "sdxl_base"
)

// TextEncoder is one text encoder of a single file.
type TextEncoder struct {
	Component string // diffusers folder: "text_encoder" or "text_encoder_2"
	Prefix    string // key prefix in the single file, e.g. "cond_stage_model.transformer."
	// OpenCLIP is true when the single file uses open_clip naming (token_embedding,
	// transformer.resblocks.N.attn.in_proj_weight, …) instead of transformers naming.
	OpenCLIP bool
	// Config is the encoder's CLIPTextConfig: num_hidden_layers and architectures
	// (CLIPTextModelWithProjection adds text_projection) fix its keys.
	Config *clip.Config
}

// Layout is everything the key table of one single-file kind is generated from: the key prefixes
// and the real configs of the networks.
type Layout struct {
	Kind       string // KindSD15 or KindSDXLBase
	UNetPrefix string // "model.diffusion_model."
	VAEPrefix  string // "first_stage_model."
	UNet       *unet.Config
	VAE        *vae.Config
	Text       []TextEncoder
}

// kindTextEncoders are the text encoders of each kind, without their configs.
var kindTextEncoders = map[string][]TextEncoder{
	KindSD15: {{Component: "text_encoder", Prefix: "cond_stage_model.transformer."}},
	KindSDXLBase: {{Component: "text_encoder", Prefix: "conditioner.embedders.0.transformer."},
		{Component: "text_encoder_2", Prefix: "conditioner.embedders.1.model.", OpenCLIP: true}},
}

func unknownKind(kind string) error {
	return fmt.Errorf("singlefile: unknown single-file kind %q (valid: %q, %q)", kind, KindSD15, KindSDXLBase)
}

// SD15Layout is the layout of v1-5-pruned(-emaonly).safetensors, built from the hub configs of
// runwayml/stable-diffusion-v1-5 (embedded from configs/, see configs.go).
func SD15Layout() (*Layout, error) { return LayoutFor(KindSD15) }

// SDXLBaseLayout is the layout of sd_xl_base_1.0.safetensors, built from the hub configs of
// stabilityai/stable-diffusion-xl-base-1.0 (embedded from configs/, see configs.go).
func SDXLBaseLayout() (*Layout, error) { return LayoutFor(KindSDXLBase) }

// LayoutFor returns the layout of a kind from Detect, built from its built-in hub configs
// (SD15Layout, SDXLBaseLayout).
func LayoutFor(kind string) (*Layout, error) {
	return layoutFrom(kind, func(component string) ([]byte, error) { return BuiltinConfig(kind, component) })
}

// LayoutFromDir builds the layout of kind from the config.json files of a diffusers pipeline
// folder: unet/, vae/, text_encoder/ and, for SDXL, text_encoder_2/.
func LayoutFromDir(kind, dir string) (*Layout, error) {
	return layoutFrom(kind, func(component string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, component, "config.json"))
		if err != nil {
			return nil, fmt.Errorf("singlefile: single-file layout %q: %w", kind, err)
		}
		return b, nil
	})
}

// layoutFrom builds the layout of kind from the config.json contents read returns per component.
func layoutFrom(kind string, read func(component string) ([]byte, error)) (*Layout, error) {
	if _, ok := kindTextEncoders[kind]; !ok {
		return nil, unknownKind(kind)
	}
	configs := map[string][]byte{}
	for _, comp := range components(kind) {
		b, err := read(comp)
		if err != nil {
			return nil, err
		}
		configs[comp] = b
	}
	return LayoutFromConfigs(kind, configs["unet"], configs["vae"], configs["text_encoder"], configs["text_encoder_2"])
}

// components lists the diffusers components of a kind: unet, vae and its text encoders.
func components(kind string) []string {
	out := []string{"unet", "vae"}
	for _, te := range kindTextEncoders[kind] {
		out = append(out, te.Component)
	}
	return out
}

// LayoutFromConfigs builds the layout of kind from the config.json contents of the UNet, the VAE
// and the text encoder(s) (te2 is used only for SDXL), parsed and validated by unet.ParseConfig,
// vae.ParseConfig and clip.ParseConfig.
func LayoutFromConfigs(kind string, unetJSON, vaeJSON, te, te2 []byte) (*Layout, error) {
	encoders, ok := kindTextEncoders[kind]
	if !ok {
		return nil, unknownKind(kind)
	}
	l := &Layout{Kind: kind, UNetPrefix: "model.diffusion_model.", VAEPrefix: "first_stage_model."}
	configErr := func(component string, err error) error {
		return fmt.Errorf("singlefile: single-file layout %q: %s/config.json: %w", kind, component, err)
	}
	var err error
	if l.UNet, err = unet.ParseConfig(unetJSON); err != nil {
		return nil, configErr("unet", err)
	}
	if l.VAE, err = vae.ParseConfig(vaeJSON); err != nil {
		return nil, configErr("vae", err)
	}
	for i, enc := range encoders {
		if enc.Config, err = clip.ParseConfig([][]byte{te, te2}[i]); err != nil {
			return nil, configErr(enc.Component, err)
		}
		l.Text = append(l.Text, enc)
	}
	return l, nil
}

// validate checks the layout's configs as their packages do, so that a hand-built layout gives an
// error, not a panic, when its table is generated.
func (l *Layout) validate() error {
	if l.UNet == nil || l.VAE == nil {
		return fmt.Errorf("the layout needs a UNet and a VAE config")
	}
	if err := l.UNet.Validate(); err != nil {
		return fmt.Errorf("unet: %w", err)
	}
	if err := l.VAE.Validate(); err != nil {
		return fmt.Errorf("vae: %w", err)
	}
	for _, te := range l.Text {
		if te.Config == nil {
			return fmt.Errorf("%s: no config", te.Component)
		}
		if err := te.Config.Validate(); err != nil {
			return fmt.Errorf("%s: %w", te.Component, err)
		}
	}
	return nil
}
