package gradfix

import (
	"reflect"
	"slices"

	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
)

// convGeneralVJP handles ConvGeneral without channel/batch groups and without input dilation
// (the forward convolutions of models); the others keep gomlx's stock VJP.
func convGeneralVJP(node *Node, vjpOutputs []*Node, outputShape shapes.Shape) []*Node {
	p := params(node, "axes", "strides", "paddings", "inputDilations", "kernelDilations", "channelGroupCount", "batchGroupCount")
	inputs := node.Inputs()
	x, kernel := inputs[0], inputs[1]
	v := vjpOutputs[0]
	numSpatial := x.Rank() - 2
	inputDilations := orOnes(intsOf(p.FieldByName("inputDilations")), numSpatial)
	if intOf(p.FieldByName("channelGroupCount")) > 1 || intOf(p.FieldByName("batchGroupCount")) > 1 || slices.Max(inputDilations) > 1 {
		if stock := stockVJP(NodeTypeConvGeneral); stock != nil {
			return stock(node, vjpOutputs, outputShape)
		}
		exceptions.Panicf("gradfix: no gradient for grouped or input-dilated ConvGeneral %s", node)
	}
	axes := axesOf(p.FieldByName("axes"))
	strides := orOnes(intsOf(p.FieldByName("strides")), numSpatial)
	kernelDilations := orOnes(intsOf(p.FieldByName("kernelDilations")), numSpatial)
	paddings := make([][2]int, numSpatial)
	if pv := p.FieldByName("paddings"); pv.Len() > 0 {
		for i := range paddings {
			paddings[i] = [2]int{int(pv.Index(i).Index(0).Int()), int(pv.Index(i).Index(1).Int())}
		}
	}
	dx := ConvInputGrad(v, kernel, x.Shape(), axes, strides, paddings, kernelDilations)
	dk := ConvKernelGrad(v, x, kernel.Shape(), axes, strides, paddings, kernelDilations)
	return []*Node{dx, dk}
}

// convDims holds one spatial axis of a convolution: input size I, kernel size K (dilated: keff),
// output size O, stride s, padding (pl, pr) and the remainder r = (I+pl+pr-keff) mod s (input
// positions the last window never reaches).
type convDims struct{ i, k, keff, o, s, d, pl, pr, r int }

func spatialDims(x, kernel, out shapes.Shape, axes ConvolveAxesConfig, strides []int, paddings [][2]int, kernelDilations []int) []convDims {
	dims := make([]convDims, len(axes.InputSpatial))
	for n := range dims {
		c := convDims{i: x.Dim(axes.InputSpatial[n]), k: kernel.Dim(axes.KernelSpatial[n]), o: out.Dim(axes.OutputSpatial[n]),
			s: strides[n], d: kernelDilations[n], pl: paddings[n][0], pr: paddings[n][1]}
		c.keff = (c.k-1)*c.d + 1
		total := c.i + c.pl + c.pr - c.keff
		if total < 0 || total/c.s+1 != c.o {
			exceptions.Panicf("gradfix: ConvGeneral spatial axis %d: input %d, kernel %d (dilation %d), stride %d, padding %v do not give output %d",
				n, c.i, c.k, c.d, c.s, paddings[n], c.o)
		}
		c.r = total % c.s
		dims[n] = c
	}
	return dims
}

// ConvInputGrad is the gradient w.r.t. the input (shaped xShape) of
// ConvGeneral(x, kernel, axes, strides, paddings, kernelDilations), given the cotangent v of its
// output: the convolution of v, dilated by the strides, with the spatially flipped kernel whose
// input/output channel roles are swapped.
func ConvInputGrad(v, kernel *Node, xShape shapes.Shape, axes ConvolveAxesConfig, strides []int, paddings [][2]int, kernelDilations []int) *Node {
	dims := spatialDims(xShape, kernel.Shape(), v.Shape(), axes, strides, paddings, kernelDilations)
	numSpatial := len(dims)
	revAxes := ConvolveAxesConfig{
		InputBatch: axes.OutputBatch, InputChannels: axes.OutputChannels, InputSpatial: slices.Clone(axes.OutputSpatial),
		KernelInputChannels: axes.KernelOutputChannels, KernelOutputChannels: axes.KernelInputChannels, KernelSpatial: slices.Clone(axes.KernelSpatial),
		OutputBatch: axes.InputBatch, OutputChannels: axes.InputChannels, OutputSpatial: slices.Clone(axes.InputSpatial),
	}
	revPaddings := make([][2]int, numSpatial)
	crops := make([]int, numSpatial)
	for n, c := range dims {
		padL, padR := c.keff-1-c.pl, c.keff-1-c.pr+c.r
		crops[n] = max(0, -padL) // Negative padding: computed with 0 and cropped below.
		revPaddings[n] = [2]int{max(padL, 0), max(padR, 0)}
	}
	dx := ConvGeneral(v, Reverse(kernel, axes.KernelSpatial...), revAxes, ones(numSpatial), revPaddings,
		slices.Clone(strides), slices.Clone(kernelDilations), 1, 1)
	for n, c := range dims {
		axis := axes.InputSpatial[n]
		if crops[n] > 0 || dx.Shape().Dim(axis) != c.i {
			dx = SliceAxis(dx, axis, AxisRange(crops[n], crops[n]+c.i))
		}
	}
	return dx
}

// ConvKernelGrad is the gradient w.r.t. the kernel (shaped kernelShape) of
// ConvGeneral(x, kernel, axes, strides, paddings, kernelDilations), given the cotangent v of its
// output: the convolution of x (batch and channel roles swapped) with v as the kernel, dilated by
// the strides, strided by the kernel dilations.
func ConvKernelGrad(v, x *Node, kernelShape shapes.Shape, axes ConvolveAxesConfig, strides []int, paddings [][2]int, kernelDilations []int) *Node {
	dims := spatialDims(x.Shape(), kernelShape, v.Shape(), axes, strides, paddings, kernelDilations)
	numSpatial := len(dims)
	revAxes := ConvolveAxesConfig{
		InputBatch: axes.InputChannels, InputChannels: axes.InputBatch, InputSpatial: slices.Clone(axes.InputSpatial),
		KernelInputChannels: axes.OutputBatch, KernelOutputChannels: axes.OutputChannels, KernelSpatial: slices.Clone(axes.OutputSpatial),
		OutputBatch: axes.KernelInputChannels, OutputChannels: axes.KernelOutputChannels, OutputSpatial: slices.Clone(axes.KernelSpatial),
	}
	revPaddings := make([][2]int, numSpatial)
	for n, c := range dims {
		padL, padR := c.pl, c.pr-c.r // Input positions the last window never reached are dropped.
		if padL < 0 || padR < 0 {
			axis := axes.InputSpatial[n]
			x = SliceAxis(x, axis, AxisRange(max(0, -padL), c.i-max(0, -padR)))
		}
		revPaddings[n] = [2]int{max(padL, 0), max(padR, 0)}
	}
	return ConvGeneral(x, v, revAxes, slices.Clone(kernelDilations), revPaddings,
		ones(numSpatial), slices.Clone(strides), 1, 1)
}

func ones(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

// orOnes returns values, or n ones when values is empty; values ≤ 0 become 1 (as the backends do).
func orOnes(values []int, n int) []int {
	if len(values) == 0 {
		return ones(n)
	}
	out := slices.Clone(values)
	for i, x := range out {
		if x <= 0 {
			out[i] = 1
		}
	}
	return out
}

// axesOf reads a backends.ConvolveAxesConfig held in a private field.
func axesOf(v reflect.Value) ConvolveAxesConfig {
	f := func(name string) reflect.Value { return v.FieldByName(name) }
	return ConvolveAxesConfig{
		InputBatch: intOf(f("InputBatch")), InputChannels: intOf(f("InputChannels")), InputSpatial: intsOf(f("InputSpatial")),
		KernelInputChannels: intOf(f("KernelInputChannels")), KernelOutputChannels: intOf(f("KernelOutputChannels")), KernelSpatial: intsOf(f("KernelSpatial")),
		OutputBatch: intOf(f("OutputBatch")), OutputChannels: intOf(f("OutputChannels")), OutputSpatial: intsOf(f("OutputSpatial")),
	}
}
