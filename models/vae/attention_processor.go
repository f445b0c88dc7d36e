package vae

import (
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
)

// Attention ports diffusers models/attention_processor.py Attention with AttnProcessor as the VAE
// mid block builds it (UNetMidBlock2D: heads = channels / attention_head_dim = 1, dim_head =
// channels, bias=True, group_norm with norm_num_groups and eps 1e-6, residual_connection=True,
// rescale_output_factor=1, no cross-attention). Weights: group_norm, to_q, to_k, to_v, to_out.0
// (legacy checkpoints' query/key/value/proj_attn are renamed at load, see Load).
type Attention struct {
	Channels, Heads, Groups int
	Eps                     float64
}

// Forward computes x + to_out(softmax(q kᵀ/√d) v) over the H·W positions, with q, k, v projected
// from group_norm(x). ctx is the attention module's scope. x: [B, C, H, W] → [B, C, H, W].
func (a *Attention) Forward(ctx *model.Scope, x *Node) *Node {
	if x.Rank() != 4 || x.Shape().Dim(1) != a.Channels {
		exceptions.Panicf("vae.Attention at %q: want x [B, %d, H, W], got %s", ctx.Scope(), a.Channels, x.Shape())
	}
	dims := x.Shape().Dimensions
	b, c, hgt, wid := dims[0], dims[1], dims[2], dims[3]
	h := nn.GroupNorm(ctx.At("group_norm"), x, a.Groups, a.Eps) // [B, C, H, W]
	h = Transpose(Reshape(h, b, c, hgt*wid), 1, 2)              // [B, H·W, C]
	q := nn.Linear(ctx.At("to_q"), h, c, true)                  // [B, H·W, C]
	k := nn.Linear(ctx.At("to_k"), h, c, true)                  // [B, H·W, C]
	v := nn.Linear(ctx.At("to_v"), h, c, true)                  // [B, H·W, C]
	o := nn.ScaledDotProductAttention(q, k, v, a.Heads, false)  // [B, H·W, C]
	o = nn.Linear(ctx.At("to_out").At("0"), o, c, true)         // [B, H·W, C]
	o = Reshape(Transpose(o, 1, 2), b, c, hgt, wid)             // [B, C, H, W]
	return Add(o, x)                                            // residual; rescale_output_factor 1
}
