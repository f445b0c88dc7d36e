package nn

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
)

// ConceptMask turns captured cross-attention maps (CaptureCrossAttention) into U-LOBA's weight map
// W (docs/ALGORITHMS.md §5: "normalised, thresholded, blurred"):
//
//  1. normalise each sample by its own maximum over h×w, to [0, 1];
//  2. hard threshold: 1 where the normalised map is > threshold, else 0 (a sample whose map is all
//     zeros gives zeros). Hard rather than a soft sigmoid((m − threshold)·k), whose sharpness k
//     has no natural scale; the blur softens the edges instead;
//  3. box blur of radius blur: each pixel becomes the mean of the (2·blur+1)² window around it,
//     clipped to the grid (the mean over the pixels inside it), so a uniform mask stays uniform up
//     to the edges; blur 0 leaves the binary mask.
//
// maps: [B, h, w] → [B, 1, h, w] float32 in [0, 1], without gradient. threshold must lie in
// [0, 1) and blur be ≥ 0 (a panic during graph building otherwise).
func ConceptMask(maps *Node, threshold float64, blur int) *Node {
	if maps == nil || maps.Rank() != 3 || !maps.DType().IsFloat() {
		exceptions.Panicf("nn.ConceptMask: want float maps [B, h, w], got %v", shapeOrNil(maps))
	}
	if !(threshold >= 0 && threshold < 1) || blur < 0 {
		exceptions.Panicf("nn.ConceptMask: threshold %g must lie in [0, 1) and blur %d be ≥ 0", threshold, blur)
	}
	b, h, w := maps.Shape().Dim(0), maps.Shape().Dim(1), maps.Shape().Dim(2)
	m := StopGradient(ConvertDType(maps, dtypes.Float32))
	peak := ReduceAndKeep(m, ReduceMax, 1, 2) // [B, 1, 1]
	// m/peak > threshold ⟺ m > threshold·peak for peak > 0; an all-zero map stays zeros.
	bin := ConvertDType(GreaterThan(m, MulScalar(peak, threshold)), dtypes.Float32) // [B, h, w]
	if blur > 0 {
		g := m.Graph()
		bin = Einsum("bhw,oh->bow", bin, boxAverage(g, h, blur)) // [B, h, w]
		bin = Einsum("bhw,ow->bho", bin, boxAverage(g, w, blur)) // [B, h, w]
	}
	return Reshape(bin, b, 1, h, w)
}

// boxAverage is the [n, n] matrix of a 1-D box blur of radius r clipped to n positions: row o
// averages the positions i with |o − i| ≤ r inside [0, n). The 2-D clipped window is the product
// of the two axes' windows, so blurring one axis after the other is the 2-D window mean.
func boxAverage(g *Graph, n, r int) *Node {
	a := make([][]float32, n)
	for o := range a {
		a[o] = make([]float32, n)
		lo, hi := max(0, o-r), min(n-1, o+r)
		for i := lo; i <= hi; i++ {
			a[o][i] = float32(1 / float64(hi-lo+1))
		}
	}
	return Const(g, a)
}
