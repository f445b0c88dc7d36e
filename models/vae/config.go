package vae

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/loba-dev/loba/models/config"
)

// Config holds the AutoencoderKL config.json keys (diffusers models/autoencoders/autoencoder_kl.py
// @ 58eb52c0, AutoencoderKL.__init__). Keys missing from the file take diffusers' defaults
// (DefaultConfig); SD1.5's hub config, written by diffusers 0.6, carries only the structural keys.
// Keys Config has no field for are accepted and recorded in Unused (see package models/config).
//
// ScalingFactor and ShiftFactor are NOT applied by Encode/Decode: pipelines compute
// latents = (sample - shift) · scaling before the UNet and decode(latents / scaling + shift) after it.
type Config struct {
	ClassName        string `json:"_class_name,omitempty"`
	DiffusersVersion string `json:"_diffusers_version,omitempty"`
	NameOrPath       string `json:"_name_or_path,omitempty"`

	InChannels           int        `json:"in_channels"`
	OutChannels          int        `json:"out_channels"`
	DownBlockTypes       []string   `json:"down_block_types"`
	UpBlockTypes         []string   `json:"up_block_types"`
	BlockOutChannels     []int      `json:"block_out_channels"`
	LayersPerBlock       int        `json:"layers_per_block"`
	ActFn                string     `json:"act_fn"`
	LatentChannels       int        `json:"latent_channels"`
	NormNumGroups        int        `json:"norm_num_groups"`
	SampleSize           SampleSize `json:"sample_size"`
	ScalingFactor        float64    `json:"scaling_factor"`
	ShiftFactor          *float64   `json:"shift_factor"`
	LatentsMean          []float64  `json:"latents_mean"`
	LatentsStd           []float64  `json:"latents_std"`
	ForceUpcast          bool       `json:"force_upcast"`
	UseQuantConv         bool       `json:"use_quant_conv"`
	UsePostQuantConv     bool       `json:"use_post_quant_conv"`
	MidBlockAddAttention bool       `json:"mid_block_add_attention"`

	// Unused lists the keys of the parsed config.json that Config has no field for, sorted, without
	// the "_" metadata keys. They do not change the model; `loba inspect` reports them.
	Unused []string `json:"-"`
}

// SampleSize is diffusers' sample_size: an int or an [height, width] pair. It only sizes tiling in
// diffusers and is informative here.
type SampleSize []int

// UnmarshalJSON accepts an int or a list of ints.
func (s *SampleSize) UnmarshalJSON(data []byte) error {
	var n int
	if err := json.Unmarshal(data, &n); err == nil {
		*s = SampleSize{n}
		return nil
	}
	var list []int
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("sample_size: want an int or a list of ints, got %s", data)
	}
	*s = list
	return nil
}

// MarshalJSON writes a single size as an int, as diffusers does.
func (s SampleSize) MarshalJSON() ([]byte, error) {
	if len(s) == 1 {
		return json.Marshal(s[0])
	}
	return json.Marshal([]int(s))
}

// Block type names accepted in down_block_types / up_block_types.
const (
	downEncoderType = "DownEncoderBlock2D"
	upDecoderType   = "UpDecoderBlock2D"
)

// normEps is the GroupNorm eps of every norm inside the VAE (diffusers hard-codes 1e-6 in vae.py).
const normEps = 1e-6

// DefaultConfig returns diffusers' AutoencoderKL defaults (the values a key missing from
// config.json takes).
func DefaultConfig() *Config {
	return &Config{
		ClassName:            "AutoencoderKL",
		InChannels:           3,
		OutChannels:          3,
		DownBlockTypes:       []string{downEncoderType},
		UpBlockTypes:         []string{upDecoderType},
		BlockOutChannels:     []int{64},
		LayersPerBlock:       1,
		ActFn:                "silu",
		LatentChannels:       4,
		NormNumGroups:        32,
		SampleSize:           SampleSize{32},
		ScalingFactor:        0.18215,
		ForceUpcast:          true,
		UseQuantConv:         true,
		UsePostQuantConv:     true,
		MidBlockAddAttention: true,
	}
}

// SD15 is the config of runwayml/stable-diffusion-v1-5's vae/ (with diffusers defaults filled in).
func SD15() *Config {
	c := DefaultConfig()
	c.DownBlockTypes = []string{downEncoderType, downEncoderType, downEncoderType, downEncoderType}
	c.UpBlockTypes = []string{upDecoderType, upDecoderType, upDecoderType, upDecoderType}
	c.BlockOutChannels = []int{128, 256, 512, 512}
	c.LayersPerBlock = 2
	c.SampleSize = SampleSize{512}
	return c
}

// SDXLBase is the config of stabilityai/stable-diffusion-xl-base-1.0's vae/.
func SDXLBase() *Config {
	c := SD15()
	c.SampleSize = SampleSize{1024}
	c.ScalingFactor = 0.13025
	return c
}

// ParseConfig decodes config.json content over DefaultConfig, records the keys AutoencoderKL does
// not have in Unused and validates it.
func ParseConfig(data []byte) (*Config, error) {
	cfg := DefaultConfig()
	unused, err := config.Decode(data, cfg)
	if err != nil {
		return nil, fmt.Errorf("vae config: %w", err)
	}
	cfg.Unused = unused
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadConfig reads and validates a diffusers AutoencoderKL config.json. Errors name the file.
func LoadConfig(path string) (*Config, error) { return config.Load(path, ParseConfig) }

// Validate checks that the config describes an AutoencoderKL this package builds. Errors name the
// key, the bad value and the valid values.
func (c *Config) Validate() error {
	if c.ClassName != "" && c.ClassName != "AutoencoderKL" {
		return fmt.Errorf("vae config: _class_name %q is not supported (valid: \"AutoencoderKL\")", c.ClassName)
	}
	positive := []struct {
		key string
		v   int
	}{{"in_channels", c.InChannels}, {"out_channels", c.OutChannels}, {"latent_channels", c.LatentChannels},
		{"layers_per_block", c.LayersPerBlock}, {"norm_num_groups", c.NormNumGroups}}
	for _, p := range positive {
		if p.v <= 0 {
			return fmt.Errorf("vae config: %s = %d, want an integer >= 1", p.key, p.v)
		}
	}
	levels := len(c.BlockOutChannels)
	if levels == 0 {
		return fmt.Errorf("vae config: block_out_channels is empty, want one channel count per level")
	}
	for i, ch := range c.BlockOutChannels {
		if ch <= 0 || ch%c.NormNumGroups != 0 {
			return fmt.Errorf("vae config: block_out_channels[%d] = %d, want a positive multiple of norm_num_groups = %d",
				i, ch, c.NormNumGroups)
		}
	}
	if len(c.DownBlockTypes) != levels {
		return fmt.Errorf("vae config: down_block_types has %d entries %q, want %d (one per block_out_channels entry)",
			len(c.DownBlockTypes), c.DownBlockTypes, levels)
	}
	if len(c.UpBlockTypes) != levels {
		return fmt.Errorf("vae config: up_block_types has %d entries %q, want %d (one per block_out_channels entry)",
			len(c.UpBlockTypes), c.UpBlockTypes, levels)
	}
	for i, t := range c.DownBlockTypes {
		if t != downEncoderType {
			return fmt.Errorf("vae config: down_block_types[%d] = %q is not supported (valid: %q)", i, t, downEncoderType)
		}
	}
	for i, t := range c.UpBlockTypes {
		if t != upDecoderType {
			return fmt.Errorf("vae config: up_block_types[%d] = %q is not supported (valid: %q)", i, t, upDecoderType)
		}
	}
	if c.ActFn != "silu" && c.ActFn != "swish" {
		return fmt.Errorf("vae config: act_fn = %q is not supported (valid: \"silu\", or its alias \"swish\")", c.ActFn)
	}
	if !(c.ScalingFactor > 0) || math.IsInf(c.ScalingFactor, 0) {
		return fmt.Errorf("vae config: scaling_factor = %g, want a finite value > 0", c.ScalingFactor)
	}
	if c.ShiftFactor != nil && (math.IsNaN(*c.ShiftFactor) || math.IsInf(*c.ShiftFactor, 0)) {
		return fmt.Errorf("vae config: shift_factor = %g, want a finite value or null", *c.ShiftFactor)
	}
	for _, l := range []struct {
		key string
		v   []float64
	}{{"latents_mean", c.LatentsMean}, {"latents_std", c.LatentsStd}} {
		if l.v != nil && len(l.v) != c.LatentChannels {
			return fmt.Errorf("vae config: %s has %d values, want null or latent_channels = %d values",
				l.key, len(l.v), c.LatentChannels)
		}
	}
	return nil
}

// Levels is the number of resolution levels (len(block_out_channels)).
func (c *Config) Levels() int { return len(c.BlockOutChannels) }

// DownsampleFactor is the spatial ratio between images and latents: 2^(levels-1).
func (c *Config) DownsampleFactor() int { return 1 << (len(c.BlockOutChannels) - 1) }

// Shift returns shift_factor, 0 when it is null.
func (c *Config) Shift() float64 {
	if c.ShiftFactor == nil {
		return 0
	}
	return *c.ShiftFactor
}
