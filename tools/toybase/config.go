// Package toybase builds, trains and checks LOBA's embedded base model of the toy world
// (models/toyworld): a tiny Stable-Diffusion-shaped model — CLIP tokenizer and CLIPTextModel,
// UNet2DConditionModel, DDPM schedule — with the toy world's fixed latent map in place of the VAE,
// as a diffusers-format folder that sd.LoadPipeline reads like any hub model. It is trained from
// scratch by LOBA's standard diffusion fine-tune step (lobanb/train FinetuneGraph), resumably.
package toybase

import (
	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/toyworld"
)

// ImageSize is the side of the toy images the base model is trained on (latents: ImageSize/2).
const ImageSize = 32

// MaxTokens is the text encoder's sequence length: toy captions are a few words.
const MaxTokens = 16

// Tokenizer is the toy model's CLIP BPE, learned on the toy world's vocabulary: every caption word
// is one token.
func Tokenizer() (*clip.Tokenizer, error) {
	tok, err := clip.TrainBPE(toyworld.Vocabulary(), 100000)
	if err != nil {
		return nil, err
	}
	tok.MaxLength = MaxTokens
	return tok, nil
}

// unetConfig is the UNet: two levels [32, 64], attention (self and cross) at both levels (16×16 and
// 8×8) and in the mid block. Without attention at 16×16 a [32, 64] UNet learned the background but
// left shapes patchy in colour (measured: colour at chance after 1000 steps of batch 16).
func unetConfig(crossDim int) map[string]any {
	return map[string]any{
		"_class_name":            "UNet2DConditionModel",
		"_diffusers_version":     "0.40.0.dev0",
		"act_fn":                 "silu",
		"attention_head_dim":     4,
		"block_out_channels":     []int{32, 64},
		"center_input_sample":    false,
		"cross_attention_dim":    crossDim,
		"down_block_types":       []string{"CrossAttnDownBlock2D", "CrossAttnDownBlock2D"},
		"downsample_padding":     1,
		"flip_sin_to_cos":        true,
		"freq_shift":             0,
		"in_channels":            toyworld.LatentChannels,
		"layers_per_block":       1,
		"mid_block_scale_factor": 1,
		"norm_eps":               1e-5,
		"norm_num_groups":        8,
		"out_channels":           toyworld.LatentChannels,
		"sample_size":            ImageSize / toyworld.DownFactor,
		"up_block_types":         []string{"CrossAttnUpBlock2D", "CrossAttnUpBlock2D"},
		"use_linear_projection":  true,
	}
}

// textEncoderConfig is the CLIPTextModel: hidden 64, 2 layers, 4 heads, the toy vocabulary.
func textEncoderConfig(tok *clip.Tokenizer) map[string]any {
	return map[string]any{
		"architectures":           []string{"CLIPTextModel"},
		"attention_dropout":       0.0,
		"bos_token_id":            tok.BOS,
		"dropout":                 0.0,
		"eos_token_id":            tok.EOS,
		"hidden_act":              "gelu",
		"hidden_size":             64,
		"initializer_factor":      1.0,
		"initializer_range":       0.02,
		"intermediate_size":       256,
		"layer_norm_eps":          1e-5,
		"max_position_embeddings": MaxTokens,
		"model_type":              "clip_text_model",
		"num_attention_heads":     4,
		"num_hidden_layers":       2,
		"pad_token_id":            tok.EOS,
		"projection_dim":          64,
		"torch_dtype":             "float32",
		"vocab_size":              tok.VocabSize(),
	}
}

// schedulerConfig is the training and sampling schedule: SD's scaled_linear betas. For
// v-prediction the betas are rescaled to zero terminal SNR with trailing timesteps (Lin et al. 2024,
// "Common Diffusion Noise Schedules and Sample Steps are Flawed"): with SD's schedule a 16×16 latent
// keeps √ᾱ_T ≈ 0.068 of its mean at t = 999, enough for the model to read the background off the
// noise instead of the prompt, so the prompt's background word would be ignored when sampling
// starts from pure noise.
func schedulerConfig(predictionType string) map[string]any {
	zeroSNR := predictionType == "v_prediction"
	spacing := "leading"
	if zeroSNR {
		spacing = "trailing"
	}
	return map[string]any{
		"rescale_betas_zero_snr": zeroSNR,
		"_class_name":            "DDPMScheduler",
		"beta_schedule":          "scaled_linear",
		"beta_start":             0.00085,
		"beta_end":               0.012,
		"num_train_timesteps":    1000,
		"prediction_type":        predictionType,
		"clip_sample":            false,
		"steps_offset":           1,
		"timestep_spacing":       spacing,
		"set_alpha_to_one":       false,
	}
}
