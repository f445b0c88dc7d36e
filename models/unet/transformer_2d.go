package unet

import (
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
)

// Transformer2DModel ports diffusers models/transformers/transformer_2d.py Transformer2DModel for
// continuous inputs, as the UNet's cross-attention blocks build it:
//
//	h = proj_in(norm(x))  (GroupNorm(Groups, eps 1e-6); proj_in a 1x1 conv before, or a Linear after,
//	                       the [B, C, H, W] → [B, H·W, C] reshape, per use_linear_projection)
//	h = transformer_blocks.N(h, encoder_hidden_states) ...
//	out = proj_out(h) + x
type Transformer2DModel struct {
	Channels            int // in_channels = out_channels
	Heads, HeadDim      int
	Groups              int
	UseLinearProjection bool
	Blocks              []BasicTransformerBlock
}

func newTransformer2D(cfg *Config, channels, heads, layers, crossDim int) *Transformer2DModel {
	headDim := channels / heads
	inner := heads * headDim
	m := &Transformer2DModel{Channels: channels, Heads: heads, HeadDim: headDim, Groups: cfg.Groups(),
		UseLinearProjection: cfg.UseLinearProjection}
	for range layers {
		m.Blocks = append(m.Blocks, BasicTransformerBlock{
			Dim:     inner,
			Attn1:   Attention{QueryDim: inner, Heads: heads, HeadDim: headDim, UpcastAttention: cfg.UpcastAttention},
			Attn2:   Attention{QueryDim: inner, CrossAttentionDim: crossDim, Heads: heads, HeadDim: headDim, UpcastAttention: cfg.UpcastAttention},
			FF:      FeedForward{Dim: inner, InnerDim: 4 * inner},
			NormEps: 1e-5,
		})
	}
	return m
}

// InnerDim is heads · head_dim, the width of the transformer blocks.
func (m *Transformer2DModel) InnerDim() int { return m.Heads * m.HeadDim }

// Forward runs the model. ctx is its scope (attentions/N). x: [B, C, H, W],
// encoder: [B, seq, cross_attention_dim] → [B, C, H, W].
func (m *Transformer2DModel) Forward(ctx *model.Scope, x, encoder *Node) *Node {
	if x.Rank() != 4 || x.Shape().Dim(1) != m.Channels {
		exceptions.Panicf("unet.Transformer2DModel at %q: want x [B, %d, H, W], got %s", ctx.Scope(), m.Channels, x.Shape())
	}
	b, hh, ww := x.Shape().Dim(0), x.Shape().Dim(2), x.Shape().Dim(3)
	inner := m.InnerDim()
	h := nn.GroupNorm(ctx.At("norm"), x, m.Groups, 1e-6)
	if m.UseLinearProjection {
		h = Reshape(TransposeAllDims(h, 0, 2, 3, 1), b, hh*ww, m.Channels) // [B, H·W, C]
		h = nn.Linear(ctx.At("proj_in"), h, inner, true)                   // [B, H·W, inner]
	} else {
		h = nn.Conv2D(ctx.At("proj_in"), h, inner, 1, 1, 0)           // [B, inner, H, W]
		h = Reshape(TransposeAllDims(h, 0, 2, 3, 1), b, hh*ww, inner) // [B, H·W, inner]
	}
	blocks := ctx.At("transformer_blocks")
	for i := range m.Blocks {
		h = m.Blocks[i].Forward(blocks.At("%d", i), h, encoder, hh, ww)
	}
	if m.UseLinearProjection {
		h = nn.Linear(ctx.At("proj_out"), h, m.Channels, true)              // [B, H·W, C]
		h = TransposeAllDims(Reshape(h, b, hh, ww, m.Channels), 0, 3, 1, 2) // [B, C, H, W]
	} else {
		h = TransposeAllDims(Reshape(h, b, hh, ww, inner), 0, 3, 1, 2) // [B, inner, H, W]
		h = nn.Conv2D(ctx.At("proj_out"), h, m.Channels, 1, 1, 0)      // [B, C, H, W]
	}
	return Add(h, x)
}
