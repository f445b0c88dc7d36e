package vae

import (
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/unet"
)

// Encoder ports diffusers models/autoencoders/vae.py Encoder with double_z=True: conv_in, one
// DownEncoderBlock2D per level (layers_per_block resnets, a downsampler with padding 0 except at the
// last level), mid_block (UNetMidBlock2D), conv_norm_out (GroupNorm eps 1e-6), SiLU, conv_out to
// 2·latent_channels. The blocks are the UNet's (package unet), built without time embedding.
type Encoder struct {
	Config     *Config
	DownBlocks []*unet.DownEncoderBlock2D
	MidBlock   *unet.UNetMidBlock2D
}

// newEncoder ports Encoder.__init__: it resolves every block's sizes from cfg.
func newEncoder(cfg *Config) *Encoder {
	ch := cfg.BlockOutChannels
	p := resnetParams(cfg)
	e := &Encoder{Config: cfg, MidBlock: newMidBlock(cfg)}
	out := ch[0]
	for i := range cfg.DownBlockTypes {
		in := out
		out = ch[i]
		e.DownBlocks = append(e.DownBlocks, unet.NewDownEncoderBlock2D(p, in, out, cfg.LayersPerBlock, i != len(ch)-1, 0))
	}
	return e
}

// resnetParams are the resnet settings of every VAE block: temb_channels None, norm_num_groups,
// eps 1e-6, act_fn.
func resnetParams(cfg *Config) unet.ResnetParams {
	return unet.ResnetParams{Groups: cfg.NormNumGroups, Eps: normEps, Act: cfg.ActFn}
}

// newMidBlock is the encoder's and decoder's mid block: UNetMidBlock2D on the last level's channels
// (one layer, attention_head_dim = channels so a single head, output_scale_factor 1), with attention
// when mid_block_add_attention.
func newMidBlock(cfg *Config) *unet.UNetMidBlock2D {
	c := cfg.BlockOutChannels[cfg.Levels()-1]
	return unet.NewUNetMidBlock2D(resnetParams(cfg), c, 1, cfg.MidBlockAddAttention, c, 1)
}

// Forward computes the encoder's raw moments (before quant_conv). ctx is the "encoder" scope.
// x: [B, in_channels, H, W] → [B, 2·latent_channels, H/f, W/f], f = 2^(levels-1) (each
// downsampling floors odd sizes).
func (e *Encoder) Forward(ctx *model.Scope, x *Node) *Node {
	cfg := e.Config
	if x.Rank() != 4 || x.Shape().Dim(1) != cfg.InChannels {
		exceptions.Panicf("vae.Encoder: want image [B, %d, H, W], got %s", cfg.InChannels, x.Shape())
	}
	h := nn.Conv2D(ctx.At("conv_in"), x, cfg.BlockOutChannels[0], 3, 1, 1) // [B, C0, H, W]
	for i, blk := range e.DownBlocks {
		h = blk.Forward(ctx.At("down_blocks").At("%d", i), h) // [B, C_i, H/2^i', W/2^i']
	}
	h = e.MidBlock.Forward(ctx.At("mid_block"), h, nil, nil)                 // [B, C_last, h, w]
	h = nn.GroupNorm(ctx.At("conv_norm_out"), h, cfg.NormNumGroups, normEps) // [B, C_last, h, w]
	h = nn.SiLU(h)
	return nn.Conv2D(ctx.At("conv_out"), h, 2*cfg.LatentChannels, 3, 1, 1) // [B, 2·latent, h, w]
}
