package unet

import (
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
)

// Conditioning is what the UNet is conditioned on besides the sample and the timestep, for a batch
// of B items: diffusers' encoder_hidden_states and, for SDXL (addition_embed_type "text_time"), its
// added_cond_kwargs. T is *graph.Node inside a graph and *tensors.Tensor (float32) on the host: the
// one conditioning type of the stack — the pipeline's prompt encodings, the trainer's cache and
// batches, and the UNet's graph inputs.
type Conditioning[T interface {
	*Node | *tensors.Tensor
	Shape() shapes.Shape
}] struct {
	// Hidden is encoder_hidden_states: [B, S, cross_attention_dim] (S = 77, or chunks·77 for long
	// prompts).
	Hidden T
	// TextEmbeds is SDXL's text_embeds (text_encoder_2's projected pooled output): [B, P]; nil for
	// models without addition_embed_type.
	TextEmbeds T
	// TimeIDs is SDXL's time_ids [B, k] (SDXL base: k = 6, (orig_h, orig_w, crop_top, crop_left,
	// target_h, target_w); any numeric dtype); nil for models without addition_embed_type. Prompt
	// encodings leave it nil: the time ids belong to the image size, set where latents are made.
	TimeIDs T
}

// Len is the batch size B.
func (c Conditioning[T]) Len() int { return c.Hidden.Shape().Dim(0) }
