package nn

import (
	"github.com/gomlx/compute"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/loba-dev/loba/models/nn/gemm"
)

// useIm2col reports whether conv2D should run as im2col: on the Go backend, whose ConvGeneral
// kernel is slow (a 3×3 64→64 convolution forward+backward on 64×64 runs at ≈0.5 GFLOP/s on
// v0.28.8, measured for issue 12; BenchmarkConv3x3 compares both). XLA keeps its native
// convolution.
func useIm2col(g *Graph) bool { return gemm.OnGoBackend(g) }

// conv2DIm2col computes conv2D as im2col in channels-last order, so that its one gemm needs no
// transposition of the (kh·kw times larger) column tensor: x goes to NHWC once, is zero-padded,
// the kh·kw (strided) shifted windows are sliced and concatenated on the channel axis into
// [B, H', W', kh·kw·C], and contracted with the kernel laid out [kh·kw·C, O] — the "non-transposed"
// gemm layout, which the Go backend runs up to 20× faster than [O, K] for small products
// (BenchmarkDenseLayouts). Its gradient uses only Transpose, Pad, Slice, Concatenate and
// DotGeneral.
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
	xp := TransposeAllAxes(x, 0, 2, 3, 1) // [B, H, W, C]
	if padding != [2][2]int{} {
		xp = Pad(xp, ScalarZero(x.Graph(), x.DType()), compute.PadAxis{},
			compute.PadAxis{Start: padding[0][0], End: padding[0][1]},
			compute.PadAxis{Start: padding[1][0], End: padding[1][1]}, compute.PadAxis{}) // [B, Hp, Wp, C]
	}
	cols := xp // [B, H', W', kh·kw·C]
	if kh != 1 || kw != 1 || stride != 1 {
		windows := make([]*Node, 0, kh*kw)
		for i := range kh {
			for j := range kw {
				windows = append(windows, Slice(xp, AxisRange(),
					AxisRange(i, i+(ho-1)*stride+1).Stride(stride),
					AxisRange(j, j+(wo-1)*stride+1).Stride(stride), AxisRange())) // [B, H', W', C]
			}
		}
		if len(windows) == 1 {
			cols = windows[0]
		} else {
			cols = Concatenate(windows, 3)
		}
	}
	kernel := Reshape(TransposeAllAxes(w, 2, 3, 1, 0), kh*kw*c, o) // [kh·kw·C, O]
	y := DotGeneral(cols, []int{3}, nil, kernel, []int{0}, nil)    // [B, H', W', O]
	return TransposeAllAxes(y, 0, 3, 1, 2)                         // [B, O, H', W']
}
