package vae

import (
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
)

// ResnetBlock2D ports diffusers models/resnet.py ResnetBlock2D as the VAE uses it: temb_channels
// None (no time_emb_proj), time_embedding_norm "default", pre-norm, output_scale_factor 1, dropout
// 0, GroupNorm eps 1e-6. A 1x1 conv_shortcut (with bias) is used when In != Out.
type ResnetBlock2D struct {
	In, Out int
	Groups  int
	Eps     float64
}

// Forward computes (x + conv2(silu(norm2(conv1(silu(norm1(x))))))) with the shortcut on x.
// ctx is the block's scope. x: [B, In, H, W] → [B, Out, H, W].
func (r *ResnetBlock2D) Forward(ctx *model.Scope, x *Node) *Node {
	h := nn.GroupNorm(ctx.At("norm1"), x, r.Groups, r.Eps) // [B, In, H, W]
	h = nn.SiLU(h)
	h = nn.Conv2D(ctx.At("conv1"), h, r.Out, 3, 1, 1) // [B, Out, H, W]
	h = nn.GroupNorm(ctx.At("norm2"), h, r.Groups, r.Eps)
	h = nn.SiLU(h)
	h = nn.Conv2D(ctx.At("conv2"), h, r.Out, 3, 1, 1) // [B, Out, H, W]
	if r.In != r.Out {
		x = nn.Conv2D(ctx.At("conv_shortcut"), x, r.Out, 1, 1, 0) // [B, Out, H, W]
	}
	return Add(x, h)
}
