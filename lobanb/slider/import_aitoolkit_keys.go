package slider

// The keys of an ai-toolkit slider config that the import ignores with a warning: ai-toolkit reads
// them, but they do not change the LoRA its slider process trains on an SD 1.x/2.x or SDXL model, or
// change it in a way LOBA does better (implementation switches). The keys that are honoured or that
// are errors are fields of the structs in import_aitoolkit.go; any other key is unknown (ignored with
// a warning, as ai-toolkit's kwargs.get ignores it).

import (
	"fmt"
	"regexp"
)

const (
	aitkWhyLogging  = "logging only; LOBA logs every step to the run folder's loss.csv"
	aitkWhyImpl     = "it picks how torch computes, not what; LOBA picks its own implementation (train.attention: auto)"
	aitkWhySampling = "preview sampling only, no effect on the trained LoRA"
	aitkWhyUpload   = "LOBA does not upload; the LoRA is written to the run folder"
	aitkWhyTE       = "the slider process encodes every prompt once before its loop, so the text encoders' settings do not reach the loss"
	aitkWhyMemory   = "memory placement or quantization of the frozen model for ai-toolkit's loader; LOBA places the model itself (train.dtype holds the precision)"
	aitkWhyLR       = "the slider process builds the optimizer with train.lr for every network parameter (BaseSDTrainProcess prepare_optimizer_params)"
	aitkWhyDataset  = "read only by ai-toolkit's dataset trainer (SDTrainer), not by the slider process"
)

// aitkIgnored maps a section (its key path without list indexes) to its ignored keys and why.
var aitkIgnored = map[string]map[string]string{
	"": {"meta": "ai-toolkit writes it into the LoRA file's metadata; LOBA writes the normalized preset there"},
	"config": {
		"device":  "LOBA picks its device (GoMLX backend)",
		"log_dir": "TensorBoard logging; " + aitkWhyLogging,
		"is_v2":   "TrainJob reads it but no process uses it (model.is_v2 is the one that counts)",
	},
	"config.process": {
		"device":                  "LOBA picks its device (GoMLX backend)",
		"log_dir":                 "TensorBoard logging; " + aitkWhyLogging,
		"logging":                 aitkWhyLogging,
		"performance_log_every":   aitkWhyLogging,
		"torch_profiler":          aitkWhyLogging,
		"trigger_word":            "used in dataset captions and sample prompts; the slider process has no dataset",
		"guidance":                aitkWhyDataset,
		"first_sample":            aitkWhySampling,
		"lorm_extract_mode":       "read only with do_lorm",
		"lorm_extract_mode_param": "read only with do_lorm",
	},
	"config.process.network": {
		"transformer_only":       "it restricts transformer models (Flux, SD3, PixArt); an SD/SDXL UNet is adapted as a whole either way",
		"lokr_full_rank":         "read only with network type lokr",
		"lokr_factor":            "read only with network type lokr",
		"old_lokr_format":        "read only with network type lokr",
		"lorm":                   "read only with network type lorm",
		"split_multistage_loras": "multi-stage models only (Wan 2.2)",
		"layer_offloading":       aitkWhyMemory,
	},
	"config.process.train": {
		"xformers":              aitkWhyImpl,
		"sdp":                   aitkWhyImpl,
		"attention_backend":     aitkWhyImpl,
		"unet_lr":               aitkWhyLR,
		"text_encoder_lr":       aitkWhyLR,
		"refiner_lr":            aitkWhyLR,
		"embedding_lr":          aitkWhyLR,
		"adapter_lr":            aitkWhyLR,
		"min_denoising_steps":   "TrainSliderProcess draws the partial-denoise steps from 1 (torch.randint(1, max_denoising_steps - 1)), whatever this says",
		"max_grad_norm":         "TrainSliderProcess steps its optimizer without clipping the gradient",
		"snr_gamma":             aitkWhyDataset,
		"loss_type":             "TrainSliderProcess always uses the mean squared error",
		"timestep_type":         "flowmatch models only",
		"linear_timesteps":      "flowmatch models only",
		"linear_timesteps2":     "flowmatch models only",
		"content_or_style":      aitkWhyDataset,
		"num_train_timesteps":   aitkWhyDataset,
		"train_refiner":         "SDXL refiner only (model.refiner_name_or_path, an error)",
		"skip_first_sample":     aitkWhySampling,
		"force_first_sample":    aitkWhySampling,
		"unload_text_encoder":   aitkWhyTE,
		"cache_text_embeddings": aitkWhyTE,
	},
	"config.process.train.ema_config": {
		"ema_decay":        "read only with use_ema",
		"use_feedback":     "read only with use_ema",
		"param_multiplier": "read only with use_ema",
	},
	"config.process.model": {
		"dtype":              "BaseSDTrainProcess replaces it with train.dtype",
		"vae_path":           "the slider process never decodes or encodes images in training (previews only)",
		"vae_device":         aitkWhyMemory,
		"vae_dtype":          aitkWhyMemory,
		"te_device":          aitkWhyMemory,
		"te_dtype":           aitkWhyMemory,
		"text_encoder_bits":  aitkWhyMemory,
		"quantize":           aitkWhyMemory,
		"quantize_te":        aitkWhyMemory,
		"qtype":              aitkWhyMemory,
		"qtype_te":           aitkWhyMemory,
		"low_vram":           aitkWhyMemory,
		"layer_offloading":   aitkWhyMemory,
		"compile":            aitkWhyImpl,
		"lora_path":          "ai-toolkit fuses it into Flux and SD3 models only",
		"experimental_xl":    "no effect on the slider process",
		"use_text_encoder_1": aitkWhyTE + " (SDXL's encode_prompt uses both encoders regardless)",
		"use_text_encoder_2": aitkWhyTE + " (SDXL's encode_prompt uses both encoders regardless)",
	},
	"config.process.save": {
		"max_step_saves_to_keep": "LOBA keeps every lora-step-N.safetensors (delete the ones not wanted)",
		"save_format":            "LOBA writes the LoRA as kohya safetensors",
		"push_to_hub":            aitkWhyUpload,
		"hf_repo_id":             aitkWhyUpload,
		"hf_private":             aitkWhyUpload,
	},
	"config.process.sample": {
		"sampler":                    "LOBA's previews use its own sampler; " + aitkWhySampling,
		"guidance_rescale":           aitkWhySampling,
		"format":                     aitkWhySampling,
		"adapter_conditioning_scale": aitkWhySampling,
		"refiner_start_at":           aitkWhySampling,
		"extra_values":               aitkWhySampling,
		"num_frames":                 aitkWhySampling,
		"fps":                        aitkWhySampling,
		"sample_start_step":          aitkWhySampling,
		"do_cfg_norm":                aitkWhySampling,
	},
	"config.process.sample.samples": {
		"width": aitkWhySampling, "height": aitkWhySampling, "seed": aitkWhySampling,
		"guidance_scale": aitkWhySampling, "sample_steps": aitkWhySampling, "fps": aitkWhySampling,
		"num_frames": aitkWhySampling, "ctrl_img": aitkWhySampling, "ctrl_idx": aitkWhySampling,
		"ctrl_img_1": aitkWhySampling, "ctrl_img_2": aitkWhySampling, "ctrl_img_3": aitkWhySampling,
		"do_cfg_norm": aitkWhySampling,
	},
	"config.process.slider": {
		"prompt_file":     "its lines only multiply the prompt pairs: the slider's neutral is always the empty prompt (build_prompt_pair_batch_from_cache's *_with_neutral prompts never reach the loss)",
		"prompt_tensors":  "a cache file of the encoded prompts; LOBA keeps its own conditioning cache",
		"low_ram":         "it only splits the batch into chunks; the loss is the same",
		"adapter_img_dir": "read only with a dataset (slider.use_adapter, an error)",
	},
}

var aitkIndex = regexp.MustCompile(`\[[0-9]+\]`)

// aitkIgnoredKey is the decoder's ignored hook: the warning for a key of aitkIgnored.
func aitkIgnoredKey(path, key string) (string, bool) {
	why, ok := aitkIgnored[aitkIndex.ReplaceAllString(path, "")][key]
	if !ok {
		return "", false
	}
	return fmt.Sprintf("%s: ignored: %s", joinPath(path, key), why), true
}
