package unet

import (
	"strings"

	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// DownBlock is a down block of the UNet: DownBlock2D or CrossAttnDownBlock2D.
type DownBlock interface {
	// Forward runs the block. ctx is its scope (down_blocks/i). x: [B, C_in, H, W], temb: [B, T],
	// encoder: [B, seq, cross] → the output [B, C_out, H', W'] and the skip states it adds to the
	// UNet's stack (one per resnet, plus the downsampler's output).
	Forward(ctx *model.Scope, x, temb, encoder *Node) (out *Node, skips []*Node)
}

// UpBlock is an up block of the UNet: UpBlock2D or CrossAttnUpBlock2D.
type UpBlock interface {
	// NumResnets is how many skip states the block pops (len(resnets)).
	NumResnets() int
	// Forward runs the block. ctx is its scope (up_blocks/i). x: [B, C, H, W]; skips: the block's
	// skip states in push order (the last one is concatenated first); upH, upW: the upsampler's output
	// size (ignored without upsampler) → [B, C_out, upH, upW] (or [B, C_out, H, W]).
	Forward(ctx *model.Scope, x *Node, skips []*Node, temb, encoder *Node, upH, upW int) *Node
}

// MidBlock is the UNet's mid block: UNetMidBlock2DCrossAttn or UNetMidBlock2D.
type MidBlock interface {
	// Forward runs the block. ctx is its scope (mid_block). x: [B, C, H, W] → [B, C, H, W].
	Forward(ctx *model.Scope, x, temb, encoder *Node) *Node
}

// DownBlock2D ports diffusers unets/unet_2d_blocks.py DownBlock2D: resnets, then an optional
// Downsample2D; every resnet output and the downsampler output are skip states.
type DownBlock2D struct {
	Resnets     []ResnetBlock2D
	Downsampler *Downsample2D // nil on the last level
}

// Forward implements DownBlock.
func (m *DownBlock2D) Forward(ctx *model.Scope, x, temb, encoder *Node) (*Node, []*Node) {
	var skips []*Node
	for i := range m.Resnets {
		x = m.Resnets[i].Forward(ctx.At("resnets").At("%d", i), x, temb) // [B, C_out, H, W]
		skips = append(skips, x)
	}
	if m.Downsampler != nil {
		x = m.Downsampler.Forward(ctx.At("downsamplers").At("0"), x) // [B, C_out, H/2, W/2]
		skips = append(skips, x)
	}
	return x, skips
}

// CrossAttnDownBlock2D ports diffusers unets/unet_2d_blocks.py CrossAttnDownBlock2D: pairs of
// (resnet, Transformer2DModel), then an optional Downsample2D; every pair's output and the
// downsampler output are skip states.
type CrossAttnDownBlock2D struct {
	Resnets     []ResnetBlock2D
	Attentions  []*Transformer2DModel
	Downsampler *Downsample2D // nil on the last level
}

// Forward implements DownBlock.
func (m *CrossAttnDownBlock2D) Forward(ctx *model.Scope, x, temb, encoder *Node) (*Node, []*Node) {
	var skips []*Node
	for i := range m.Resnets {
		x = m.Resnets[i].Forward(ctx.At("resnets").At("%d", i), x, temb)          // [B, C_out, H, W]
		x = m.Attentions[i].Forward(ctx.At("attentions").At("%d", i), x, encoder) // [B, C_out, H, W]
		skips = append(skips, x)
	}
	if m.Downsampler != nil {
		x = m.Downsampler.Forward(ctx.At("downsamplers").At("0"), x) // [B, C_out, H/2, W/2]
		skips = append(skips, x)
	}
	return x, skips
}

// UNetMidBlock2DCrossAttn ports diffusers unets/unet_2d_blocks.py UNetMidBlock2DCrossAttn
// (num_layers 1): resnets.0, then (attentions.i, resnets.i+1) pairs.
type UNetMidBlock2DCrossAttn struct {
	Resnets    []ResnetBlock2D // len(Attentions)+1
	Attentions []*Transformer2DModel
}

// Forward implements MidBlock.
func (m *UNetMidBlock2DCrossAttn) Forward(ctx *model.Scope, x, temb, encoder *Node) *Node {
	x = m.Resnets[0].Forward(ctx.At("resnets").At("0"), x, temb)
	for i := range m.Attentions {
		x = m.Attentions[i].Forward(ctx.At("attentions").At("%d", i), x, encoder)
		x = m.Resnets[i+1].Forward(ctx.At("resnets").At("%d", i+1), x, temb)
	}
	return x // [B, C, H, W]
}

// UNetMidBlock2D ports diffusers unets/unet_2d_blocks.py UNetMidBlock2D as get_mid_block builds it
// for mid_block_type "UNetMidBlock2D" (num_layers 0, no attention): a single resnet.
type UNetMidBlock2D struct {
	Resnets []ResnetBlock2D // one
}

// Forward implements MidBlock.
func (m *UNetMidBlock2D) Forward(ctx *model.Scope, x, temb, _ *Node) *Node {
	return m.Resnets[0].Forward(ctx.At("resnets").At("0"), x, temb) // [B, C, H, W]
}

// UpBlock2D ports diffusers unets/unet_2d_blocks.py UpBlock2D: for each resnet,
// x = resnet(cat([x, skips.pop()], dim=1)); then an optional Upsample2D.
type UpBlock2D struct {
	Resnets   []ResnetBlock2D
	Upsampler *Upsample2D // nil on the last level
}

// NumResnets implements UpBlock.
func (m *UpBlock2D) NumResnets() int { return len(m.Resnets) }

// Forward implements UpBlock.
func (m *UpBlock2D) Forward(ctx *model.Scope, x *Node, skips []*Node, temb, _ *Node, upH, upW int) *Node {
	checkSkips(ctx, len(m.Resnets), skips)
	for i := range m.Resnets {
		skip := skips[len(skips)-1-i]
		x = Concatenate([]*Node{x, skip}, 1)                             // [B, C + C_skip, H, W]
		x = m.Resnets[i].Forward(ctx.At("resnets").At("%d", i), x, temb) // [B, C_out, H, W]
	}
	if m.Upsampler != nil {
		x = m.Upsampler.Forward(ctx.At("upsamplers").At("0"), x, upH, upW) // [B, C_out, upH, upW]
	}
	return x
}

// CrossAttnUpBlock2D ports diffusers unets/unet_2d_blocks.py CrossAttnUpBlock2D: for each
// (resnet, Transformer2DModel) pair, x = attn(resnet(cat([x, skips.pop()], dim=1))); then an
// optional Upsample2D.
type CrossAttnUpBlock2D struct {
	Resnets    []ResnetBlock2D
	Attentions []*Transformer2DModel
	Upsampler  *Upsample2D // nil on the last level
}

// NumResnets implements UpBlock.
func (m *CrossAttnUpBlock2D) NumResnets() int { return len(m.Resnets) }

// Forward implements UpBlock.
func (m *CrossAttnUpBlock2D) Forward(ctx *model.Scope, x *Node, skips []*Node, temb, encoder *Node, upH, upW int) *Node {
	checkSkips(ctx, len(m.Resnets), skips)
	for i := range m.Resnets {
		skip := skips[len(skips)-1-i]
		x = Concatenate([]*Node{x, skip}, 1)                                      // [B, C + C_skip, H, W]
		x = m.Resnets[i].Forward(ctx.At("resnets").At("%d", i), x, temb)          // [B, C_out, H, W]
		x = m.Attentions[i].Forward(ctx.At("attentions").At("%d", i), x, encoder) // [B, C_out, H, W]
	}
	if m.Upsampler != nil {
		x = m.Upsampler.Forward(ctx.At("upsamplers").At("0"), x, upH, upW) // [B, C_out, upH, upW]
	}
	return x
}

func checkSkips(ctx *model.Scope, want int, skips []*Node) {
	if len(skips) != want {
		exceptions.Panicf("unet up block at %q: want %d skip states, got %d", ctx.Scope(), want, len(skips))
	}
}

// newResnet is the ResnetBlock2D every UNet block builds: groups, eps and activation from the config.
func newResnet(cfg *Config, in, out int, outputScaleFactor float64) ResnetBlock2D {
	return ResnetBlock2D{In: in, Out: out, Groups: cfg.Groups(), Eps: cfg.NormEps, Act: cfg.ActFn, OutputScaleFactor: outputScaleFactor}
}

// getDownBlock ports the UNet2DConditionModel constructor's down loop with get_down_block: level i
// takes block_out_channels[i-1] (the previous level's output) to block_out_channels[i] with
// layers_per_block[i] resnets (and as many Transformer2DModels for CrossAttnDownBlock2D), then a
// downsampler except on the last level.
func getDownBlock(cfg *Config, i int) DownBlock {
	boc := cfg.BlockOutChannels
	in, out := boc[max(i-1, 0)], boc[i]
	layers := cfg.LayersPerBlock.At(i)
	var resnets []ResnetBlock2D
	for j := range layers {
		rin := out
		if j == 0 {
			rin = in
		}
		resnets = append(resnets, newResnet(cfg, rin, out, 1))
	}
	var down *Downsample2D
	if i < len(boc)-1 {
		down = &Downsample2D{Channels: out, Padding: cfg.DownsamplePadding}
	}
	if strings.TrimPrefix(cfg.DownBlockTypes[i], "UNetRes") != typeCrossAttnDown {
		return &DownBlock2D{Resnets: resnets, Downsampler: down}
	}
	depth := cfg.TransformerLayersPerBlock.ForLevel(i, layers)
	var attns []*Transformer2DModel
	for j := range layers {
		attns = append(attns, newTransformer2D(cfg, out, cfg.Heads(i), depth[j], cfg.CrossAttentionDim.At(i)))
	}
	return &CrossAttnDownBlock2D{Resnets: resnets, Attentions: attns, Downsampler: down}
}

// getMidBlock ports get_mid_block on the last level's channels, with mid_block_scale_factor as the
// resnets' output scale and the last entries of the per-level settings; nil for mid_block_type null.
func getMidBlock(cfg *Config) MidBlock {
	if cfg.MidBlockType == nil {
		return nil
	}
	n := cfg.Levels()
	c, scale := cfg.BlockOutChannels[n-1], cfg.MidBlockScaleFactor
	if *cfg.MidBlockType == typeMid {
		return &UNetMidBlock2D{Resnets: []ResnetBlock2D{newResnet(cfg, c, c, scale)}}
	}
	depth := cfg.TransformerLayersPerBlock.ForLevel(n-1, 1)[0]
	return &UNetMidBlock2DCrossAttn{
		Resnets:    []ResnetBlock2D{newResnet(cfg, c, c, scale), newResnet(cfg, c, c, scale)},
		Attentions: []*Transformer2DModel{newTransformer2D(cfg, c, cfg.Heads(n-1), depth, cfg.CrossAttentionDim.At(n-1))},
	}
}

// getUpBlock ports the UNet2DConditionModel constructor's up loop with get_up_block: up block i works
// on level n-1-i with the per-level settings reversed, layers_per_block+1 resnets whose inputs are the
// previous output concatenated with a skip (the last skip comes from the level below), and an
// upsampler except on the last block.
func getUpBlock(cfg *Config, i int) UpBlock {
	boc := cfg.BlockOutChannels
	n := len(boc)
	level := n - 1 - i
	prev := boc[min(level+1, n-1)] // previous up block's output
	out := boc[level]
	in := boc[max(level-1, 0)] // channels of the last skip popped
	layers := cfg.LayersPerBlock.At(level) + 1
	var resnets []ResnetBlock2D
	for j := range layers {
		skip := out
		if j == layers-1 {
			skip = in
		}
		rin := out
		if j == 0 {
			rin = prev
		}
		resnets = append(resnets, newResnet(cfg, rin+skip, out, 1))
	}
	var up *Upsample2D
	if i < n-1 {
		up = &Upsample2D{Channels: out}
	}
	if strings.TrimPrefix(cfg.UpBlockTypes[i], "UNetRes") != typeCrossAttnUp {
		return &UpBlock2D{Resnets: resnets, Upsampler: up}
	}
	upDepth := cfg.TransformerLayersPerBlock.Reversed(n)
	if !cfg.ReverseTransformerLayersPerBlock.IsNull() {
		upDepth = cfg.ReverseTransformerLayersPerBlock
	}
	depth := upDepth.ForLevel(i, layers)
	var attns []*Transformer2DModel
	for j := range layers {
		attns = append(attns, newTransformer2D(cfg, out, cfg.Heads(level), depth[j], cfg.CrossAttentionDim.At(level)))
	}
	return &CrossAttnUpBlock2D{Resnets: resnets, Attentions: attns, Upsampler: up}
}
