package sd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/loba-dev/loba/models/toyworld"
)

// ToyLatentMapClass is the model_index.json / vae config class of the toy world's fixed latent map
// (models/toyworld: 4 channels at 2× down-sampling, an orthonormal colour map), which stands in for
// the AutoencoderKL of the toy base model.
const ToyLatentMapClass = "ToyLatentMap"

// ToyLatentMapConfig is the vae/config.json of a toy model: the map's constants, written so a
// reader can check them against the code (a model trained with other constants would decode wrong).
type ToyLatentMapConfig struct {
	ClassName      string        `json:"_class_name"`
	LatentChannels int           `json:"latent_channels"`
	DownFactor     int           `json:"down_factor"`
	ChannelScale   [4]float32    `json:"channel_scale"`
	ColorMap       [4][3]float32 `json:"color_map"`
}

// NewToyLatentMapConfig is the config of the map in models/toyworld.
func NewToyLatentMapConfig() ToyLatentMapConfig {
	return ToyLatentMapConfig{ClassName: ToyLatentMapClass, LatentChannels: toyworld.LatentChannels,
		DownFactor: toyworld.DownFactor, ChannelScale: toyworld.ChannelScale, ColorMap: toyworld.ColorMap}
}

// checkToyLatentMap verifies that vae/config.json describes the map this build implements.
func checkToyLatentMap(dir string) error {
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("sd.LoadPipeline: %w", err)
	}
	var cfg ToyLatentMapConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("sd.LoadPipeline: %s: %w", path, err)
	}
	if want := NewToyLatentMapConfig(); cfg != want {
		return fmt.Errorf("sd.LoadPipeline: %s: the toy latent map differs from this build's (%+v, want %+v)", path, cfg, want)
	}
	return nil
}
