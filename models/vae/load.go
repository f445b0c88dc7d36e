package vae

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/weights"
)

// Load reads a diffusers AutoencoderKL folder: dir/config.json and the weights found by
// weights.FindWeightFiles (diffusion_pytorch_model.safetensors or model.safetensors, or a sharded
// index), as float32. It returns the model and a context holding the weights at its root, in Reuse
// mode: build graphs with model.Encode(ctx, …) / model.Decode(ctx, …).
func Load(dir string) (*AutoencoderKL, *model.Scope, error) {
	return LoadVariant(dir, "", dtypes.Float32)
}

// LoadVariant is Load with a weight-file variant ("fp16" picks diffusion_pytorch_model.fp16.safetensors
// when present) and the dtype floating-point weights are converted to.
func LoadVariant(dir, variant string, dtype dtypes.DType) (*AutoencoderKL, *model.Scope, error) {
	return weights.LoadDir("vae.Load", dir, variant, dtype, LoadConfig, New)
}

// Declared lists the model's weights as diffusers key → shape (float32), from a shape-only build.
func (m *AutoencoderKL) Declared() (map[string]shapes.Shape, error) {
	return weights.Declared(func(ctx *model.Scope, g *graph.Graph) { m.Declare(ctx, g) })
}

// LoadWeights sets the model's weights in ctx (the VAE's root scope) from diffusers-named
// safetensors files, converted to dtype. The legacy mid-block attention names of old VAE files
// (query/key/value/proj_attn, see RenameLegacyKey) are renamed as diffusers does on load. Missing,
// unexpected and mis-shaped keys are reported together.
func (m *AutoencoderKL) LoadWeights(ctx *model.Scope, files []string, dtype dtypes.DType) error {
	decl, err := m.Declared()
	if err != nil {
		return fmt.Errorf("vae: listing the model's weights: %w", err)
	}
	rename := func(key string) string {
		nk, _ := RenameLegacyKey(key)
		return nk
	}
	if err := weights.LoadFiles(ctx, decl, files, weights.LoadOptions{DType: dtype, Rename: rename}); err != nil {
		return fmt.Errorf("vae: %w", err)
	}
	return nil
}
