package nn

import (
	. "github.com/gomlx/gomlx/core/graph"
)

// Attention implementations (MemoryOptions.Attention).
const (
	// AttentionAuto picks per call: the backend's fused attention where it has one (cuDNN flash
	// attention on CUDA), chunked attention for long sequences on the Go backend, else math.
	AttentionAuto = ""
	// AttentionMath materialises the [B, H, Sq, Sk] scores and probabilities (torch's math SDPA).
	AttentionMath = "math"
	// AttentionChunked computes the attention over chunks of the queries, so that only one chunk's
	// scores live at a time (the same result, row by row).
	AttentionChunked = "chunked"
	// AttentionFused uses the backend's FusedScaledDotProductAttention.
	AttentionFused = "fused"
)

// MemoryOptions say how the layers built in a graph trade compute for memory. The zero value is
// LOBA's default: no gradient checkpointing, AttentionAuto.
type MemoryOptions struct {
	// GradientCheckpointing recomputes each ResnetBlock2D's and BasicTransformerBlock's activations
	// in the backward pass instead of keeping them (diffusers' enable_gradient_checkpointing).
	GradientCheckpointing bool
	// Attention is one of the Attention* implementations.
	Attention string
	// AttentionChunk is the number of query rows per chunk of AttentionChunked (0: a default).
	AttentionChunk int
}

// memoryOptions are the options installed per graph.
var memoryOptions graphScoped[MemoryOptions]

// UseMemoryOptions makes the layers built in g from now on follow o and returns the options in
// force before (restore them when a part of the graph is done, as with UseAdapter).
func UseMemoryOptions(g *Graph, o MemoryOptions) (previous MemoryOptions) {
	return memoryOptions.use(g, o)
}

// MemoryOptionsOf returns the options in force for g (the zero value when none were set).
func MemoryOptionsOf(g *Graph) MemoryOptions { return memoryOptions.of(g) }
