package weights

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Single-file checkpoint layouts: the config values that the LDM/SGM → diffusers key tables
// (singlefile_tables.go) are generated from. They are read from diffusers/transformers config.json
// files, never guessed from key strings.

// Single-file checkpoint kinds (see DetectSingleFile).
const (
	// SingleFileSD15 is a CompVis LDM checkpoint of SD 1.x (v1-5-pruned-emaonly.safetensors):
	// model.diffusion_model.* UNet, first_stage_model.* VAE, cond_stage_model.transformer.* CLIP-L.
	SingleFileSD15 = "sd15"
	// SingleFileSDXLBase is a Stability SGM checkpoint of SDXL base (sd_xl_base_1.0.safetensors):
	// model.diffusion_model.* UNet, first_stage_model.* VAE, conditioner.embedders.0.transformer.*
	// CLIP-L and conditioner.embedders.1.model.* OpenCLIP ViT-bigG.
	SingleFileSDXLBase = "sdxl_base"
)

// SingleFileUNet holds the UNet2DConditionModel config values the UNet key table depends on, with
// int-or-list config entries expanded to one value per down level.
type SingleFileUNet struct {
	BlockOutChannels []int    // block_out_channels, one per level
	LayersPerBlock   []int    // layers_per_block per down level (up blocks have one more, reversed)
	DownBlockTypes   []string // CrossAttnDownBlock2D | DownBlock2D
	UpBlockTypes     []string // CrossAttnUpBlock2D | UpBlock2D
	// TransformerLayersPerBlock is the depth of each down level's Transformer2DModel; up blocks use
	// it reversed and the mid block uses the last entry.
	TransformerLayersPerBlock []int
	// TextTimeEmbedding is addition_embed_type == "text_time" (SDXL): LDM label_emb.0.{0,2} ↔
	// add_embedding.linear_{1,2}.
	TextTimeEmbedding bool
}

// SingleFileVAE holds the AutoencoderKL config values the VAE key table depends on.
type SingleFileVAE struct {
	BlockOutChannels     []int // block_out_channels
	LayersPerBlock       int   // layers_per_block (the decoder has one more resnet per block)
	MidBlockAddAttention bool  // mid_block_add_attention (default true)
	UseQuantConv         bool  // use_quant_conv (default true)
	UsePostQuantConv     bool  // use_post_quant_conv (default true)
}

// SingleFileText describes one text encoder of a single file.
type SingleFileText struct {
	Component string // diffusers folder: "text_encoder" or "text_encoder_2"
	Prefix    string // key prefix in the single file, e.g. "cond_stage_model.transformer."
	// OpenCLIP is true when the single file uses open_clip naming (token_embedding,
	// transformer.resblocks.N.attn.in_proj_weight, …) instead of transformers naming.
	OpenCLIP       bool
	NumLayers      int  // num_hidden_layers
	HiddenSize     int  // hidden_size
	WithProjection bool // architectures has CLIPTextModelWithProjection: text_projection.weight
}

// SingleFileLayout is everything the key table of one single-file kind is generated from.
type SingleFileLayout struct {
	Kind       string // SingleFileSD15 or SingleFileSDXLBase
	UNetPrefix string // "model.diffusion_model."
	VAEPrefix  string // "first_stage_model."
	UNet       SingleFileUNet
	VAE        SingleFileVAE
	Text       []SingleFileText
}

// SD15Layout is the layout of v1-5-pruned(-emaonly).safetensors, built from the hub configs of
// runwayml/stable-diffusion-v1-5 (embedded from configs/, see singlefile_configs.go).
func SD15Layout() (*SingleFileLayout, error) { return sfEmbeddedLayout(SingleFileSD15) }

// SDXLBaseLayout is the layout of sd_xl_base_1.0.safetensors, built from the hub configs of
// stabilityai/stable-diffusion-xl-base-1.0 (embedded from configs/, see singlefile_configs.go).
func SDXLBaseLayout() (*SingleFileLayout, error) { return sfEmbeddedLayout(SingleFileSDXLBase) }

// SingleFileLayoutFor returns SD15Layout or SDXLBaseLayout for a kind from DetectSingleFile.
func SingleFileLayoutFor(kind string) (*SingleFileLayout, error) {
	switch kind {
	case SingleFileSD15, SingleFileSDXLBase:
		return sfEmbeddedLayout(kind)
	}
	return nil, fmt.Errorf("weights: unknown single-file kind %q (valid: %q, %q)", kind, SingleFileSD15, SingleFileSDXLBase)
}

func sfEmbeddedLayout(kind string) (*SingleFileLayout, error) {
	configs, err := singleFileConfigs()
	if err != nil {
		return nil, err
	}
	get := func(c string) []byte {
		s, ok := configs[kind+"/"+c]
		if !ok {
			return nil
		}
		return []byte(s)
	}
	return SingleFileLayoutFromConfigs(kind, get("unet"), get("vae"), get("text_encoder"), get("text_encoder_2"))
}

// SingleFileLayoutFromDir builds the layout of kind from the config.json files of a diffusers
// pipeline folder: unet/, vae/, text_encoder/ and, for SDXL, text_encoder_2/.
func SingleFileLayoutFromDir(kind, dir string) (*SingleFileLayout, error) {
	read := func(c string, required bool) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, c, "config.json"))
		if err != nil && (required || !os.IsNotExist(err)) {
			return nil, fmt.Errorf("weights: single-file layout %q: %w", kind, err)
		}
		return b, nil
	}
	unet, err := read("unet", true)
	if err != nil {
		return nil, err
	}
	vae, err := read("vae", true)
	if err != nil {
		return nil, err
	}
	te, err := read("text_encoder", true)
	if err != nil {
		return nil, err
	}
	te2, err := read("text_encoder_2", kind == SingleFileSDXLBase)
	if err != nil {
		return nil, err
	}
	return SingleFileLayoutFromConfigs(kind, unet, vae, te, te2)
}

// SingleFileLayoutFromConfigs builds the layout of kind from the config.json contents of the
// UNet, the VAE and the text encoder(s) (te2 is used only for SDXL).
func SingleFileLayoutFromConfigs(kind string, unet, vae, te, te2 []byte) (*SingleFileLayout, error) {
	l := &SingleFileLayout{Kind: kind, UNetPrefix: "model.diffusion_model.", VAEPrefix: "first_stage_model."}
	var err error
	if l.UNet, err = parseSingleFileUNet(unet); err != nil {
		return nil, fmt.Errorf("weights: single-file layout %q: unet/config.json: %w", kind, err)
	}
	if l.VAE, err = parseSingleFileVAE(vae); err != nil {
		return nil, fmt.Errorf("weights: single-file layout %q: vae/config.json: %w", kind, err)
	}
	switch kind {
	case SingleFileSD15:
		t, err := parseSingleFileText(te, "text_encoder", "cond_stage_model.transformer.", false)
		if err != nil {
			return nil, fmt.Errorf("weights: single-file layout %q: text_encoder/config.json: %w", kind, err)
		}
		l.Text = []SingleFileText{t}
	case SingleFileSDXLBase:
		t1, err := parseSingleFileText(te, "text_encoder", "conditioner.embedders.0.transformer.", false)
		if err != nil {
			return nil, fmt.Errorf("weights: single-file layout %q: text_encoder/config.json: %w", kind, err)
		}
		t2, err := parseSingleFileText(te2, "text_encoder_2", "conditioner.embedders.1.model.", true)
		if err != nil {
			return nil, fmt.Errorf("weights: single-file layout %q: text_encoder_2/config.json: %w", kind, err)
		}
		l.Text = []SingleFileText{t1, t2}
	default:
		return nil, fmt.Errorf("weights: unknown single-file kind %q (valid: %q, %q)", kind, SingleFileSD15, SingleFileSDXLBase)
	}
	return l, nil
}

// sfIntOrList decodes a config value that is an int or a list of ints.
type sfIntOrList []int

func (v *sfIntOrList) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		*v = nil
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*v = sfIntOrList{n}
		return nil
	}
	var l []int
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("want an int or a list of ints, got %s", b)
	}
	*v = l
	return nil
}

// perLevel expands a one-element list to n levels and checks the length.
func (v sfIntOrList) perLevel(key string, n int) ([]int, error) {
	if len(v) == 1 && n != 1 {
		out := make([]int, n)
		for i := range out {
			out[i] = v[0]
		}
		return out, nil
	}
	if len(v) != n {
		return nil, fmt.Errorf("%s has %d entries, want 1 or %d (one per level)", key, len(v), n)
	}
	return append([]int(nil), v...), nil
}

func sfJSON(b []byte, into any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return fmt.Errorf("empty config")
	}
	return json.Unmarshal(b, into)
}

// present reports whether a JSON object has key with a non-null value.
func sfPresent(raw map[string]json.RawMessage, key string) bool {
	v, ok := raw[key]
	return ok && string(bytes.TrimSpace(v)) != "null"
}

func parseSingleFileUNet(b []byte) (SingleFileUNet, error) {
	var c struct {
		BlockOutChannels          []int       `json:"block_out_channels"`
		LayersPerBlock            sfIntOrList `json:"layers_per_block"`
		DownBlockTypes            []string    `json:"down_block_types"`
		UpBlockTypes              []string    `json:"up_block_types"`
		TransformerLayersPerBlock sfIntOrList `json:"transformer_layers_per_block"`
		AdditionEmbedType         *string     `json:"addition_embed_type"`
		MidBlockType              *string     `json:"mid_block_type"`
	}
	var raw map[string]json.RawMessage
	if err := sfJSON(b, &c); err != nil {
		return SingleFileUNet{}, err
	}
	_ = json.Unmarshal(b, &raw)
	u := SingleFileUNet{BlockOutChannels: c.BlockOutChannels, DownBlockTypes: c.DownBlockTypes, UpBlockTypes: c.UpBlockTypes}
	n := len(c.BlockOutChannels)
	if n == 0 {
		return u, fmt.Errorf("block_out_channels is empty")
	}
	if len(c.DownBlockTypes) != n || len(c.UpBlockTypes) != n {
		return u, fmt.Errorf("down_block_types (%d) and up_block_types (%d) must have one entry per block_out_channels (%d)",
			len(c.DownBlockTypes), len(c.UpBlockTypes), n)
	}
	for i, t := range c.DownBlockTypes {
		if t != "CrossAttnDownBlock2D" && t != "DownBlock2D" {
			return u, fmt.Errorf("down_block_types[%d] = %q is not supported (valid: CrossAttnDownBlock2D, DownBlock2D)", i, t)
		}
	}
	for i, t := range c.UpBlockTypes {
		if t != "CrossAttnUpBlock2D" && t != "UpBlock2D" {
			return u, fmt.Errorf("up_block_types[%d] = %q is not supported (valid: CrossAttnUpBlock2D, UpBlock2D)", i, t)
		}
	}
	var err error
	if len(c.LayersPerBlock) == 0 {
		return u, fmt.Errorf("layers_per_block is missing")
	}
	if u.LayersPerBlock, err = c.LayersPerBlock.perLevel("layers_per_block", n); err != nil {
		return u, err
	}
	for i, l := range u.LayersPerBlock {
		if l < 1 {
			return u, fmt.Errorf("layers_per_block[%d] = %d must be positive", i, l)
		}
	}
	if len(c.TransformerLayersPerBlock) == 0 {
		c.TransformerLayersPerBlock = sfIntOrList{1} // diffusers' default
	}
	if u.TransformerLayersPerBlock, err = c.TransformerLayersPerBlock.perLevel("transformer_layers_per_block", n); err != nil {
		return u, err
	}
	for i, d := range u.TransformerLayersPerBlock {
		if d < 1 {
			return u, fmt.Errorf("transformer_layers_per_block[%d] = %d must be positive", i, d)
		}
	}
	if sfHasKey(raw, "mid_block_type") { // absent means diffusers' default UNetMidBlock2DCrossAttn
		switch {
		case c.MidBlockType == nil:
			return u, fmt.Errorf("mid_block_type = null (no mid block) is not supported (valid: UNetMidBlock2DCrossAttn)")
		case *c.MidBlockType != "UNetMidBlock2DCrossAttn":
			return u, fmt.Errorf("mid_block_type = %q is not supported (valid: UNetMidBlock2DCrossAttn)", *c.MidBlockType)
		}
	}
	if c.AdditionEmbedType != nil {
		if *c.AdditionEmbedType != "text_time" {
			return u, fmt.Errorf("addition_embed_type = %q is not supported (valid: null, \"text_time\")", *c.AdditionEmbedType)
		}
		u.TextTimeEmbedding = true
	}
	for _, k := range []string{"class_embed_type", "num_class_embeds", "encoder_hid_dim_type", "time_cond_proj_dim",
		"reverse_transformer_layers_per_block"} {
		if sfPresent(raw, k) {
			return u, fmt.Errorf("%s = %s is not supported by the single-file tables (valid: null)", k, raw[k])
		}
	}
	for _, k := range []string{"dual_cross_attention", "class_embeddings_concat"} {
		if sfPresent(raw, k) && string(bytes.TrimSpace(raw[k])) != "false" {
			return u, fmt.Errorf("%s = %s is not supported by the single-file tables (valid: false)", k, raw[k])
		}
	}
	return u, nil
}

func sfHasKey(raw map[string]json.RawMessage, key string) bool {
	_, ok := raw[key]
	return ok
}

func parseSingleFileVAE(b []byte) (SingleFileVAE, error) {
	var c struct {
		BlockOutChannels     []int    `json:"block_out_channels"`
		LayersPerBlock       *int     `json:"layers_per_block"`
		DownBlockTypes       []string `json:"down_block_types"`
		UpBlockTypes         []string `json:"up_block_types"`
		MidBlockAddAttention *bool    `json:"mid_block_add_attention"`
		UseQuantConv         *bool    `json:"use_quant_conv"`
		UsePostQuantConv     *bool    `json:"use_post_quant_conv"`
	}
	if err := sfJSON(b, &c); err != nil {
		return SingleFileVAE{}, err
	}
	orTrue := func(p *bool) bool { return p == nil || *p }
	v := SingleFileVAE{BlockOutChannels: c.BlockOutChannels, MidBlockAddAttention: orTrue(c.MidBlockAddAttention),
		UseQuantConv: orTrue(c.UseQuantConv), UsePostQuantConv: orTrue(c.UsePostQuantConv)}
	n := len(c.BlockOutChannels)
	if n == 0 {
		return v, fmt.Errorf("block_out_channels is empty")
	}
	if c.LayersPerBlock == nil || *c.LayersPerBlock < 1 {
		return v, fmt.Errorf("layers_per_block must be a positive int")
	}
	v.LayersPerBlock = *c.LayersPerBlock
	if len(c.DownBlockTypes) != n || len(c.UpBlockTypes) != n {
		return v, fmt.Errorf("down_block_types (%d) and up_block_types (%d) must have one entry per block_out_channels (%d)",
			len(c.DownBlockTypes), len(c.UpBlockTypes), n)
	}
	for i := range n {
		if c.DownBlockTypes[i] != "DownEncoderBlock2D" {
			return v, fmt.Errorf("down_block_types[%d] = %q is not supported (valid: DownEncoderBlock2D)", i, c.DownBlockTypes[i])
		}
		if c.UpBlockTypes[i] != "UpDecoderBlock2D" {
			return v, fmt.Errorf("up_block_types[%d] = %q is not supported (valid: UpDecoderBlock2D)", i, c.UpBlockTypes[i])
		}
	}
	return v, nil
}

func parseSingleFileText(b []byte, component, prefix string, openCLIP bool) (SingleFileText, error) {
	var c struct {
		Architectures []string `json:"architectures"`
		NumLayers     int      `json:"num_hidden_layers"`
		HiddenSize    int      `json:"hidden_size"`
	}
	t := SingleFileText{Component: component, Prefix: prefix, OpenCLIP: openCLIP}
	if err := sfJSON(b, &c); err != nil {
		return t, err
	}
	if c.NumLayers < 1 || c.HiddenSize < 1 {
		return t, fmt.Errorf("num_hidden_layers (%d) and hidden_size (%d) must be positive", c.NumLayers, c.HiddenSize)
	}
	t.NumLayers, t.HiddenSize = c.NumLayers, c.HiddenSize
	for _, a := range c.Architectures {
		switch a {
		case "CLIPTextModelWithProjection":
			t.WithProjection = true
		case "CLIPTextModel":
		default:
			return t, fmt.Errorf("architectures = %q is not supported (valid: CLIPTextModel, CLIPTextModelWithProjection)",
				strings.Join(c.Architectures, ", "))
		}
	}
	return t, nil
}
