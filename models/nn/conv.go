package nn

import (
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	timage "github.com/gomlx/gomlx/core/tensors/images"
	"github.com/gomlx/gomlx/ml/model"
)

// Conv2DConfig describes a torch.nn.Conv2d (groups=1, dilation=1).
type Conv2DConfig struct {
	Out, Kernel, Stride int
	// Padding is [[top, bottom], [left, right]].
	Padding [2][2]int
	// NoBias drops the bias variable.
	NoBias bool
}

// Conv2D ports torch.nn.Conv2d(in, out, kernel, stride, padding) with bias: weight [out, in, k, k]
// (OIHW), bias [out]. x: [B, C_in, H, W] → [B, out, H', W'].
func Conv2D(ctx *model.Scope, x *Node, out, kernel, stride, padding int) *Node {
	return Conv2DWith(ctx, x, Conv2DConfig{Out: out, Kernel: kernel, Stride: stride,
		Padding: [2][2]int{{padding, padding}, {padding, padding}}})
}

// Conv2DWith is Conv2D with asymmetric padding and an optional bias.
func Conv2DWith(ctx *model.Scope, x *Node, cfg Conv2DConfig) *Node {
	if x.Rank() != 4 {
		exceptions.Panicf("nn.Conv2D at %q: want x [B, C, H, W], got %s", ctx.Scope(), x.Shape())
	}
	if cfg.Out <= 0 || cfg.Kernel <= 0 || cfg.Stride <= 0 {
		exceptions.Panicf("nn.Conv2D at %q: bad config %+v", ctx.Scope(), cfg)
	}
	in := x.Shape().Dim(1)
	w := ctx.VariableWithShape("weight", shapes.Make(x.DType(), cfg.Out, in, cfg.Kernel, cfg.Kernel)).NodeValue(x.Graph())
	y := conv2D(x, w, cfg.Stride, cfg.Padding) // [B, out, H', W']
	if !cfg.NoBias {
		b := ctx.VariableWithShape("bias", shapes.Make(x.DType(), cfg.Out)).NodeValue(x.Graph())
		y = Add(y, Reshape(b, 1, cfg.Out, 1, 1))
	}
	if a := adapterOf(x.Graph()); a != nil {
		if d := a.Conv2DDelta(ctx, x, cfg); d != nil {
			y = Add(y, d) // [B, out, H', W']
		}
	}
	return y
}

// conv2D is the plain convolution, NCHW input and OIHW kernel: im2col (one gemm) on simplego,
// whose native convolution is ~10× slower, the backend's native convolution elsewhere (XLA).
func conv2D(x, w *Node, stride int, padding [2][2]int) *Node {
	if useIm2col(x.Graph()) {
		return conv2DIm2col(x, w, stride, padding)
	}
	return conv2DNative(x, w, stride, padding)
}

// conv2DNative is conv2D as one ConvGeneral.
func conv2DNative(x, w *Node, stride int, padding [2][2]int) *Node {
	return Convolve(x, w).ChannelsAxis(timage.ChannelsFirst).Strides(stride).
		PaddingPerDim([][2]int{padding[0], padding[1]}).Dilations(1).Done()
}
