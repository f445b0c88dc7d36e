package unet

import (
	"errors"
	"fmt"
	"strings"

	"github.com/loba-dev/loba/models/config"
)

// Config is diffusers' UNet2DConditionModel config (unets/unet_2d_condition.py @ 58eb52c0), with the
// keys of config.json as JSON tags. LoadConfig starts from DefaultConfig, so keys missing from a file
// (old configs such as SD1.5's carry only 24 of them) keep diffusers' defaults; keys Config has no
// field for are accepted and recorded in Unused (see package models/config).
//
// Only the branches that SD1.x, SD2.x and SDXL use are supported; Validate rejects every other value
// and names the key, the value and the valid values. Keys that the supported blocks never read
// (dropout, resnet_skip_time_act, resnet_out_scale_factor, cross_attention_norm,
// addition_embed_type_num_heads, mid_block_only_cross_attention, sample_size) are accepted as they are,
// as in diffusers.
type Config struct {
	ClassName        string `json:"_class_name,omitempty"`
	DiffusersVersion string `json:"_diffusers_version,omitempty"`

	SampleSize        IntOrList `json:"sample_size"`
	InChannels        int       `json:"in_channels"`
	OutChannels       int       `json:"out_channels"`
	CenterInputSample bool      `json:"center_input_sample"`
	FlipSinToCos      bool      `json:"flip_sin_to_cos"`
	FreqShift         float64   `json:"freq_shift"`

	DownBlockTypes     []string   `json:"down_block_types"`
	MidBlockType       *string    `json:"mid_block_type"` // nil: no mid block
	UpBlockTypes       []string   `json:"up_block_types"`
	OnlyCrossAttention BoolOrList `json:"only_cross_attention"`

	BlockOutChannels    []int     `json:"block_out_channels"`
	LayersPerBlock      IntOrList `json:"layers_per_block"`
	DownsamplePadding   int       `json:"downsample_padding"`
	MidBlockScaleFactor float64   `json:"mid_block_scale_factor"`
	Dropout             float64   `json:"dropout"`
	ActFn               string    `json:"act_fn"`
	NormNumGroups       *int      `json:"norm_num_groups"`
	NormEps             float64   `json:"norm_eps"`
	CrossAttentionDim   IntOrList `json:"cross_attention_dim"`

	TransformerLayersPerBlock        LayerCounts `json:"transformer_layers_per_block"`
	ReverseTransformerLayersPerBlock LayerCounts `json:"reverse_transformer_layers_per_block"`

	EncoderHidDim     *int    `json:"encoder_hid_dim"`
	EncoderHidDimType *string `json:"encoder_hid_dim_type"`

	// AttentionHeadDim is, for legacy reasons, the NUMBER OF HEADS per level (diffusers issue 2011),
	// unless NumAttentionHeads is set.
	AttentionHeadDim  IntOrList `json:"attention_head_dim"`
	NumAttentionHeads IntOrList `json:"num_attention_heads"`

	DualCrossAttention  bool    `json:"dual_cross_attention"`
	UseLinearProjection bool    `json:"use_linear_projection"`
	ClassEmbedType      *string `json:"class_embed_type"`
	AdditionEmbedType   *string `json:"addition_embed_type"`
	// AdditionTimeEmbedDim is the sinusoidal size of each SDXL time id (add_time_proj).
	AdditionTimeEmbedDim *int `json:"addition_time_embed_dim"`
	NumClassEmbeds       *int `json:"num_class_embeds"`
	UpcastAttention      bool `json:"upcast_attention"`

	ResnetTimeScaleShift string  `json:"resnet_time_scale_shift"`
	ResnetSkipTimeAct    bool    `json:"resnet_skip_time_act"`
	ResnetOutScaleFactor float64 `json:"resnet_out_scale_factor"`

	TimeEmbeddingType  string  `json:"time_embedding_type"`
	TimeEmbeddingDim   *int    `json:"time_embedding_dim"`
	TimeEmbeddingActFn *string `json:"time_embedding_act_fn"`
	TimestepPostAct    *string `json:"timestep_post_act"`
	TimeCondProjDim    *int    `json:"time_cond_proj_dim"`
	ConvInKernel       int     `json:"conv_in_kernel"`
	ConvOutKernel      int     `json:"conv_out_kernel"`
	// ProjectionClassEmbeddingsInputDim is the input size of SDXL's add_embedding:
	// pooled text embeds + len(time_ids)·addition_time_embed_dim.
	ProjectionClassEmbeddingsInputDim *int    `json:"projection_class_embeddings_input_dim"`
	AttentionType                     string  `json:"attention_type"`
	ClassEmbeddingsConcat             bool    `json:"class_embeddings_concat"`
	MidBlockOnlyCrossAttention        *bool   `json:"mid_block_only_cross_attention"`
	CrossAttentionNorm                *string `json:"cross_attention_norm"`
	AdditionEmbedTypeNumHeads         int     `json:"addition_embed_type_num_heads"`

	// Unused lists the keys of the parsed config.json that Config has no field for, sorted, without
	// the "_" metadata keys. They do not change the model; `loba inspect` reports them.
	Unused []string `json:"-"`
}

// Block type names accepted in down_block_types, up_block_types and mid_block_type (a "UNetRes"
// prefix is stripped, as diffusers does).
const (
	typeCrossAttnDown = "CrossAttnDownBlock2D"
	typeDown          = "DownBlock2D"
	typeCrossAttnUp   = "CrossAttnUpBlock2D"
	typeUp            = "UpBlock2D"
	typeMidCrossAttn  = "UNetMidBlock2DCrossAttn"
	typeMid           = "UNetMidBlock2D"
)

var (
	validDownBlocks  = []string{typeCrossAttnDown, typeDown}
	validUpBlocks    = []string{typeCrossAttnUp, typeUp}
	validMidBlocks   = []string{typeMidCrossAttn, typeMid, "null"}
	validActivations = []string{"silu", "swish", "gelu"}
)

func strPtr(s string) *string { return &s }
func intPtr(i int) *int       { return &i }

// DefaultConfig is UNet2DConditionModel's constructor defaults (the SD1.x layout), what diffusers
// uses for every key a config.json leaves out.
func DefaultConfig() *Config {
	return &Config{
		InChannels:                4,
		OutChannels:               4,
		FlipSinToCos:              true,
		DownBlockTypes:            []string{typeCrossAttnDown, typeCrossAttnDown, typeCrossAttnDown, typeDown},
		MidBlockType:              strPtr(typeMidCrossAttn),
		UpBlockTypes:              []string{typeUp, typeCrossAttnUp, typeCrossAttnUp, typeCrossAttnUp},
		OnlyCrossAttention:        BoolOrList{Values: []bool{false}},
		BlockOutChannels:          []int{320, 640, 1280, 1280},
		LayersPerBlock:            Int(2),
		DownsamplePadding:         1,
		MidBlockScaleFactor:       1,
		ActFn:                     "silu",
		NormNumGroups:             intPtr(32),
		NormEps:                   1e-5,
		CrossAttentionDim:         Int(1280),
		TransformerLayersPerBlock: LayerCounts{Levels: []IntOrList{Int(1)}},
		AttentionHeadDim:          Int(8),
		ResnetTimeScaleShift:      "default",
		ResnetOutScaleFactor:      1,
		TimeEmbeddingType:         "positional",
		ConvInKernel:              3,
		ConvOutKernel:             3,
		AttentionType:             "default",
		AdditionEmbedTypeNumHeads: 64,
	}
}

// SD15 is the config of runwayml/stable-diffusion-v1-5's unet (also SD1.x in general).
func SD15() *Config {
	c := DefaultConfig()
	c.ClassName = "UNet2DConditionModel"
	c.SampleSize = Int(64)
	c.CrossAttentionDim = Int(768)
	return c
}

// SD2 is the config of stabilityai/stable-diffusion-2(-1)'s unet: heads [5, 10, 20, 20] (head size
// 64), OpenCLIP-H context 1024, linear projections, upcast attention (768-v models).
func SD2() *Config {
	c := SD15()
	c.SampleSize = Int(96)
	c.CrossAttentionDim = Int(1024)
	c.AttentionHeadDim = IntList(5, 10, 20, 20)
	c.UseLinearProjection = true
	c.UpcastAttention = true
	return c
}

// SDXLBase is the config of stabilityai/stable-diffusion-xl-base-1.0's unet.
func SDXLBase() *Config {
	c := DefaultConfig()
	c.ClassName = "UNet2DConditionModel"
	c.SampleSize = Int(128)
	c.DownBlockTypes = []string{typeDown, typeCrossAttnDown, typeCrossAttnDown}
	c.UpBlockTypes = []string{typeCrossAttnUp, typeCrossAttnUp, typeUp}
	c.BlockOutChannels = []int{320, 640, 1280}
	c.CrossAttentionDim = Int(2048)
	c.AttentionHeadDim = IntList(5, 10, 20)
	c.TransformerLayersPerBlock = LayerCounts{List: true, Levels: []IntOrList{Int(1), Int(2), Int(10)}}
	c.UseLinearProjection = true
	c.AdditionEmbedType = strPtr("text_time")
	c.AdditionTimeEmbedDim = intPtr(256)
	c.ProjectionClassEmbeddingsInputDim = intPtr(2816)
	return c
}

// LoadConfig reads a diffusers UNet config.json over DefaultConfig and validates it. Errors name the file.
func LoadConfig(path string) (*Config, error) { return config.Load(path, ParseConfig) }

// ParseConfig decodes config.json content over DefaultConfig, records the unknown keys in Unused and
// validates it.
func ParseConfig(data []byte) (*Config, error) {
	cfg := DefaultConfig()
	unused, err := config.Decode(data, cfg)
	if err != nil {
		return nil, fmt.Errorf("bad UNet config JSON: %w", err)
	}
	cfg.Unused = unused
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func quoteAll(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		if v == "null" {
			q[i] = v
		} else {
			q[i] = fmt.Sprintf("%q", v)
		}
	}
	return strings.Join(q, ", ")
}

func contains(vals []string, v string) bool {
	for _, x := range vals {
		if x == v {
			return true
		}
	}
	return false
}

func showPtr[T any](p *T) string {
	if p == nil {
		return "null"
	}
	if s, ok := any(*p).(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(*p)
}

// problems collects the config problems a validator finds; Validate reports them all together.
type problems []error

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Errorf(format, args...)) }

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("invalid UNet2DConditionModel config: %w", errors.Join(p...))
}

// Validate checks that the config describes a UNet this package can build, as diffusers'
// constructor would, and rejects every value outside the SD1.x/SD2.x/SDXL branches. All problems are
// reported together; each names the key, the value and the valid values.
func (c *Config) Validate() error {
	var p problems
	c.validateBlocks(&p)
	c.validateChannels(&p)
	c.validateLayersPerBlock(&p)
	c.validateAttentionLists(&p)
	c.validateTransformerLayers(&p)
	c.validateKernels(&p)
	c.validateBranches(&p)
	c.validateAdditionEmbed(&p)
	if len(p) == 0 {
		c.validateHeads(&p)
	}
	return p.err()
}

// ValidateStructure checks only the keys the block structure, and so the weight names, follow from:
// _class_name, the block types, block_out_channels, layers_per_block and
// transformer_layers_per_block (with reverse_transformer_layers_per_block), with Validate's
// messages. It is for configs assembled from weight names rather than read from a config.json,
// which leave sizes such as norm_num_groups or attention_head_dim at their defaults.
func (c *Config) ValidateStructure() error {
	var p problems
	c.validateBlocks(&p)
	c.validateLayersPerBlock(&p)
	c.validateTransformerLayers(&p)
	return p.err()
}

// validateBlocks checks _class_name, the block types and that block_out_channels has one positive
// entry per level.
func (c *Config) validateBlocks(p *problems) {
	if c.ClassName != "" && c.ClassName != "UNet2DConditionModel" {
		p.add("_class_name = %q is not supported (valid: \"UNet2DConditionModel\")", c.ClassName)
	}
	n := len(c.DownBlockTypes)
	if n == 0 {
		p.add("down_block_types is empty (want one entry per level, each one of %s)", quoteAll(validDownBlocks))
	}
	for i, t := range c.DownBlockTypes {
		if !contains(validDownBlocks, strings.TrimPrefix(t, "UNetRes")) {
			p.add("down_block_types[%d] = %q is not supported (valid: %s)", i, t, quoteAll(validDownBlocks))
		}
	}
	for i, t := range c.UpBlockTypes {
		if !contains(validUpBlocks, strings.TrimPrefix(t, "UNetRes")) {
			p.add("up_block_types[%d] = %q is not supported (valid: %s)", i, t, quoteAll(validUpBlocks))
		}
	}
	if c.MidBlockType != nil && !contains(validMidBlocks[:2], *c.MidBlockType) {
		p.add("mid_block_type = %q is not supported (valid: %s)", *c.MidBlockType, quoteAll(validMidBlocks))
	}
	if len(c.UpBlockTypes) != n {
		p.add("up_block_types has %d entries, down_block_types %d: they must have the same length", len(c.UpBlockTypes), n)
	}
	if len(c.BlockOutChannels) != n {
		p.add("block_out_channels = %v has %d entries, down_block_types %d: they must have the same length", c.BlockOutChannels, len(c.BlockOutChannels), n)
	}
	for i, ch := range c.BlockOutChannels {
		if ch <= 0 {
			p.add("block_out_channels[%d] = %d must be > 0", i, ch)
		}
	}
}

// validateChannels checks in/out_channels, the group norms and the activations.
func (c *Config) validateChannels(p *problems) {
	if c.InChannels <= 0 {
		p.add("in_channels = %d must be > 0", c.InChannels)
	}
	if c.OutChannels <= 0 {
		p.add("out_channels = %d must be > 0", c.OutChannels)
	}
	if c.NormNumGroups == nil {
		p.add("norm_num_groups = null is not supported (valid: a positive number of groups dividing every block_out_channels entry)")
	} else if g := *c.NormNumGroups; g <= 0 {
		p.add("norm_num_groups = %d must be > 0", g)
	} else {
		for i, ch := range c.BlockOutChannels {
			if ch > 0 && ch%g != 0 {
				p.add("norm_num_groups = %d does not divide block_out_channels[%d] = %d", g, i, ch)
			}
		}
	}
	if !(c.NormEps > 0) {
		p.add("norm_eps = %g must be > 0", c.NormEps)
	}
	if !contains(validActivations, c.ActFn) {
		p.add("act_fn = %q is not supported (valid: %s)", c.ActFn, quoteAll(validActivations))
	}
	for _, kv := range []struct {
		key string
		val *string
	}{{"time_embedding_act_fn", c.TimeEmbeddingActFn}, {"timestep_post_act", c.TimestepPostAct}} {
		if kv.val != nil && !contains(validActivations, *kv.val) {
			p.add("%s = %q is not supported (valid: null, %s)", kv.key, *kv.val, quoteAll(validActivations))
		}
	}
}

// validatePerLevel checks a per-level list: a scalar, or one entry per level (down_block_types),
// every entry > 0 when positive.
func (c *Config) validatePerLevel(p *problems, key string, l IntOrList, positive bool) {
	n := len(c.DownBlockTypes)
	if l.IsList && len(l.Values) != n {
		p.add("%s = %s has %d entries, down_block_types %d: give a single number or one per level", key, l, len(l.Values), n)
	}
	if !l.IsList && len(l.Values) != 1 {
		p.add("%s = %s: want a number or a list of numbers", key, l)
	}
	if positive {
		for i, v := range l.Values {
			if v <= 0 {
				p.add("%s[%d] = %d must be > 0", key, i, v)
			}
		}
	}
}

func (c *Config) validateLayersPerBlock(p *problems) {
	c.validatePerLevel(p, "layers_per_block", c.LayersPerBlock, true)
}

// validateAttentionLists checks cross_attention_dim, the heads and only_cross_attention.
func (c *Config) validateAttentionLists(p *problems) {
	n := len(c.DownBlockTypes)
	c.validatePerLevel(p, "cross_attention_dim", c.CrossAttentionDim, true)
	if c.NumAttentionHeads.IsNull() {
		c.validatePerLevel(p, "attention_head_dim", c.AttentionHeadDim, true)
	} else {
		c.validatePerLevel(p, "num_attention_heads", c.NumAttentionHeads, true)
	}
	for i, v := range c.CrossAttentionDim.Values {
		if v != c.CrossAttentionDim.Values[0] {
			p.add("cross_attention_dim[%d] = %d differs from cross_attention_dim[0] = %d: one encoder_hidden_states feeds every block, so all entries must be equal", i, v, c.CrossAttentionDim.Values[0])
		}
	}
	if c.OnlyCrossAttention.IsList && len(c.OnlyCrossAttention.Values) != n {
		p.add("only_cross_attention has %d entries, down_block_types %d", len(c.OnlyCrossAttention.Values), n)
	}
	for _, v := range c.OnlyCrossAttention.Values {
		if v {
			p.add("only_cross_attention = %s is not supported (valid: false)", c.OnlyCrossAttention)
			break
		}
	}
}

// validateTransformerLayers checks transformer_layers_per_block and
// reverse_transformer_layers_per_block against the attentions of each level.
func (c *Config) validateTransformerLayers(p *problems) {
	n := len(c.DownBlockTypes)
	lpbOK := (c.LayersPerBlock.IsList && len(c.LayersPerBlock.Values) == n) || (!c.LayersPerBlock.IsList && len(c.LayersPerBlock.Values) == 1)
	downAttn := func(i int) int { return c.LayersPerBlock.At(i) }
	upAttn := func(i int) int { return c.LayersPerBlock.At(n-1-i) + 1 }
	if !lpbOK {
		downAttn, upAttn = nil, nil
	}
	*p = append(*p, c.TransformerLayersPerBlock.validate("transformer_layers_per_block", n, downAttn)...)
	if !c.ReverseTransformerLayersPerBlock.IsNull() {
		*p = append(*p, c.ReverseTransformerLayersPerBlock.validate("reverse_transformer_layers_per_block", n, upAttn)...)
	} else if c.TransformerLayersPerBlock.Nested() {
		p.add("transformer_layers_per_block = %s is nested (per-layer counts): reverse_transformer_layers_per_block must be given too", c.TransformerLayersPerBlock)
	}
}

// validateKernels checks downsample_padding, the conv kernels and mid_block_scale_factor.
func (c *Config) validateKernels(p *problems) {
	if c.DownsamplePadding < 0 {
		p.add("downsample_padding = %d must be >= 0", c.DownsamplePadding)
	}
	for _, kv := range []struct {
		key string
		k   int
	}{{"conv_in_kernel", c.ConvInKernel}, {"conv_out_kernel", c.ConvOutKernel}} {
		if kv.k <= 0 || kv.k%2 == 0 {
			p.add("%s = %d is not supported (valid: an odd kernel size, padding (k-1)/2 keeps the size)", kv.key, kv.k)
		}
	}
	if c.MidBlockScaleFactor == 0 {
		p.add("mid_block_scale_factor = 0 is not supported (the mid resnets divide by it)")
	}
}

// validateBranches rejects the time, class and encoder embeddings and the attention variants of
// UNet2DConditionModel that SD1.x, SD2.x and SDXL do not use.
func (c *Config) validateBranches(p *problems) {
	if c.TimeEmbeddingType != "positional" {
		p.add("time_embedding_type = %q is not supported (valid: \"positional\")", c.TimeEmbeddingType)
	}
	if c.TimeEmbeddingDim != nil && *c.TimeEmbeddingDim <= 0 {
		p.add("time_embedding_dim = %d must be > 0 or null", *c.TimeEmbeddingDim)
	}
	if c.TimeCondProjDim != nil {
		p.add("time_cond_proj_dim = %d is not supported (valid: null; timestep_cond is an LCM feature)", *c.TimeCondProjDim)
	}
	if c.ResnetTimeScaleShift != "default" {
		p.add("resnet_time_scale_shift = %q is not supported (valid: \"default\")", c.ResnetTimeScaleShift)
	}
	if c.ClassEmbedType != nil {
		p.add("class_embed_type = %q is not supported (valid: null)", *c.ClassEmbedType)
	}
	if c.NumClassEmbeds != nil {
		p.add("num_class_embeds = %d is not supported (valid: null)", *c.NumClassEmbeds)
	}
	if c.ClassEmbeddingsConcat {
		p.add("class_embeddings_concat = true is not supported (valid: false)")
	}
	if c.EncoderHidDim != nil {
		p.add("encoder_hid_dim = %d is not supported (valid: null)", *c.EncoderHidDim)
	}
	if c.EncoderHidDimType != nil {
		p.add("encoder_hid_dim_type = %q is not supported (valid: null)", *c.EncoderHidDimType)
	}
	if c.DualCrossAttention {
		p.add("dual_cross_attention = true is not supported (valid: false)")
	}
	if c.AttentionType != "default" {
		p.add("attention_type = %q is not supported (valid: \"default\")", c.AttentionType)
	}
}

// validateAdditionEmbed checks addition_embed_type and, for SDXL's "text_time", the sizes of
// add_time_proj and add_embedding.
func (c *Config) validateAdditionEmbed(p *problems) {
	if c.AdditionEmbedType == nil {
		return
	}
	if *c.AdditionEmbedType != "text_time" {
		p.add("addition_embed_type = %q is not supported (valid: null, \"text_time\")", *c.AdditionEmbedType)
		return
	}
	d, pd := c.AdditionTimeEmbedDim, c.ProjectionClassEmbeddingsInputDim
	if d == nil || *d <= 0 {
		p.add("addition_time_embed_dim = %s: addition_embed_type \"text_time\" needs a positive size", showPtr(d))
	}
	if pd == nil || *pd <= 0 {
		p.add("projection_class_embeddings_input_dim = %s: addition_embed_type \"text_time\" needs a positive size (pooled dim + len(time_ids)·addition_time_embed_dim)", showPtr(pd))
	}
	if d != nil && pd != nil && *d > 0 && *pd <= *d {
		p.add("projection_class_embeddings_input_dim = %d must exceed addition_time_embed_dim = %d (it is pooled dim + len(time_ids)·addition_time_embed_dim)", *pd, *d)
	}
}

// validateHeads checks that the heads fit the channels of every level (run on an otherwise valid
// config).
func (c *Config) validateHeads(p *problems) {
	for i := range len(c.DownBlockTypes) {
		heads, ch := c.Heads(i), c.BlockOutChannels[i]
		if heads > ch {
			p.add("%s[%d] = %d heads exceed the %d channels of level %d", c.headsKey(), i, heads, ch, i)
		}
	}
}

func (c *Config) headsKey() string {
	if c.NumAttentionHeads.IsNull() {
		return "attention_head_dim"
	}
	return "num_attention_heads"
}

// Levels is the number of resolution levels (len(block_out_channels)).
func (c *Config) Levels() int { return len(c.BlockOutChannels) }

// Heads is the number of attention heads of down level i (diffusers' num_attention_heads[i], which
// defaults to attention_head_dim[i]). Up block j uses Heads(Levels()-1-j); the mid block Heads(Levels()-1).
func (c *Config) Heads(i int) int {
	if !c.NumAttentionHeads.IsNull() {
		return c.NumAttentionHeads.At(i)
	}
	return c.AttentionHeadDim.At(i)
}

// TimeEmbedDim is the size of the time embedding fed to every resnet: time_embedding_dim, or
// 4·block_out_channels[0].
func (c *Config) TimeEmbedDim() int {
	if c.TimeEmbeddingDim != nil {
		return *c.TimeEmbeddingDim
	}
	return 4 * c.BlockOutChannels[0]
}

// Groups is norm_num_groups.
func (c *Config) Groups() int { return *c.NormNumGroups }

// HasMidBlock reports whether mid_block_type is not null.
func (c *Config) HasMidBlock() bool { return c.MidBlockType != nil }

// MidAttention reports whether the mid block has a Transformer2DModel (UNetMidBlock2DCrossAttn:
// resnets.0, attentions.0, resnets.1); UNetMidBlock2D has resnets.0 only.
func (c *Config) MidAttention() bool {
	return c.MidBlockType != nil && *c.MidBlockType == typeMidCrossAttn
}

// MidDepth is the transformer depth of the mid block's attention: the last level's.
func (c *Config) MidDepth() int { return c.TransformerLayersPerBlock.ForLevel(c.Levels()-1, 1)[0] }

// DownAttention reports whether down level i is a CrossAttnDownBlock2D (one Transformer2DModel per
// resnet).
func (c *Config) DownAttention(i int) bool {
	return strings.TrimPrefix(c.DownBlockTypes[i], "UNetRes") == typeCrossAttnDown
}

// UpAttention reports whether up block i is a CrossAttnUpBlock2D.
func (c *Config) UpAttention(i int) bool {
	return strings.TrimPrefix(c.UpBlockTypes[i], "UNetRes") == typeCrossAttnUp
}

// DownDepths is the transformer depth of each of the layers_per_block[i] attentions of down level i.
func (c *Config) DownDepths(i int) []int {
	return c.TransformerLayersPerBlock.ForLevel(i, c.LayersPerBlock.At(i))
}

// UpDepths is the transformer depth of each of the layers_per_block[n-1-i]+1 attentions of up
// block i: reverse_transformer_layers_per_block, or transformer_layers_per_block reversed.
func (c *Config) UpDepths(i int) []int {
	n := c.Levels()
	depth := c.TransformerLayersPerBlock.Reversed(n)
	if !c.ReverseTransformerLayersPerBlock.IsNull() {
		depth = c.ReverseTransformerLayersPerBlock
	}
	return depth.ForLevel(i, c.LayersPerBlock.At(n-1-i)+1)
}

// IsSDXL reports whether the model takes SDXL's added conditioning (addition_embed_type "text_time").
func (c *Config) IsSDXL() bool {
	return c.AdditionEmbedType != nil && *c.AdditionEmbedType == "text_time"
}

// DownsampleFactor is 2^(levels-1), the factor between the input and the lowest resolution.
func (c *Config) DownsampleFactor() int { return 1 << (c.Levels() - 1) }
