package vae

import (
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
)

// DownEncoderBlock2D ports diffusers models/unets/unet_2d_blocks.py DownEncoderBlock2D (temb None):
// NumLayers resnets (the first maps In → Out), then, unless it is the last level, Downsample2D
// (downsample_padding 0). Weights: resnets.N.*, downsamplers.0.conv.*.
type DownEncoderBlock2D struct {
	In, Out, NumLayers, Groups int
	AddDownsample              bool
}

// Forward: x [B, In, H, W] → [B, Out, H', W'] with H' = ⌊H/2⌋, W' = ⌊W/2⌋ when downsampling.
func (d *DownEncoderBlock2D) Forward(ctx *model.Scope, x *Node) *Node {
	for i := 0; i < d.NumLayers; i++ {
		in := d.Out
		if i == 0 {
			in = d.In
		}
		r := &ResnetBlock2D{In: in, Out: d.Out, Groups: d.Groups, Eps: normEps}
		x = r.Forward(ctx.At("resnets").At("%d", i), x) // [B, Out, H, W]
	}
	if d.AddDownsample {
		x = Downsample2D(ctx.At("downsamplers").At("0"), x, d.Out) // [B, Out, ⌊H/2⌋, ⌊W/2⌋]
	}
	return x
}

// UpDecoderBlock2D ports diffusers UpDecoderBlock2D (temb None, resnet_time_scale_shift "default"):
// NumLayers resnets (the first maps In → Out), then, unless it is the last level, Upsample2D.
// Weights: resnets.N.*, upsamplers.0.conv.*.
type UpDecoderBlock2D struct {
	In, Out, NumLayers, Groups int
	AddUpsample                bool
}

// Forward: x [B, In, H, W] → [B, Out, 2H, 2W] when upsampling, else [B, Out, H, W].
func (u *UpDecoderBlock2D) Forward(ctx *model.Scope, x *Node) *Node {
	for i := 0; i < u.NumLayers; i++ {
		in := u.Out
		if i == 0 {
			in = u.In
		}
		r := &ResnetBlock2D{In: in, Out: u.Out, Groups: u.Groups, Eps: normEps}
		x = r.Forward(ctx.At("resnets").At("%d", i), x) // [B, Out, H, W]
	}
	if u.AddUpsample {
		x = Upsample2D(ctx.At("upsamplers").At("0"), x, u.Out) // [B, Out, 2H, 2W]
	}
	return x
}

// UNetMidBlock2D ports diffusers UNetMidBlock2D as the VAE builds it (temb None, one layer,
// attention_head_dim = channels so a single head, output_scale_factor 1): resnets.0, then
// attentions.0 when AddAttention (mid_block_add_attention), then resnets.1.
type UNetMidBlock2D struct {
	Channels, Groups int
	AddAttention     bool
}

// Forward: x [B, C, H, W] → [B, C, H, W].
func (m *UNetMidBlock2D) Forward(ctx *model.Scope, x *Node) *Node {
	r := &ResnetBlock2D{In: m.Channels, Out: m.Channels, Groups: m.Groups, Eps: normEps}
	x = r.Forward(ctx.At("resnets").At("0"), x)
	if m.AddAttention {
		a := &Attention{Channels: m.Channels, Heads: 1, Groups: m.Groups, Eps: normEps}
		x = a.Forward(ctx.At("attentions").At("0"), x)
	}
	return r.Forward(ctx.At("resnets").At("1"), x)
}

// Downsample2D ports diffusers models/downsampling.py Downsample2D(use_conv=True, padding=0):
// F.pad(x, (0, 1, 0, 1)) (one zero row at the bottom, one zero column at the right), then a 3x3
// stride-2 conv with no padding, weights under ctx "conv". x: [B, C, H, W] → [B, out, ⌊H/2⌋, ⌊W/2⌋].
func Downsample2D(ctx *model.Scope, x *Node, out int) *Node {
	return nn.Conv2DWith(ctx.At("conv"), x, nn.Conv2DConfig{Out: out, Kernel: 3, Stride: 2,
		Padding: [2][2]int{{0, 1}, {0, 1}}})
}

// Upsample2D ports diffusers models/upsampling.py Upsample2D(use_conv=True): nearest-neighbour 2x
// (F.interpolate(scale_factor=2.0, mode="nearest")), then a 3x3 conv with padding 1, weights under
// ctx "conv". x: [B, C, H, W] → [B, out, 2H, 2W].
func Upsample2D(ctx *model.Scope, x *Node, out int) *Node {
	x = UpsampleNearest2x(x)                          // [B, C, 2H, 2W]
	return nn.Conv2D(ctx.At("conv"), x, out, 3, 1, 1) // [B, out, 2H, 2W]
}

// UpsampleNearest2x repeats every pixel into a 2x2 block, with a broadcast and a reshape (its
// gradient is a plain reduce-sum). x: [B, C, H, W] → [B, C, 2H, 2W].
func UpsampleNearest2x(x *Node) *Node {
	dims := x.Shape().Dimensions
	b, c, h, w := dims[0], dims[1], dims[2], dims[3]
	y := Reshape(x, b, c, h, 1, w, 1)        // [B, C, H, 1, W, 1]
	y = BroadcastToDims(y, b, c, h, 2, w, 2) // [B, C, H, 2, W, 2]
	return Reshape(y, b, c, 2*h, 2*w)        // [B, C, 2H, 2W]
}
