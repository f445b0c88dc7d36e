package nn

import (
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
)

// simplegoName is the registration name (backends.Backend.String()) of gomlx's pure-Go backend.
const simplegoName = "go"

// useIm2col reports whether conv2D should run as im2col: on simplego, whose ConvGeneral kernel is
// slow (≈0.55 GFLOP/s against ≈6 GFLOP/s for its gemm) and whose convolution gradient would need
// Reverse/Pad. XLA keeps its native convolution.
func useIm2col(g *Graph) bool {
	b := g.Backend()
	return b != nil && b.String() == simplegoName
}

// conv2DIm2col computes conv2D as im2col: zero-pad x with Concatenate, take the kh·kw (strided)
// shifted windows with Slice, stack them and contract them with the OIHW kernel in one DotGeneral.
// Its gradient uses only Slice, Concatenate, DotGeneral and Transpose (see package gradfix).
//
// x: [B, C, H, W], w: [O, C, kh, kw] → [B, O, H', W'].
func conv2DIm2col(x, w *Node, stride int, padding [2][2]int) *Node {
	c, h, wd := x.Shape().Dim(1), x.Shape().Dim(2), x.Shape().Dim(3)
	o, kh, kw := w.Shape().Dim(0), w.Shape().Dim(2), w.Shape().Dim(3)
	if w.Rank() != 4 || w.Shape().Dim(1) != c {
		exceptions.Panicf("nn.Conv2D: kernel %s does not fit input %s (want [O, %d, kh, kw])", w.Shape(), x.Shape(), c)
	}
	if min(padding[0][0], padding[0][1], padding[1][0], padding[1][1]) < 0 {
		exceptions.Panicf("nn.Conv2D: negative padding %v", padding)
	}
	hp, wp := h+padding[0][0]+padding[0][1], wd+padding[1][0]+padding[1][1]
	if hp < kh || wp < kw {
		exceptions.Panicf("nn.Conv2D: kernel %dx%d larger than the padded input %dx%d", kh, kw, hp, wp)
	}
	ho, wo := (hp-kh)/stride+1, (wp-kw)/stride+1
	xp := zeroPad(x, 2, padding[0])
	xp = zeroPad(xp, 3, padding[1]) // [B, C, Hp, Wp]

	var cols *Node // [B, C, kh·kw, H', W']
	if kh == 1 && kw == 1 && stride == 1 {
		cols = InsertAxes(xp, 2)
	} else {
		windows := make([]*Node, 0, kh*kw)
		for i := range kh {
			for j := range kw {
				windows = append(windows, Slice(xp, AxisRange(), AxisRange(),
					AxisRange(i, i+(ho-1)*stride+1).Stride(stride),
					AxisRange(j, j+(wo-1)*stride+1).Stride(stride))) // [B, C, H', W']
			}
		}
		cols = Stack(windows, 2)
	}
	kernel := Reshape(w, o, c, kh*kw)                                 // [O, C, kh·kw]
	y := DotGeneral(cols, []int{1, 2}, nil, kernel, []int{1, 2}, nil) // [B, H', W', O]
	y = TransposeAllAxes(y, 0, 3, 1, 2)                               // [B, O, H', W']
	return y
}

// zeroPad pads axis of x with pad[0] zeros before and pad[1] after, using Concatenate (simplego
// has no Pad).
func zeroPad(x *Node, axis int, pad [2]int) *Node {
	zeros := func(n int) *Node {
		shape := x.Shape().Clone()
		shape.Dimensions[axis] = n
		return Zeros(x.Graph(), shape)
	}
	parts := []*Node{x}
	if pad[0] > 0 {
		parts = append([]*Node{zeros(pad[0])}, parts...)
	}
	if pad[1] > 0 {
		parts = append(parts, zeros(pad[1]))
	}
	if len(parts) == 1 {
		return x
	}
	return Concatenate(parts, axis)
}
