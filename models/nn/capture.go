package nn

import (
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
)

// Cross-attention capture (U-LOBA's concept mask, docs/ALGORITHMS.md §5): while a capture is active
// in a graph, every CrossAttention built in it records the attention probability mass its queries
// put on the masked tokens, averaged over the heads; stop averages those maps over the layers at the
// latent resolution. This is Prompt-to-Prompt's attention map of a token (Hertz et al. 2022, "Prompt-
// to-Prompt Image Editing with Cross Attention Control": the cross-attention probabilities of a
// token, averaged over heads and layers), for a set of tokens and over every resolution.

// crossAttentionCapture is one CaptureCrossAttention in progress.
type crossAttentionCapture struct {
	mask *Node // [B, Sk] float32, no gradient
	// latentH, latentW are the resolution the maps are reported at (CaptureLatentGrid); 0 until set.
	latentH, latentW int
	layers           []capturedLayer
	result           *Node // stop's result, once built
}

// capturedLayer is one cross-attention layer's map.
type capturedLayer struct {
	mass   *Node // [B, H·W] float32, no gradient
	height int
	width  int
}

// captures are the captures active per graph.
var captures graphScoped[*crossAttentionCapture]

// CaptureCrossAttention starts capturing, in g, the cross-attention maps of the tokens tokenMask
// marks ([B, S], 1 on the concept's tokens, 0 elsewhere; fractional values weight the tokens): every
// CrossAttention built in g until stop is called (a UNet's attn2 layers, built by its Forward)
// records the probability mass its queries put on those tokens, averaged over the heads. stop ends
// the capture (restoring one that was active before) and returns the maps averaged over the layers,
// [B, h, w] float32, each layer's map resized to the latent h×w by nearest-neighbour upsampling
// (torch's F.interpolate mode "nearest"); the latent resolution is the one the model reports
// (CaptureLatentGrid, which the UNet calls), else the largest layer grid. The maps carry no gradient
// (StopGradient). Calling stop again returns the same node.
//
//	stop := nn.CaptureCrossAttention(g, tokenMask)
//	eps := unet.Forward(ctx, x, t, cond)
//	maps := stop() // [B, h, w]
//
// Every attention implementation (MemoryOptions.Attention) supports it: math and chunked take the
// mass from the probabilities they compute, the fused kernel's calls recompute the probabilities for
// it. stop panics (graph building) when no CrossAttention was built while the capture was active.
func CaptureCrossAttention(g *Graph, tokenMask *Node) (stop func() *Node) {
	if tokenMask == nil || tokenMask.Rank() != 2 || !tokenMask.DType().IsFloat() {
		exceptions.Panicf("nn.CaptureCrossAttention: want a float tokenMask [B, S], got %v", shapeOrNil(tokenMask))
	}
	c := &crossAttentionCapture{mask: StopGradient(ConvertDType(tokenMask, dtypes.Float32))}
	previous := captures.use(g, c)
	return func() *Node {
		if c.result == nil {
			captures.use(g, previous)
			c.result = c.average()
		}
		return c.result
	}
}

// CaptureLatentGrid tells the capture active in g (if any) the latent resolution height×width its
// maps are reported at. A UNet calls it with its sample's H×W; a second call with another size in
// the same capture panics (two resolutions cannot be averaged).
func CaptureLatentGrid(g *Graph, height, width int) {
	c := captures.of(g)
	if c == nil {
		return
	}
	if height <= 0 || width <= 0 {
		exceptions.Panicf("nn.CaptureLatentGrid: bad latent grid %d×%d", height, width)
	}
	if c.latentH != 0 && (c.latentH != height || c.latentW != width) {
		exceptions.Panicf("nn.CaptureLatentGrid: the capture already reports at %d×%d, got %d×%d (one capture, one resolution)",
			c.latentH, c.latentW, height, width)
	}
	c.latentH, c.latentW = height, width
}

// CrossAttention is ScaledDotProductAttention without a causal mask, for queries that are the
// positions of a height×width grid in row-major order (a UNet transformer block's attn2: q from the
// image tokens, k and v from the text). While a capture is active in the graph
// (CaptureCrossAttention) it records the layer's map. q: [B, height·width, H·Dh],
// k, v: [B, Sk, H·Dh] → [B, height·width, H·Dh].
func CrossAttention(q, k, v *Node, heads, height, width int) *Node {
	c := captures.of(q.Graph())
	if c == nil {
		return ScaledDotProductAttention(q, k, v, heads, false)
	}
	if q.Rank() != 3 || height <= 0 || width <= 0 || q.Shape().Dim(1) != height*width {
		exceptions.Panicf("nn.CrossAttention: q %s is not a %d×%d grid of queries [B, %d, C]", q.Shape(), height, width, height*width)
	}
	if k.Rank() != 3 || !c.mask.Shape().Equal(shapesMake(dtypes.Float32, q.Shape().Dim(0), k.Shape().Dim(1))) {
		exceptions.Panicf("nn.CrossAttention: the capture's tokenMask %s does not fit q %s and k %s (want [B, Sk])",
			c.mask.Shape(), q.Shape(), shapeOrNil(k))
	}
	out, mass := attention(q, k, v, heads, false, c.mask)
	mass = StopGradient(mass)
	if MemoryOptionsOf(q.Graph()).GradientCheckpointing {
		// The mass comes from inside a checkpointed block: without this boundary, a loss weighted by
		// the maps would recompute every layer's attention in the backward pass.
		mass = mass.StopCheckpoint()
	}
	c.layers = append(c.layers, capturedLayer{mass: mass, height: height, width: width})
	return out
}

// average is the layers' maps resized to the latent grid and averaged: [B, h, w] float32.
func (c *crossAttentionCapture) average() *Node {
	if len(c.layers) == 0 {
		exceptions.Panicf("nn.CaptureCrossAttention: no cross-attention layer was built while the capture was active")
	}
	h, w := c.latentH, c.latentW
	if h == 0 {
		for _, l := range c.layers {
			if l.height*l.width > h*w {
				h, w = l.height, l.width
			}
		}
	}
	var sum *Node
	for _, l := range c.layers {
		b := l.mass.Shape().Dim(0)
		m := nearestResize2D(Reshape(l.mass, b, l.height, l.width), h, w) // [B, h, w]
		if sum == nil {
			sum = m
		} else {
			sum = Add(sum, m)
		}
	}
	return StopGradient(DivScalar(sum, float64(len(c.layers)))) // [B, h, w]
}

// nearestResize2D resizes x [B, H, W] to [B, outH, outW] as F.interpolate(mode="nearest"):
// output row o reads input row min(⌊o·(H/outH)⌋, H-1) (the scale in float32, as torch computes it),
// by contraction with 0/1 selection matrices.
func nearestResize2D(x *Node, outH, outW int) *Node {
	inH, inW := x.Shape().Dim(1), x.Shape().Dim(2)
	if inH != outH {
		x = Einsum("bhw,oh->bow", x, nearestSelection(x.Graph(), x.DType(), inH, outH))
	}
	if inW != outW {
		x = Einsum("bhw,ow->bho", x, nearestSelection(x.Graph(), x.DType(), inW, outW))
	}
	return x
}

// nearestSelection is the [out, in] 0/1 matrix of nearestResize2D along one axis.
func nearestSelection(g *Graph, dtype dtypes.DType, in, out int) *Node {
	sel := make([][]float32, out)
	scale := float32(in) / float32(out)
	for o := range sel {
		sel[o] = make([]float32, in)
		src := min(int(math.Floor(float64(float32(o)*scale))), in-1)
		sel[o][src] = 1
	}
	return ConvertDType(Const(g, sel), dtype)
}

// shapeOrNil is x's shape for messages, or "nil".
func shapeOrNil(x *Node) any {
	if x == nil {
		return "nil"
	}
	return x.Shape()
}
