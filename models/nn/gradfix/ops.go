package gradfix

import (
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// rsqrtVJP: y = x^-½, dy/dx = -½·x^-3/2 = -½·y³.
func rsqrtVJP(node, v *Node) []*Node {
	y := node
	return []*Node{MulScalar(Mul(v, Mul(y, Mul(y, y))), -0.5)}
}

// sliceVJP scatters the cotangent back into a zero tensor of the input's shape, with
// Concatenate (and, for strides > 1, zeros interleaved by Concatenate + Reshape) instead of Pad.
func sliceVJP(node, v *Node) []*Node {
	p := params(node, "starts", "limits", "strides")
	starts, strides := intsOf(p.FieldByName("starts")), intsOf(p.FieldByName("strides"))
	x := node.Inputs()[0]
	return []*Node{ZeroPadSlice(v, x.Shape(), starts, strides)}
}

// ZeroPadSlice is the adjoint of Slice(x, starts, strides): it places v (the sliced shape) at
// starts[axis] + i·strides[axis] in a zero tensor shaped like x, using only Concatenate, Reshape
// and Slice. strides may be nil (all 1).
func ZeroPadSlice(v *Node, x shapes.Shape, starts, strides []int) *Node {
	g := v.Graph()
	grad := v
	for axis := range x.Rank() {
		n := grad.Shape().Dim(axis)
		dim := x.Dim(axis)
		if n == dim {
			continue // Full axis (start 0, stride irrelevant).
		}
		stride := 1
		if len(strides) > axis && strides[axis] > 1 {
			stride = strides[axis]
		}
		covered := n
		if stride > 1 && n > 1 {
			// [..., n, ...] → [..., n, 1, ...] ++ zeros [..., n, stride-1, ...] → [..., n·stride, ...].
			expanded := InsertAxes(grad, axis+1)
			zerosShape := expanded.Shape().Clone()
			zerosShape.Dimensions[axis+1] = stride - 1
			expanded = Concatenate([]*Node{expanded, Zeros(g, zerosShape)}, axis+1)
			dims := grad.Shape().Clone().Dimensions
			dims[axis] = n * stride
			grad = Reshape(expanded, dims...)
			covered = n * stride
		}
		end := dim - starts[axis] - covered
		if end < 0 {
			// Trailing interleaved zeros past the input's end.
			grad = SliceAxis(grad, axis, AxisRange(0, covered+end))
			end = 0
		}
		parts := make([]*Node, 0, 3)
		if starts[axis] > 0 {
			parts = append(parts, Zeros(g, withDim(grad.Shape(), axis, starts[axis])))
		}
		parts = append(parts, grad)
		if end > 0 {
			parts = append(parts, Zeros(g, withDim(grad.Shape(), axis, end)))
		}
		if len(parts) > 1 {
			grad = Concatenate(parts, axis)
		}
	}
	return grad
}

// withDim returns a copy of shape with dimension axis set to dim.
func withDim(shape shapes.Shape, axis, dim int) shapes.Shape {
	s := shape.Clone()
	s.Dimensions[axis] = dim
	return s
}
