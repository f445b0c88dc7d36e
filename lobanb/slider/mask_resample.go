package slider

import (
	"fmt"
	"image/png"
	"math"
	"os"
)

// The pixels of masks: PNG decoding to luminance × alpha, box rasterisation and the exact box filter
// (area averaging, as OpenCV's INTER_AREA and PIL's BOX filter) that brings them to the latent grid.

// readMaskPNG decodes a PNG into row-major values in [0, 1]: the luminance (ITU-R BT.601 weights,
// as image/color's GrayModel; a greyscale image's own level) times the alpha. Go's RGBA() values are
// alpha-premultiplied, so the weighted sum of the premultiplied channels is exactly luminance × alpha.
func readMaskPNG(path string) (img []float64, h, w int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("mask png: %w", err)
	}
	defer f.Close()
	m, err := png.Decode(f)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("mask png %s: %w", path, err)
	}
	b := m.Bounds()
	h, w = b.Dy(), b.Dx()
	if h == 0 || w == 0 {
		return nil, 0, 0, fmt.Errorf("mask png %s: the image is empty (%d×%d)", path, h, w)
	}
	img = make([]float64, h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl, _ := m.At(b.Min.X+x, b.Min.Y+y).RGBA()
			img[y*w+x] = (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)) / 0xffff
		}
	}
	return img, h, w, nil
}

// rasterBoxes draws boxes on an imgH×imgW image: each pixel takes the largest fraction of its area
// covered by one box (1 inside a box, 0 outside all, a fraction on a fractional edge).
func rasterBoxes(boxes [][4]float64, imgH, imgW int) []float64 {
	img := make([]float64, imgH*imgW)
	for _, b := range boxes {
		for y := max(0, int(math.Floor(b[1]))); y < min(imgH, int(math.Ceil(b[3]))); y++ {
			fy := overlap(b[1], b[3], float64(y), float64(y+1))
			for x := max(0, int(math.Floor(b[0]))); x < min(imgW, int(math.Ceil(b[2]))); x++ {
				img[y*imgW+x] = max(img[y*imgW+x], fy*overlap(b[0], b[2], float64(x), float64(x+1)))
			}
		}
	}
	return img
}

// overlap is the length of [a0, a1] ∩ [b0, b1] (0 when they are disjoint).
func overlap(a0, a1, b0, b1 float64) float64 { return max(0, min(a1, b1)-max(a0, b0)) }

// tap is one source index of a destination cell and its weight.
type tap struct {
	src    int
	weight float64
}

// areaTaps returns, for each of dst cells spanning src pixels, the source pixels it covers and their
// weights (the covered fraction of the cell, summing to 1). Destination cell i covers
// [i·src/dst, (i+1)·src/dst); in units of 1/dst pixel that is [i·src, (i+1)·src), and pixel k covers
// [k·dst, (k+1)·dst), so the overlaps are exact integers.
func areaTaps(src, dst int) [][]tap {
	out := make([][]tap, dst)
	for i := range out {
		lo, hi := i*src, (i+1)*src
		for k := lo / dst; k*dst < hi; k++ {
			if ov := min(hi, (k+1)*dst) - max(lo, k*dst); ov > 0 {
				out[i] = append(out[i], tap{k, float64(ov) / float64(src)})
			}
		}
	}
	return out
}

// areaResample resamples a row-major sh×sw image to dh×dw by area averaging: each destination cell
// is the mean of the source area it covers. The box filter is separable: rows first, then columns.
func areaResample(img []float64, sh, sw, dh, dw int) []float64 {
	ty, tx := areaTaps(sh, dh), areaTaps(sw, dw)
	rows := make([]float64, sh*dw)
	for y := 0; y < sh; y++ {
		for j, taps := range tx {
			var s float64
			for _, t := range taps {
				s += t.weight * img[y*sw+t.src]
			}
			rows[y*dw+j] = s
		}
	}
	out := make([]float64, dh*dw)
	for i, taps := range ty {
		for j := 0; j < dw; j++ {
			var s float64
			for _, t := range taps {
				s += t.weight * rows[t.src*dw+j]
			}
			out[i*dw+j] = s
		}
	}
	return out
}
