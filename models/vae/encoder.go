package vae

import (
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
)

// Encoder ports diffusers models/autoencoders/vae.py Encoder with double_z=True: conv_in, one
// DownEncoderBlock2D per level (layers_per_block resnets, a downsampler except at the last level),
// mid_block, conv_norm_out (GroupNorm eps 1e-6), SiLU, conv_out to 2·latent_channels.
type Encoder struct {
	cfg *Config
}

// Forward computes the encoder's raw moments (before quant_conv). ctx is the "encoder" scope.
// x: [B, in_channels, H, W] → [B, 2·latent_channels, H/f, W/f], f = 2^(levels-1) (each
// downsampling floors odd sizes).
func (e *Encoder) Forward(ctx *model.Scope, x *Node) *Node {
	cfg := e.cfg
	if x.Rank() != 4 || x.Shape().Dim(1) != cfg.InChannels {
		exceptions.Panicf("vae.Encoder: want image [B, %d, H, W], got %s", cfg.InChannels, x.Shape())
	}
	ch := cfg.BlockOutChannels
	h := nn.Conv2D(ctx.At("conv_in"), x, ch[0], 3, 1, 1) // [B, C0, H, W]
	out := ch[0]
	for i := range cfg.DownBlockTypes {
		in := out
		out = ch[i]
		blk := &DownEncoderBlock2D{In: in, Out: out, NumLayers: cfg.LayersPerBlock, Groups: cfg.NormNumGroups,
			AddDownsample: i != len(ch)-1}
		h = blk.Forward(ctx.At("down_blocks").At("%d", i), h) // [B, C_i, H/2^i', W/2^i']
	}
	mid := &UNetMidBlock2D{Channels: ch[len(ch)-1], Groups: cfg.NormNumGroups, AddAttention: cfg.MidBlockAddAttention}
	h = mid.Forward(ctx.At("mid_block"), h)                                  // [B, C_last, h, w]
	h = nn.GroupNorm(ctx.At("conv_norm_out"), h, cfg.NormNumGroups, normEps) // [B, C_last, h, w]
	h = nn.SiLU(h)
	return nn.Conv2D(ctx.At("conv_out"), h, 2*cfg.LatentChannels, 3, 1, 1) // [B, 2·latent, h, w]
}
