package toybase

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/internal/atomicfile"
	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/sd"
	"github.com/loba-dev/loba/models/unet"
	"github.com/loba-dev/loba/models/weights"
)

// Component folders and weight files of the toy model folder.
const (
	unetWeights = "unet/diffusion_pytorch_model.safetensors"
	teWeights   = "text_encoder/model.safetensors"
)

// Init writes a fresh toy model folder in dir: model_index.json, the configs, the tokenizer and
// PyTorch-default random weights (seeded). predictionType is "epsilon" or "v_prediction".
func Init(dir string, seed uint64, predictionType string) error {
	tok, err := Tokenizer()
	if err != nil {
		return err
	}
	te := textEncoderConfig(tok)
	files := map[string]any{
		"model_index.json": map[string]any{
			"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.40.0.dev0",
			"unet": []string{"diffusers", "UNet2DConditionModel"}, "vae": []string{"loba", sd.ToyLatentMapClass},
			"text_encoder": []string{"transformers", "CLIPTextModel"}, "tokenizer": []string{"transformers", "CLIPTokenizer"},
			"scheduler": []string{"diffusers", "DDPMScheduler"},
		},
		"unet/config.json":                unetConfig(te["hidden_size"].(int)),
		"text_encoder/config.json":        te,
		"scheduler/scheduler_config.json": schedulerConfig(predictionType),
		"vae/config.json":                 sd.NewToyLatentMapConfig(),
	}
	for name, v := range files {
		if err := writeJSON(filepath.Join(dir, name), v); err != nil {
			return err
		}
	}
	if err := tok.SaveTokenizer(filepath.Join(dir, "tokenizer")); err != nil {
		return err
	}
	ctx := model.NewStore().RootScope()
	u, err := unet.LoadConfig(filepath.Join(dir, "unet", "config.json"))
	if err != nil {
		return err
	}
	um, err := unet.New(u)
	if err != nil {
		return err
	}
	udecl, err := weights.Declared(um.Declare)
	if err != nil {
		return err
	}
	if err := weights.InitFromScratch(ctx.At("unet"), udecl, seed, 0.02); err != nil {
		return err
	}
	tc, err := clip.LoadConfig(filepath.Join(dir, "text_encoder", "config.json"))
	if err != nil {
		return err
	}
	tm, err := clip.New(tc)
	if err != nil {
		return err
	}
	tdecl, err := tm.Declared()
	if err != nil {
		return err
	}
	if err := weights.InitFromScratch(ctx.At("text_encoder"), tdecl, seed+1, 0.02); err != nil {
		return err
	}
	return SaveWeights(ctx, dir, dtypes.Float32)
}

// SaveWeights writes the UNet and text-encoder variables of ctx (scopes "unet", "text_encoder")
// into the folder's weight files, as dtype.
func SaveWeights(ctx *model.Scope, dir string, dtype dtypes.DType) error {
	meta := map[string]string{"format": "pt", "producer": "loba toybase"}
	if err := weights.SaveComponent(ctx.At("unet"), filepath.Join(dir, unetWeights), dtype, meta); err != nil {
		return err
	}
	return weights.SaveComponent(ctx.At("text_encoder"), filepath.Join(dir, teWeights), dtype, meta)
}

func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("toybase: %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, append(data, '\n'))
}
