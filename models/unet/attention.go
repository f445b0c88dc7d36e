package unet

import (
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
)

// Attention ports diffusers models/attention_processor.py Attention run by AttnProcessor(2_0):
//
//	h = group_norm(x)                                     (when NormNumGroups > 0)
//	out = to_out.0(softmax(to_q(h) to_k(c)ᵀ · head_dim^-0.5) to_v(c)),   c = context or h
//	out = out + x                                         (when ResidualConnection)
//
// The UNet's transformer blocks build it with bias=False, out_bias=True, no norms and no residual;
// the VAE's mid block (UNetMidBlock2D) with bias=True, group_norm (resnet_groups, resnet_eps),
// residual_connection=True, rescale_output_factor 1 and a single head of width channels, on a
// [B, C, H, W] input that is flattened to [B, H·W, C] and back, as AttnProcessor does for 4-D inputs.
// to_out.0 always has a bias (to_out.1 is dropout). Scores and softmax are float32
// (nn.ScaledDotProductAttention), which covers upcast_attention and upcast_softmax.
type Attention struct {
	QueryDim int
	// CrossAttentionDim is the width of the context (encoder_hidden_states); 0 for self-attention.
	CrossAttentionDim int
	Heads, HeadDim    int
	UpcastAttention   bool
	// Bias is bias: to_q, to_k and to_v have biases.
	Bias bool
	// NormNumGroups is norm_num_groups: > 0 adds group_norm (GroupNorm with NormEps) on the input;
	// 0 for none.
	NormNumGroups int
	NormEps       float64
	// ResidualConnection is residual_connection: the input is added to the output.
	ResidualConnection bool
}

// InnerDim is heads · head_dim, the width of q, k and v.
func (m *Attention) InnerDim() int { return m.Heads * m.HeadDim }

// Forward attends x to encoder (x itself for self-attention). ctx is the module's scope (attn1 or
// attn2, or attentions/0 in the VAE's mid block). x: [B, S, QueryDim] or [B, QueryDim, H, W],
// encoder: [B, Sk, CrossAttentionDim] (nil for self-attention) → x's shape.
func (m *Attention) Forward(ctx *model.Scope, x, encoder *Node) *Node {
	if x.Rank() == 4 {
		return m.ForwardGrid(ctx, x, encoder, x.Shape().Dim(2), x.Shape().Dim(3))
	}
	return m.ForwardGrid(ctx, x, encoder, 0, 0)
}

// ForwardGrid is Forward for a query sequence that is the height×width grid of an image in
// row-major order (a transformer block's tokens; 0, 0 when it is not one): a cross-attention then
// goes through nn.CrossAttention, so that an active nn.CaptureCrossAttention records its map.
func (m *Attention) ForwardGrid(ctx *model.Scope, x, encoder *Node, height, width int) *Node {
	spatial := x.Rank() == 4
	if !(spatial && x.Shape().Dim(1) == m.QueryDim) && !(x.Rank() == 3 && x.Shape().Dim(2) == m.QueryDim) {
		exceptions.Panicf("unet.Attention at %q: want x [B, S, %d] or [B, %d, H, W], got %s", ctx.Scope(), m.QueryDim, m.QueryDim, x.Shape())
	}
	h := x
	if m.NormNumGroups > 0 { // over the channels
		if spatial {
			h = nn.GroupNorm(ctx.At("group_norm"), h, m.NormNumGroups, m.NormEps) // [B, C, H, W]
		} else {
			h = Transpose(nn.GroupNorm(ctx.At("group_norm"), Transpose(h, 1, 2), m.NormNumGroups, m.NormEps), 1, 2)
		}
	}
	dims := x.Shape().Dimensions
	if spatial {
		h = Transpose(Reshape(h, dims[0], dims[1], dims[2]*dims[3]), 1, 2) // [B, H·W, C]
	}
	kv := h
	if m.CrossAttentionDim > 0 {
		if encoder == nil || encoder.Rank() != 3 || encoder.Shape().Dim(-1) != m.CrossAttentionDim || encoder.Shape().Dim(0) != x.Shape().Dim(0) {
			exceptions.Panicf("unet.Attention at %q: want encoder_hidden_states [%d, seq, %d], got %v",
				ctx.Scope(), x.Shape().Dim(0), m.CrossAttentionDim, shapeOf(encoder))
		}
		kv = encoder
	}
	inner := m.InnerDim()
	q := nn.Linear(ctx.At("to_q"), h, inner, m.Bias)  // [B, S, inner]
	k := nn.Linear(ctx.At("to_k"), kv, inner, m.Bias) // [B, Sk, inner]
	v := nn.Linear(ctx.At("to_v"), kv, inner, m.Bias) // [B, Sk, inner]
	var o *Node
	if m.CrossAttentionDim > 0 && height > 0 {
		o = nn.CrossAttention(q, k, v, m.Heads, height, width) // [B, S, inner]
	} else {
		o = nn.ScaledDotProductAttention(q, k, v, m.Heads, false) // [B, S, inner]
	}
	o = nn.Linear(ctx.At("to_out").At("0"), o, m.QueryDim, true) // [B, S, QueryDim]
	if spatial {
		o = Reshape(Transpose(o, 1, 2), dims...) // [B, C, H, W]
	}
	if m.ResidualConnection {
		o = Add(o, x) // rescale_output_factor 1
	}
	return o
}

func shapeOf(x *Node) any {
	if x == nil {
		return "nil"
	}
	return x.Shape()
}

// FeedForward ports diffusers models/attention.py FeedForward(dim, activation_fn="geglu", mult=4):
// net.0 = GEGLU(dim, 4·dim) (proj to 2·4·dim, hidden · gelu(gate)), net.1 = dropout, net.2 = Linear(4·dim, dim).
type FeedForward struct {
	Dim, InnerDim int
}

// Forward runs the MLP. ctx is the module's scope (ff). x: [B, S, Dim] → [B, S, Dim].
func (m *FeedForward) Forward(ctx *model.Scope, x *Node) *Node {
	net := ctx.At("net")
	h := nn.GEGLU(net.At("0"), x, m.InnerDim)     // [B, S, 4·Dim]
	return nn.Linear(net.At("2"), h, m.Dim, true) // [B, S, Dim]
}

// BasicTransformerBlock ports diffusers models/attention.py BasicTransformerBlock with
// norm_type "layer_norm" (eps 1e-5), self-attention attn1, cross-attention attn2 and a GEGLU ff:
//
//	x = attn1(norm1(x)) + x;  x = attn2(norm2(x), context) + x;  x = ff(norm3(x)) + x
type BasicTransformerBlock struct {
	Dim          int
	Attn1, Attn2 Attention
	FF           FeedForward
	NormEps      float64
}

// Forward runs the block. ctx is the block's scope (transformer_blocks/N).
// x: [B, S, Dim] (S = height·width, the image grid in row-major order), encoder: [B, Sk, cross]
// → [B, S, Dim]. With nn.MemoryOptions.GradientCheckpointing it is one checkpointed block (see
// checkpointed; encoder is not a checkpoint).
func (m *BasicTransformerBlock) Forward(ctx *model.Scope, x, encoder *Node, height, width int) *Node {
	return checkpointed(x, func(x *Node) *Node { return m.forward(ctx, x, encoder, height, width) })
}

// forward is Forward's computation.
func (m *BasicTransformerBlock) forward(ctx *model.Scope, x, encoder *Node, height, width int) *Node {
	h := nn.LayerNorm(ctx.At("norm1"), x, m.NormEps)
	x = Add(m.Attn1.Forward(ctx.At("attn1"), h, nil), x)
	h = nn.LayerNorm(ctx.At("norm2"), x, m.NormEps)
	x = Add(m.Attn2.ForwardGrid(ctx.At("attn2"), h, encoder, height, width), x)
	h = nn.LayerNorm(ctx.At("norm3"), x, m.NormEps)
	return Add(m.FF.Forward(ctx.At("ff"), h), x) // [B, S, Dim]
}
