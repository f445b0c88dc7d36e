package vae

import (
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/unet"
)

// Decoder ports diffusers models/autoencoders/vae.py Decoder with norm_type "group": conv_in to
// block_out_channels[-1], mid_block (UNetMidBlock2D), one UpDecoderBlock2D per level over the
// reversed channels (layers_per_block+1 resnets, nearest 2x upsampler + conv except at the last
// level), conv_norm_out (GroupNorm eps 1e-6), SiLU, conv_out. The blocks are the UNet's (package
// unet), built without time embedding.
type Decoder struct {
	Config   *Config
	MidBlock *unet.UNetMidBlock2D
	UpBlocks []*unet.UpDecoderBlock2D
}

// newDecoder ports Decoder.__init__: it resolves every block's sizes from cfg.
func newDecoder(cfg *Config) *Decoder {
	ch := cfg.BlockOutChannels
	levels := len(ch)
	p := resnetParams(cfg)
	d := &Decoder{Config: cfg, MidBlock: newMidBlock(cfg)}
	out := ch[levels-1]
	for i := range cfg.UpBlockTypes {
		prev := out
		out = ch[levels-1-i]
		d.UpBlocks = append(d.UpBlocks, unet.NewUpDecoderBlock2D(p, prev, out, cfg.LayersPerBlock+1, i != levels-1))
	}
	return d
}

// Forward decodes latents (after post_quant_conv). ctx is the "decoder" scope.
// z: [B, latent_channels, h, w] → [B, out_channels, h·f, w·f], f = 2^(levels-1).
func (d *Decoder) Forward(ctx *model.Scope, z *Node) *Node {
	cfg := d.Config
	if z.Rank() != 4 || z.Shape().Dim(1) != cfg.LatentChannels {
		exceptions.Panicf("vae.Decoder: want latents [B, %d, h, w], got %s", cfg.LatentChannels, z.Shape())
	}
	h := nn.Conv2D(ctx.At("conv_in"), z, cfg.BlockOutChannels[cfg.Levels()-1], 3, 1, 1) // [B, C_last, h, w]
	h = d.MidBlock.Forward(ctx.At("mid_block"), h, nil, nil)                            // [B, C_last, h, w]
	for i, blk := range d.UpBlocks {
		h = blk.Forward(ctx.At("up_blocks").At("%d", i), h) // [B, C_rev_i, h·2^(i+1), w·2^(i+1)] (no 2x at the last)
	}
	h = nn.GroupNorm(ctx.At("conv_norm_out"), h, cfg.NormNumGroups, normEps) // [B, C0, H, W]
	h = nn.SiLU(h)
	return nn.Conv2D(ctx.At("conv_out"), h, cfg.OutChannels, 3, 1, 1) // [B, out_channels, H, W]
}
