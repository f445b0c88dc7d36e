package singlefile

import (
	"fmt"
	"strings"
)

// Detect tells the kind of a single-file checkpoint from its tensor names (as diffusers'
// infer_diffusers_model_type does with CHECKPOINT_KEY_NAMES):
//   - KindSDXLBase: SGM layout with both conditioner.embedders.0.transformer.* (CLIP-L) and
//     conditioner.embedders.1.model.* (OpenCLIP bigG), or, for a UNet-only file,
//     model.diffusion_model.label_emb.0.0.weight (SDXL's text_time embedding);
//   - KindSD15: LDM layout with cond_stage_model.transformer.* (CLIP-L), or a UNet-only file
//     without label_emb.
//
// Recognised but unsupported layouts (SDXL refiner, SD 2.x, diffusers-format files, LoRA files,
// files without a UNet) are errors that say what the file is. Key names cannot tell an SD 2.x
// UNet-only file from an SD 1.x one; the shape check at load catches it.
func Detect(keys []string) (kind string, err error) {
	has := func(prefix string) bool {
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) {
				return true
			}
		}
		return false
	}
	contains := func(sub string) bool {
		for _, k := range keys {
			if strings.Contains(k, sub) {
				return true
			}
		}
		return false
	}
	if len(keys) == 0 {
		return "", fmt.Errorf("singlefile: Detect: the file has no tensors")
	}
	if !has("model.diffusion_model.") {
		switch {
		case has("lora_unet_") || has("lora_te") || contains(".lora_down.") || contains(".lora_A.") || contains(".lora_B."):
			return "", fmt.Errorf("singlefile: Detect: this is a LoRA file, not a model checkpoint")
		case has("down_blocks.") || has("encoder.down_blocks.") || has("text_model.") || has("conv_in."):
			return "", fmt.Errorf("singlefile: Detect: this is a diffusers/transformers component file " +
				"(down_blocks.*, text_model.*), not a single-file checkpoint: load it from its component folder")
		case has("first_stage_model.") || has("encoder.down.") || has("decoder.up."):
			return "", fmt.Errorf("singlefile: Detect: this file holds only an LDM VAE (no model.diffusion_model.* UNet keys)")
		}
		return "", fmt.Errorf("singlefile: Detect: not an LDM/SGM single-file checkpoint: no model.diffusion_model.* keys")
	}
	switch {
	case has("conditioner.embedders.0.model.transformer.resblocks."):
		return "", fmt.Errorf("singlefile: Detect: SDXL refiner checkpoint (conditioner.embedders.0.model.*, OpenCLIP only) is not supported")
	case has("cond_stage_model.model.transformer.resblocks."):
		return "", fmt.Errorf("singlefile: Detect: SD 2.x checkpoint (cond_stage_model.model.*, OpenCLIP ViT-H) is not supported")
	case has("conditioner.embedders.1.model.transformer.resblocks."):
		if !has("conditioner.embedders.0.transformer.text_model.") {
			return "", fmt.Errorf("singlefile: Detect: SGM checkpoint with conditioner.embedders.1.model.* (OpenCLIP bigG) " +
				"but no conditioner.embedders.0.transformer.text_model.* (CLIP-L): not an SDXL base layout")
		}
		return KindSDXLBase, nil
	case has("conditioner.embedders."):
		return "", fmt.Errorf("singlefile: Detect: SGM checkpoint with unknown conditioner.embedders.* layout")
	case has("cond_stage_model.transformer.text_model."):
		return KindSD15, nil
	case has("cond_stage_model."):
		return "", fmt.Errorf("singlefile: Detect: LDM checkpoint with an unknown text encoder layout " +
			"(cond_stage_model.* without cond_stage_model.transformer.text_model.*)")
	case has("model.diffusion_model.label_emb.0.0."):
		return KindSDXLBase, nil
	}
	return KindSD15, nil
}
