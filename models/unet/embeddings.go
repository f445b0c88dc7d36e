package unet

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
)

// Timesteps ports diffusers Timesteps (models/embeddings.py): the weightless sinusoidal embedding
// get_timestep_embedding(t, NumChannels, flip_sin_to_cos, downscale_freq_shift), scale 1, max period
// 10000, computed in float32.
type Timesteps struct {
	NumChannels        int
	FlipSinToCos       bool
	DownscaleFreqShift float64
}

// Forward embeds t: [N] (any numeric dtype) → [N, NumChannels] float32.
func (m *Timesteps) Forward(t *Node) *Node {
	return nn.TimestepEmbedding(t, m.NumChannels, m.FlipSinToCos, m.DownscaleFreqShift, 1, 10000)
}

// TimestepEmbedding ports diffusers TimestepEmbedding (models/embeddings.py) without cond_proj:
// linear_1 (in → TimeEmbedDim), act, linear_2 (TimeEmbedDim → TimeEmbedDim), optional post_act.
type TimestepEmbedding struct {
	TimeEmbedDim int
	Act          string
	PostAct      string // "" for none
}

// Forward runs the MLP. ctx is the module's scope. x: [B, in] → [B, TimeEmbedDim].
func (m *TimestepEmbedding) Forward(ctx *model.Scope, x *Node) *Node {
	h := nn.Linear(ctx.At("linear_1"), x, m.TimeEmbedDim, true) // [B, T]
	h = nn.Activation(m.Act, h)
	h = nn.Linear(ctx.At("linear_2"), h, m.TimeEmbedDim, true) // [B, T]
	if m.PostAct != "" {
		h = nn.Activation(m.PostAct, h)
	}
	return h
}

// broadcastTimesteps ports the timestep handling of UNet2DConditionModel.get_time_embed: a scalar or
// a [1] timestep is expanded to the batch; any numeric dtype is accepted (the sinusoid converts to
// float32). t: [], [1] or [B] → [B].
func broadcastTimesteps(t *Node, batch int) *Node {
	switch {
	case t.Rank() == 0:
		return BroadcastToDims(InsertAxes(t, 0), batch)
	case t.Rank() == 1 && t.Shape().Dim(0) == batch:
		return t
	case t.Rank() == 1 && t.Shape().Dim(0) == 1:
		return BroadcastToDims(t, batch)
	}
	exceptions.Panicf("unet: want timestep [], [1] or [%d] (one per batch item), got %s", batch, t.Shape())
	return nil
}

// addEmbedding ports the SDXL branch of UNet2DConditionModel.get_aug_embed (addition_embed_type
// "text_time"): time_embeds = add_time_proj(time_ids.flatten()).reshape(B, -1);
// aug = add_embedding(cat([text_embeds, time_embeds], -1)). ctx is the UNet root.
// textEmbeds: [B, P], timeIDs: [B, K] → [B, T].
func (m *UNet2DConditionModel) addEmbedding(ctx *model.Scope, cond Conditioning[*Node], dtype dtypes.DType, capture func(string, *Node)) *Node {
	if cond.TextEmbeds == nil || cond.TimeIDs == nil {
		exceptions.Panicf("unet: addition_embed_type \"text_time\" (SDXL) needs a Conditioning with TextEmbeds [B, pooled] and TimeIDs [B, k]")
	}
	text, ids := cond.TextEmbeds, cond.TimeIDs
	if text.Rank() != 2 || ids.Rank() != 2 || text.Shape().Dim(0) != ids.Shape().Dim(0) {
		exceptions.Panicf("unet: want text_embeds [B, pooled] and time_ids [B, k], got %s and %s", text.Shape(), ids.Shape())
	}
	b, k := ids.Shape().Dim(0), ids.Shape().Dim(1)
	want := *m.Config.ProjectionClassEmbeddingsInputDim
	if got := text.Shape().Dim(1) + k*m.AddTimeProj.NumChannels; got != want {
		exceptions.Panicf("unet: text_embeds %s and time_ids %s give %d add_embedding inputs (pooled + k·%d), config projection_class_embeddings_input_dim is %d",
			text.Shape(), ids.Shape(), got, m.AddTimeProj.NumChannels, want)
	}
	timeEmbeds := m.AddTimeProj.Forward(Reshape(ids, b*k)) // [B·k, d]
	capture("add_time_proj", timeEmbeds)
	timeEmbeds = Reshape(timeEmbeds, b, k*m.AddTimeProj.NumChannels) // [B, k·d]
	addEmbeds := Concatenate([]*Node{ConvertDType(text, dtype), ConvertDType(timeEmbeds, dtype)}, -1)
	aug := m.AddEmbedding.Forward(ctx.At("add_embedding"), addEmbeds) // [B, T]
	capture("add_embedding", aug)
	return aug
}
