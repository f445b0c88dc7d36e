package eval

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/sd"
)

// CheckModel says whether p's eval section can measure the model at modelDir (a resolved local
// folder or single-file checkpoint), before anything is loaded or trained. Today's read-outs
// (eval.kind slider and erase) read the toy world's shapes from pixels, so they need a model that
// draws the toy world — one whose VAE is the toy latent map (models/toyworld); on any other model they
// would measure nothing and report numbers that mean nothing. A preset without an eval section passes.
func CheckModel(p *slider.Preset, modelDir string) error {
	if p.Eval.Kind == "" {
		return nil
	}
	if toyWorldModel(modelDir) {
		return nil
	}
	return fmt.Errorf("preset %s: eval.kind %s measures the toy world's shapes and colours from pixels, and model %s "+
		"is not a toy-world model (its VAE is not the toy latent map): its figures would mean nothing. "+
		"Remove the eval section (or train with --no-eval) until LOBA has a real-model eval",
		p.File(), p.Eval.Kind, modelDir)
}

// toyWorldModel tells whether the model folder's vae/config.json names the toy latent map.
func toyWorldModel(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "vae", "config.json"))
	if err != nil {
		return false
	}
	var cfg struct {
		ClassName string `json:"_class_name"`
	}
	return json.Unmarshal(data, &cfg) == nil && cfg.ClassName == sd.ToyLatentMapClass
}
