package nn

import (
	"github.com/loba-dev/loba/models/nn/gemm"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Adapter adds a trainable low-rank update (LoRA on Linear, LoCon on Conv2D) to the output of the
// layers it targets. Linear and Conv2D consult the adapter installed for their graph (UseAdapter)
// after computing the base output: this is the single place adapters hook into the models.
//
// ctx is the layer's own scope (its diffusers module path under the component root), so an
// implementation finds the module it targets from ctx.Scope().
type Adapter interface {
	// LinearDelta returns the update for the Linear layer at ctx — x: [..., in] → [..., out] — or
	// nil when the adapter does not target it.
	LinearDelta(ctx *model.Scope, x *Node, out int) *Node
	// Conv2DDelta returns the update for the Conv2D layer at ctx — x: [B, C_in, H, W] →
	// [B, cfg.Out, H', W'] with the layer's stride and padding — or nil when it does not target it.
	Conv2DDelta(ctx *model.Scope, x *Node, cfg Conv2DConfig) *Node
}

// adapters are the adapters installed per graph.
var adapters graphScoped[Adapter]

// UseAdapter makes the Linear and Conv2D layers built in g from now on consult a (nil: none) and
// returns the adapter installed before, so a caller can build one part of a graph with the adapter
// (the student) and another without (the frozen teacher):
//
//	prev := nn.UseAdapter(g, adapter)
//	studentOut := unet.Forward(ctx, ...)
//	nn.UseAdapter(g, prev)
func UseAdapter(g *Graph, a Adapter) (previous Adapter) { return adapters.use(g, a) }

// adapterOf returns the adapter installed for g, or nil.
func adapterOf(g *Graph) Adapter { return adapters.of(g) }

// Dense is x·wᵀ over the last axis, torch.nn.functional.linear without bias and without adapters,
// laid out by package gemm for the backend's fast kernels.
// x: [..., in], w: [out, in] → [..., out].
func Dense(x, w *Node) *Node {
	return gemm.DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
}

// Convolve2D is the convolution of Conv2D without bias and without adapters: NCHW x, OIHW w.
// x: [B, C_in, H, W], w: [out, C_in, kh, kw] → [B, out, H', W'].
func Convolve2D(x, w *Node, stride int, padding [2][2]int) *Node {
	return conv2D(x, w, stride, padding)
}
