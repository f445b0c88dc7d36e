package sd

import (
	"fmt"
	"path/filepath"

	"github.com/gomlx/gomlx/pkg/core/shapes"

	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/unet"
	"github.com/loba-dev/loba/models/vae"
	"github.com/loba-dev/loba/models/weights"
)

// componentModel is a component's network built shape-only: its declared weights and how its
// files are matched against them.
type componentModel struct {
	declared map[string]shapes.Shape
	opts     weights.LoadOptions
	// buffers are non-parameter tensors the checkpoint format of this config holds (listed, never
	// loaded), e.g. CLIP's position_ids before transformers 4.31.
	buffers map[string]shapes.Shape
}

// declareComponent reads a component's config.json, validates it and lists its weights.
func declareComponent(c Component) (*componentModel, error) {
	configPath := filepath.Join(c.Dir, "config.json")
	var (
		decl    map[string]shapes.Shape
		opts    weights.LoadOptions
		buffers map[string]shapes.Shape
		err     error
	)
	switch c.Class {
	case "AutoencoderKL":
		var cfg *vae.Config
		if cfg, err = vae.LoadConfig(configPath); err != nil {
			return nil, err
		}
		var m *vae.AutoencoderKL
		if m, err = vae.New(cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", configPath, err)
		}
		decl, err = m.Declared()
		opts.Rename = func(key string) string { k, _ := vae.RenameLegacyKey(key); return k }
	case "UNet2DConditionModel":
		var cfg *unet.Config
		if cfg, err = unet.LoadConfig(configPath); err != nil {
			return nil, err
		}
		var m *unet.UNet2DConditionModel
		if m, err = unet.New(cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", configPath, err)
		}
		decl, err = weights.Declared(m.Declare)
	case "CLIPTextModel", "CLIPTextModelWithProjection":
		var cfg *clip.Config
		if cfg, err = clip.LoadConfig(configPath); err != nil {
			return nil, err
		}
		var m *clip.TextModel
		if m, err = clip.New(cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", configPath, err)
		}
		decl, err = m.Declared()
		opts.Ignore = clip.IgnoredKey
		buffers = cfg.SavedBuffers()
	default:
		return nil, fmt.Errorf("%s: LOBA has no network for class %q", configPath, c.Class)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", configPath, err)
	}
	return &componentModel{declared: decl, opts: opts, buffers: buffers}, nil
}
