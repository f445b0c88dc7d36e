package sd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/compute/shapes"

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
	// unused are the config.json keys the component's Config has no field for (Config.Unused).
	unused []string
}

// declareComponent reads a component folder's config.json, validates it and lists its weights.
// Errors name the config file.
func declareComponent(c Component) (*componentModel, error) {
	configPath := filepath.Join(c.Dir, "config.json")
	data, err := os.ReadFile(configPath)
	if err != nil {
		return nil, err
	}
	cm, err := declareConfig(c.Class, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", configPath, err)
	}
	return cm, nil
}

// declareConfig builds the network of a component class from its config.json bytes, shape-only.
func declareConfig(class string, config []byte) (*componentModel, error) {
	cm := &componentModel{}
	var err error
	switch class {
	case "UNet2DConditionModel":
		var cfg *unet.Config
		if cfg, err = unet.ParseConfig(config); err != nil {
			return nil, err
		}
		cm.unused = cfg.Unused
		var m *unet.UNet2DConditionModel
		if m, err = unet.New(cfg); err != nil {
			return nil, err
		}
		cm.declared, err = m.Declared()
	case "AutoencoderKL":
		var cfg *vae.Config
		if cfg, err = vae.ParseConfig(config); err != nil {
			return nil, err
		}
		cm.unused = cfg.Unused
		var m *vae.AutoencoderKL
		if m, err = vae.New(cfg); err != nil {
			return nil, err
		}
		cm.declared, err = m.Declared()
		cm.opts.Rename = func(key string) string { k, _ := vae.RenameLegacyKey(key); return k }
	case "CLIPTextModel", "CLIPTextModelWithProjection":
		var cfg *clip.Config
		if cfg, err = clip.ParseConfig(config); err != nil {
			return nil, err
		}
		cm.unused = cfg.Unused
		var m *clip.TextModel
		if m, err = clip.New(cfg); err != nil {
			return nil, err
		}
		cm.declared, err = m.Declared()
		cm.opts.Ignore = clip.IgnoredKey
		cm.buffers = cfg.SavedBuffers()
	default:
		return nil, fmt.Errorf("LOBA has no network for class %q", class)
	}
	if err != nil {
		return nil, err
	}
	return cm, nil
}

// configClass reads the class a config.json configures: `_class_name` (diffusers) or
// `architectures[0]` (transformers), with the library it comes from.
func configClass(config []byte) (class, library string, err error) {
	var head struct {
		ClassName     string   `json:"_class_name"`
		Architectures []string `json:"architectures"`
	}
	if err := json.Unmarshal(config, &head); err != nil {
		return "", "", fmt.Errorf("bad JSON: %w", err)
	}
	switch {
	case head.ClassName != "":
		return head.ClassName, "diffusers", nil
	case len(head.Architectures) > 0:
		return head.Architectures[0], "transformers", nil
	}
	return "", "", fmt.Errorf("no _class_name or architectures: cannot tell which model it configures")
}
