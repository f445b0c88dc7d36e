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

// UNetMidBlock2D ports diffusers unets/unet_2d_blocks.py UNetMidBlock2D: resnets.0, then for each
// layer i attentions.i (skipped where add_attention is False) and resnets.i+1. get_mid_block builds it
// for mid_block_type "UNetMidBlock2D" with num_layers 0 (a single resnet); the VAE's encoder and
// decoder with num_layers 1, temb None and a single-head Attention (see NewUNetMidBlock2D).
type UNetMidBlock2D struct {
	Resnets    []ResnetBlock2D // num_layers+1
	Attentions []*Attention    // num_layers; nil entries when add_attention is False
}

// NewUNetMidBlock2D ports UNetMidBlock2D.__init__ with resnet_time_scale_shift "default": numLayers+1
// resnets on channels (output_scale_factor outputScaleFactor) and, when addAttention, numLayers
// Attentions of channels/attentionHeadDim heads with bias, group_norm (p.Groups, p.Eps) and a
// residual connection.
func NewUNetMidBlock2D(p ResnetParams, channels, numLayers int, addAttention bool, attentionHeadDim int, outputScaleFactor float64) *UNetMidBlock2D {
	m := &UNetMidBlock2D{Resnets: newResnets(p, channels, channels, numLayers+1, outputScaleFactor)}
	for range numLayers {
		if !addAttention {
			m.Attentions = append(m.Attentions, nil)
			continue
		}
		if outputScaleFactor != 1 {
			exceptions.Panicf("unet.NewUNetMidBlock2D: attention with rescale_output_factor %g is not supported (only 1)", outputScaleFactor)
		}
		m.Attentions = append(m.Attentions, &Attention{QueryDim: channels, Heads: channels / attentionHeadDim, HeadDim: attentionHeadDim,
			Bias: true, NormNumGroups: p.Groups, NormEps: p.Eps, ResidualConnection: true})
	}
	return m
}

// Forward implements MidBlock. temb is nil for a block built without time embedding (the VAE's);
// the encoder states are not used.
func (m *UNetMidBlock2D) Forward(ctx *model.Scope, x, temb, _ *Node) *Node {
	x = m.Resnets[0].Forward(ctx.At("resnets").At("0"), x, temb)
	for i, attn := range m.Attentions {
		if attn != nil {
			x = attn.Forward(ctx.At("attentions").At("%d", i), x, nil)
		}
		x = m.Resnets[i+1].Forward(ctx.At("resnets").At("%d", i+1), x, temb)
	}
	return x // [B, C, H, W]
}

// DownEncoderBlock2D ports diffusers unets/unet_2d_blocks.py DownEncoderBlock2D, the VAE encoder's
// down block (temb None): resnets, then an optional Downsample2D; no skip states.
type DownEncoderBlock2D struct {
	Resnets     []ResnetBlock2D
	Downsampler *Downsample2D // nil on the last level
}

// NewDownEncoderBlock2D ports DownEncoderBlock2D.__init__: numLayers resnets (the first from in to
// out channels), then, when addDownsample, a Downsample2D with downsamplePadding.
func NewDownEncoderBlock2D(p ResnetParams, in, out, numLayers int, addDownsample bool, downsamplePadding int) *DownEncoderBlock2D {
	m := &DownEncoderBlock2D{Resnets: newResnets(p, in, out, numLayers, 1)}
	if addDownsample {
		m.Downsampler = &Downsample2D{Channels: out, Padding: downsamplePadding}
	}
	return m
}

// Forward runs the block. ctx is its scope (down_blocks/i).
// x: [B, C_in, H, W] → [B, C_out, H', W'] (H' = ⌊H/2⌋, W' = ⌊W/2⌋ with padding 0 when downsampling).
func (m *DownEncoderBlock2D) Forward(ctx *model.Scope, x *Node) *Node {
	for i := range m.Resnets {
		x = m.Resnets[i].Forward(ctx.At("resnets").At("%d", i), x, nil) // [B, C_out, H, W]
	}
	if m.Downsampler != nil {
		x = m.Downsampler.Forward(ctx.At("downsamplers").At("0"), x) // [B, C_out, H', W']
	}
	return x
}

// UpDecoderBlock2D ports diffusers unets/unet_2d_blocks.py UpDecoderBlock2D, the VAE decoder's up
// block (temb None, resnet_time_scale_shift "default"): resnets, then an optional 2x Upsample2D.
type UpDecoderBlock2D struct {
	Resnets   []ResnetBlock2D
	Upsampler *Upsample2D // nil on the last level
}

// NewUpDecoderBlock2D ports UpDecoderBlock2D.__init__: numLayers resnets (the first from in to out
// channels), then, when addUpsample, an Upsample2D.
func NewUpDecoderBlock2D(p ResnetParams, in, out, numLayers int, addUpsample bool) *UpDecoderBlock2D {
	m := &UpDecoderBlock2D{Resnets: newResnets(p, in, out, numLayers, 1)}
	if addUpsample {
		m.Upsampler = &Upsample2D{Channels: out}
	}
	return m
}

// Forward runs the block. ctx is its scope (up_blocks/i).
// x: [B, C_in, H, W] → [B, C_out, 2H, 2W] when upsampling, else [B, C_out, H, W].
func (m *UpDecoderBlock2D) Forward(ctx *model.Scope, x *Node) *Node {
	for i := range m.Resnets {
		x = m.Resnets[i].Forward(ctx.At("resnets").At("%d", i), x, nil) // [B, C_out, H, W]
	}
	if m.Upsampler != nil {
		x = m.Upsampler.Forward(ctx.At("upsamplers").At("0"), x, 2*x.Shape().Dim(2), 2*x.Shape().Dim(3)) // [B, C_out, 2H, 2W]
	}
	return x
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

// resnetParams are the resnet settings every UNet block passes: the time embedding's width, groups,
// eps and activation from the config.
func resnetParams(cfg *Config) ResnetParams {
	return ResnetParams{TembChannels: cfg.TimeEmbedDim(), Groups: cfg.Groups(), Eps: cfg.NormEps, Act: cfg.ActFn}
}

// getDownBlock ports the UNet2DConditionModel constructor's down loop with get_down_block: level i
// takes block_out_channels[i-1] (the previous level's output) to block_out_channels[i] with
// layers_per_block[i] resnets (and as many Transformer2DModels for CrossAttnDownBlock2D), then a
// downsampler except on the last level.
func getDownBlock(cfg *Config, i int) DownBlock {
	boc := cfg.BlockOutChannels
	in, out := boc[max(i-1, 0)], boc[i]
	layers := cfg.LayersPerBlock.At(i)
	resnets := newResnets(resnetParams(cfg), in, out, layers, 1)
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
		return NewUNetMidBlock2D(resnetParams(cfg), c, 0, false, 0, scale)
	}
	depth := cfg.TransformerLayersPerBlock.ForLevel(n-1, 1)[0]
	return &UNetMidBlock2DCrossAttn{
		Resnets:    newResnets(resnetParams(cfg), c, c, 2, scale),
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
		resnets = append(resnets, resnetParams(cfg).New(rin+skip, out, 1))
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
