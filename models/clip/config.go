package clip

import (
	"fmt"
	"strings"

	"github.com/loba-dev/loba/models/config"
)

// Config holds the text-encoder config.json keys of transformers' CLIPTextConfig
// (models/clip/configuration_clip.py), as save_pretrained writes them for SD's text_encoder and
// text_encoder_2. Keys missing from the file take CLIPTextConfig's defaults (DefaultConfig); keys
// Config has no field for are accepted and recorded in Unused (see package models/config).
type Config struct {
	NameOrPath          string   `json:"_name_or_path,omitempty"`
	TransformersVersion string   `json:"transformers_version,omitempty"`
	Architectures       []string `json:"architectures,omitempty"`
	ModelType           string   `json:"model_type,omitempty"`
	TorchDType          string   `json:"torch_dtype,omitempty"`

	VocabSize             int     `json:"vocab_size"`
	HiddenSize            int     `json:"hidden_size"`
	IntermediateSize      int     `json:"intermediate_size"`
	ProjectionDim         int     `json:"projection_dim"`
	NumHiddenLayers       int     `json:"num_hidden_layers"`
	NumAttentionHeads     int     `json:"num_attention_heads"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"`
	HiddenAct             string  `json:"hidden_act"`
	LayerNormEps          float64 `json:"layer_norm_eps"`
	AttentionDropout      float64 `json:"attention_dropout"`
	Dropout               float64 `json:"dropout"`
	InitializerRange      float64 `json:"initializer_range"`
	InitializerFactor     float64 `json:"initializer_factor"`
	PadTokenID            int     `json:"pad_token_id"`
	BosTokenID            int     `json:"bos_token_id"`
	EosTokenID            int     `json:"eos_token_id"`

	// Unused lists the keys of the parsed config.json that Config has no field for, sorted, without
	// the "_" metadata keys. They do not change the model; `loba inspect` reports them.
	Unused []string `json:"-"`
}

// Architecture names accepted in "architectures".
const (
	ArchTextModel               = "CLIPTextModel"
	ArchTextModelWithProjection = "CLIPTextModelWithProjection"
)

// Activations accepted in hidden_act.
var validActivations = []string{"quick_gelu", "gelu"}

// DefaultConfig returns transformers' CLIPTextConfig defaults.
func DefaultConfig() *Config {
	return &Config{
		VocabSize: 49408, HiddenSize: 512, IntermediateSize: 2048, ProjectionDim: 512,
		NumHiddenLayers: 12, NumAttentionHeads: 8, MaxPositionEmbeddings: 77, HiddenAct: "quick_gelu",
		LayerNormEps: 1e-5, InitializerRange: 0.02, InitializerFactor: 1.0,
		PadTokenID: 1, BosTokenID: 49406, EosTokenID: 49407,
	}
}

// LoadConfig reads a text-encoder config.json over DefaultConfig and validates it. Errors name the
// file.
func LoadConfig(path string) (*Config, error) { return config.Load(path, ParseConfig) }

// ParseConfig parses config.json content over DefaultConfig, records the unknown keys in Unused and
// validates it.
func ParseConfig(raw []byte) (*Config, error) {
	cfg := DefaultConfig()
	unused, err := config.Decode(raw, cfg)
	if err != nil {
		return nil, fmt.Errorf("parsing CLIP text config: %w", err)
	}
	cfg.Unused = unused
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// WithProjection tells whether architectures names CLIPTextModelWithProjection (SDXL's
// text_encoder_2), which adds text_projection.
func (c *Config) WithProjection() bool {
	for _, a := range c.Architectures {
		if a == ArchTextModelWithProjection {
			return true
		}
	}
	return false
}

// HeadDim is hidden_size / num_attention_heads.
func (c *Config) HeadDim() int { return c.HiddenSize / c.NumAttentionHeads }

// Validate checks the config, naming the bad key and the valid values.
func (c *Config) Validate() error {
	positive := []struct {
		key string
		v   int
	}{
		{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize}, {"intermediate_size", c.IntermediateSize},
		{"num_hidden_layers", c.NumHiddenLayers}, {"num_attention_heads", c.NumAttentionHeads},
		{"max_position_embeddings", c.MaxPositionEmbeddings},
	}
	for _, p := range positive {
		if p.v <= 0 {
			return fmt.Errorf("clip config: %s = %d, want > 0", p.key, p.v)
		}
	}
	if c.HiddenSize%c.NumAttentionHeads != 0 {
		return fmt.Errorf("clip config: hidden_size %d is not divisible by num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads)
	}
	if !contains(validActivations, c.HiddenAct) {
		return fmt.Errorf("clip config: hidden_act %q, want one of %s", c.HiddenAct, strings.Join(validActivations, ", "))
	}
	if c.LayerNormEps <= 0 {
		return fmt.Errorf("clip config: layer_norm_eps = %g, want > 0", c.LayerNormEps)
	}
	for _, a := range c.Architectures {
		if a != ArchTextModel && a != ArchTextModelWithProjection {
			return fmt.Errorf("clip config: architectures entry %q, want %s or %s", a, ArchTextModel, ArchTextModelWithProjection)
		}
	}
	if c.WithProjection() && c.ProjectionDim <= 0 {
		return fmt.Errorf("clip config: projection_dim = %d, want > 0 for %s", c.ProjectionDim, ArchTextModelWithProjection)
	}
	if c.ModelType != "" && c.ModelType != "clip_text_model" {
		return fmt.Errorf("clip config: model_type %q, want clip_text_model", c.ModelType)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
