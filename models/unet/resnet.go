package unet

import (
	"math"

	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
)

// ResnetBlock2D ports diffusers models/resnet.py ResnetBlock2D with time_embedding_norm "default",
// pre-norm, no up/down sampling:
//
//	h = conv1(act(norm1(x))) + time_emb_proj(act(temb))[:, :, None, None]
//	h = conv2(act(norm2(h)))                       (dropout: eval mode)
//	out = (conv_shortcut(x) if In != Out else x + h) / OutputScaleFactor
//
// The UNet's resnets take the time embedding; the VAE's are built with temb_channels None
// (TembChannels 0): no time_emb_proj, and Forward takes a nil temb.
type ResnetBlock2D struct {
	In, Out int
	// TembChannels is temb_channels, the width of temb; 0 for None (no time_emb_proj).
	TembChannels      int
	Groups            int
	Eps               float64
	Act               string
	OutputScaleFactor float64
}

// ResnetParams are the resnet_* arguments diffusers' blocks pass to each of their ResnetBlock2Ds:
// temb_channels (0 for None), resnet_groups, resnet_eps and resnet_act_fn.
type ResnetParams struct {
	TembChannels int
	Groups       int
	Eps          float64
	Act          string
}

// New is the ResnetBlock2D from in to out channels with these parameters.
func (p ResnetParams) New(in, out int, outputScaleFactor float64) ResnetBlock2D {
	return ResnetBlock2D{In: in, Out: out, TembChannels: p.TembChannels, Groups: p.Groups, Eps: p.Eps, Act: p.Act,
		OutputScaleFactor: outputScaleFactor}
}

// newResnets is the resnet stack of the down, encoder and decoder blocks: n resnets, the first
// from in to out channels, the others from out to out.
func newResnets(p ResnetParams, in, out, n int, outputScaleFactor float64) []ResnetBlock2D {
	resnets := make([]ResnetBlock2D, n)
	for j := range resnets {
		rin := out
		if j == 0 {
			rin = in
		}
		resnets[j] = p.New(rin, out, outputScaleFactor)
	}
	return resnets
}

// Forward runs the block. ctx is the block's scope. x: [B, In, H, W], temb: [B, TembChannels]
// (nil when TembChannels is 0) → [B, Out, H, W]. With nn.MemoryOptions.GradientCheckpointing it is
// one checkpointed block (see checkpointed).
func (m *ResnetBlock2D) Forward(ctx *model.Scope, x, temb *Node) *Node {
	if x.Rank() != 4 || x.Shape().Dim(1) != m.In {
		exceptions.Panicf("unet.ResnetBlock2D at %q: want x [B, %d, H, W], got %s", ctx.Scope(), m.In, x.Shape())
	}
	switch {
	case m.TembChannels == 0 && temb != nil:
		exceptions.Panicf("unet.ResnetBlock2D at %q: built without time embedding (temb_channels None), got temb %s", ctx.Scope(), temb.Shape())
	case m.TembChannels > 0 && (temb == nil || temb.Rank() != 2 || temb.Shape().Dim(1) != m.TembChannels):
		exceptions.Panicf("unet.ResnetBlock2D at %q: want temb [B, %d], got %v", ctx.Scope(), m.TembChannels, shapeOf(temb))
	}
	return checkpointed(x, func(x *Node) *Node { return m.forward(ctx, x, temb) })
}

// forward is Forward's computation, without the argument checks.
func (m *ResnetBlock2D) forward(ctx *model.Scope, x, temb *Node) *Node {
	h := nn.GroupNorm(ctx.At("norm1"), x, m.Groups, m.Eps)
	h = nn.Activation(m.Act, h)
	h = nn.Conv2D(ctx.At("conv1"), h, m.Out, 3, 1, 1) // [B, Out, H, W]
	if m.TembChannels > 0 {
		t := nn.Linear(ctx.At("time_emb_proj"), nn.Activation(m.Act, temb), m.Out, true)
		h = Add(h, InsertAxes(t, -1, -1)) // + [B, Out, 1, 1]
	}
	h = nn.GroupNorm(ctx.At("norm2"), h, m.Groups, m.Eps)
	h = nn.Activation(m.Act, h)
	h = nn.Conv2D(ctx.At("conv2"), h, m.Out, 3, 1, 1) // [B, Out, H, W]
	shortcut := x
	if m.In != m.Out {
		shortcut = nn.Conv2D(ctx.At("conv_shortcut"), x, m.Out, 1, 1, 0) // [B, Out, H, W]
	}
	out := Add(shortcut, h)
	if m.OutputScaleFactor != 1 {
		out = DivScalar(out, m.OutputScaleFactor)
	}
	return out
}

// checkpointed returns block(x). When the graph's nn.MemoryOptions ask for gradient checkpointing,
// it is one rematerialised block instead, as diffusers' _gradient_checkpointing_func (torch.utils.
// checkpoint) runs each ResnetBlock2D and BasicTransformerBlock: x.Checkpoint() keeps the block's
// input and marks every node computed from it inside the block for recomputation in the backward
// pass (GoMLX core/graph/gradcheckpoint.go), and StopCheckpoint keeps the output and ends the block.
//
// Only x, the activation the block transforms, is a checkpoint. The block's other inputs (temb,
// encoder_hidden_states) and its weights are left as they are: the nodes computed from them alone
// (SiLU(temb) and time_emb_proj, attn2's to_k/to_v of the text, LoRA deltas of those) do not depend
// on x, so GoMLX keeps them from the forward pass like any node outside the block, and gradients
// reach those inputs as without checkpointing. They are small ([B, C] and [B, seq, inner]) next to
// the spatial activations the block recomputes, and a Checkpoint of each would store a copy per
// block instead (the Go backend's OptimizationBarrier copies an operand still used elsewhere).
//
// With checkpointing off the graph is exactly block(x): no barrier, no extra node.
func checkpointed(x *Node, block func(x *Node) *Node) *Node {
	if !nn.MemoryOptionsOf(x.Graph()).GradientCheckpointing {
		return block(x)
	}
	return block(x.Checkpoint()).StopCheckpoint()
}

// Downsample2D ports diffusers models/downsampling.py Downsample2D(use_conv=True, name="op"): a 3x3
// stride-2 conv named "conv", padding Padding on every side; Padding 0 pads (0, 1, 0, 1) first, as
// diffusers does. The UNet's down blocks (downsample_padding) and the VAE encoder's
// DownEncoderBlock2D (padding 0) use it.
type Downsample2D struct {
	Channels int
	Padding  int
}

// Forward downsamples. ctx is the downsampler's scope (downsamplers/0).
// x: [B, C, H, W] → [B, C, ⌊(H+2p-3)/2⌋+1, ⌊(W+2p-3)/2⌋+1].
func (m *Downsample2D) Forward(ctx *model.Scope, x *Node) *Node {
	pad := [2][2]int{{m.Padding, m.Padding}, {m.Padding, m.Padding}}
	if m.Padding == 0 {
		pad = [2][2]int{{0, 1}, {0, 1}}
	}
	return nn.Conv2DWith(ctx.At("conv"), x, nn.Conv2DConfig{Out: m.Channels, Kernel: 3, Stride: 2, Padding: pad})
}

// Upsample2D ports diffusers models/upsampling.py Upsample2D(use_conv=True): nearest-neighbour
// interpolation (2x, or to a forced output size), then a 3x3 conv named "conv". The UNet's up blocks
// and the VAE decoder's UpDecoderBlock2D use it.
type Upsample2D struct {
	Channels int
}

// Forward upsamples to outH x outW (2H x 2W unless the UNet forwards the skip's size; the VAE
// always upsamples 2x).
// ctx is the upsampler's scope (upsamplers/0). x: [B, C, H, W] → [B, C, outH, outW].
func (m *Upsample2D) Forward(ctx *model.Scope, x *Node, outH, outW int) *Node {
	h := nearestResize(x, outH, outW)                        // [B, C, outH, outW]
	return nn.Conv2D(ctx.At("conv"), h, m.Channels, 3, 1, 1) // [B, C, outH, outW]
}

// nearestResize ports F.interpolate(x, size=(outH, outW), mode="nearest") (torch's legacy nearest:
// src = min(⌊dst·(in/out)⌋, in-1) in float32, dst>>1 for exact 2x). Exact 2x is a reshape+broadcast,
// whose gradient is a cheap reduce-sum (one for both axes when both double); other sizes contract
// with a 0/1 selection matrix. x: [B, C, H, W] → [B, C, outH, outW].
func nearestResize(x *Node, outH, outW int) *Node {
	dims := x.Shape().Dimensions
	if b, c, h, w := dims[0], dims[1], dims[2], dims[3]; outH == 2*h && outW == 2*w {
		y := Reshape(x, b, c, h, 1, w, 1)        // [B, C, H, 1, W, 1]
		y = BroadcastToDims(y, b, c, h, 2, w, 2) // [B, C, H, 2, W, 2]
		return Reshape(y, b, c, outH, outW)      // [B, C, 2H, 2W]
	}
	x = nearestAxis(x, 2, outH)
	return nearestAxis(x, 3, outW)
}

func nearestAxis(x *Node, axis, out int) *Node {
	dims := x.Shape().Dimensions
	in := dims[axis]
	switch {
	case out == in:
		return x
	case out == 2*in:
		expanded := make([]int, 0, len(dims)+1) // [..., in, 1, ...]
		expanded = append(expanded, dims[:axis+1]...)
		expanded = append(expanded, 1)
		expanded = append(expanded, dims[axis+1:]...)
		h := Reshape(x, expanded...)
		expanded[axis+1] = 2
		h = BroadcastToDims(h, expanded...) // [..., in, 2, ...]
		merged := append([]int(nil), dims...)
		merged[axis] = out
		return Reshape(h, merged...) // [..., 2·in, ...]
	}
	if out <= 0 {
		exceptions.Panicf("unet: nearest upsample of %s axis %d to size %d", x.Shape(), axis, out)
	}
	scale := float32(in) / float32(out)
	sel := make([][]float32, out) // [out, in]
	for o := range sel {
		sel[o] = make([]float32, in)
		src := int(math.Floor(float64(float32(o) * scale))) // float32 product, as torch
		if src > in-1 {
			src = in - 1
		}
		sel[o][src] = 1
	}
	s := ConvertDType(Const(x.Graph(), sel), x.DType())
	switch axis {
	case 2:
		return Einsum("bchw,oh->bcow", x, s) // [B, C, out, W]
	case 3:
		return Einsum("bchw,ow->bcho", x, s) // [B, C, H, out]
	}
	exceptions.Panicf("unet: nearestAxis supports axes 2 and 3, got %d", axis)
	return nil
}
