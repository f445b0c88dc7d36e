package slider

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/models/toyworld"
)

// directArea is the exact box filter computed the long way: each destination cell is the integral of
// the source over the cell's rectangle (2-D overlaps with every source pixel) divided by its area.
func directArea(img []float64, sh, sw, dh, dw int) []float64 {
	out := make([]float64, dh*dw)
	ch, cw := float64(sh)/float64(dh), float64(sw)/float64(dw)
	for i := 0; i < dh; i++ {
		for j := 0; j < dw; j++ {
			y0, y1, x0, x1 := float64(i)*ch, float64(i+1)*ch, float64(j)*cw, float64(j+1)*cw
			var s float64
			for k := 0; k < sh; k++ {
				for l := 0; l < sw; l++ {
					s += img[k*sw+l] * overlap(y0, y1, float64(k), float64(k+1)) * overlap(x0, x1, float64(l), float64(l+1))
				}
			}
			out[i*dw+j] = s / (ch * cw)
		}
	}
	return out
}

func assertClose[F float32 | float64](t *testing.T, want []float64, got []F, tol float64, msg string) {
	t.Helper()
	require.Len(t, got, len(want), msg)
	for i := range want {
		assert.InDelta(t, want[i], float64(got[i]), tol, "%s: element %d", msg, i)
	}
}

// TestAreaResampleDirect: the separable box filter equals the 2-D integral over each cell, for
// down-, up- and mixed resampling with fractional overlaps, and is the identity at the same size.
func TestAreaResampleDirect(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, c := range [][4]int{{7, 5, 3, 2}, {4, 6, 4, 6}, {2, 3, 5, 4}, {9, 16, 4, 7}, {1, 1, 3, 3}} {
		sh, sw, dh, dw := c[0], c[1], c[2], c[3]
		img := make([]float64, sh*sw)
		for i := range img {
			img[i] = rng.Float64()
		}
		assertClose(t, directArea(img, sh, sw, dh, dw), areaResample(img, sh, sw, dh, dw), 1e-12, "resample")
		if sh == dh && sw == dw {
			assertClose(t, img, areaResample(img, sh, sw, dh, dw), 1e-12, "identity")
		}
	}
}

// TestMaskWeightsRegion: a toy-world region mask is toyworld.RegionMask of the entry's prompt,
// area-averaged to the latent grid; invert gives its complement; a bad prompt is an error.
func TestMaskWeightsRegion(t *testing.T) {
	region, err := toyworld.RegionMask("a small circle", RegionBackground, 32, 32)
	require.NoError(t, err)
	img := make([]float64, len(region))
	for i, x := range region {
		img[i] = float64(x)
	}
	w, err := (&Mask{Region: RegionBackground}).Weights(16, 16, 32, 32, "", "a small circle")
	require.NoError(t, err)
	assertClose(t, directArea(img, 32, 32, 16, 16), w, 1e-6, "the area average of the exact mask")
	inv, err := (&Mask{Region: RegionBackground, Invert: true}).Weights(16, 16, 32, 32, "", "a small circle")
	require.NoError(t, err)
	for i := range w {
		assert.InDelta(t, 1-w[i], inv[i], 1e-6)
	}
	_, err = (&Mask{Region: RegionBackground}).Weights(16, 16, 32, 32, "", "a small cirle")
	assert.ErrorContains(t, err, `mask region "background"`)
}

// TestAreaResampleFractional: 3×3 → 2×2, each latent cell covering 1.5×1.5 pixels: a whole pixel,
// two half pixels and a quarter pixel, over the cell's area 2.25.
func TestAreaResampleFractional(t *testing.T) {
	p := []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}
	want := []float64{
		(p[0] + 0.5*p[1] + 0.5*p[3] + 0.25*p[4]) / 2.25,
		(p[2] + 0.5*p[1] + 0.5*p[5] + 0.25*p[4]) / 2.25,
		(p[6] + 0.5*p[3] + 0.5*p[7] + 0.25*p[4]) / 2.25,
		(p[8] + 0.5*p[5] + 0.5*p[7] + 0.25*p[4]) / 2.25,
	}
	assertClose(t, want, areaResample(p, 3, 3, 2, 2), 1e-7, "3x3 → 2x2")
}

// TestMaskBoxes: boxes rasterised at the image resolution and area-averaged to the latent grid,
// whole and fractional, on a non-square image; invert gives 1 − W.
func TestMaskBoxes(t *testing.T) {
	m := &Mask{Boxes: [][4]float64{{0, 0, 16, 8}}}
	w, err := m.Weights(4, 4, 32, 32, "", "")
	require.NoError(t, err)
	assertClose(t, []float64{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, w, 0, "top-left 16×8 px = 2×1 latent cells")

	// [4, 12) in x covers half of latent columns 0 and 1 (8 px each); two overlapping boxes are a union.
	m = &Mask{Boxes: [][4]float64{{4, 0, 12, 8}, {4, 0, 8, 8}}}
	w, err = m.Weights(4, 4, 32, 32, "", "")
	require.NoError(t, err)
	assertClose(t, []float64{0.5, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, w, 1e-7, "fractional cells")

	// Fractional pixel coordinates: x ∈ [0, 2.5], y ∈ [0, 1] covers pixels (0,0), (0,1) and half of
	// (0,2); x ∈ [3, 4], y ∈ [0.5, 1.5] half of (0,3) and of (1,3) (pixels as (row, column)).
	m = &Mask{Boxes: [][4]float64{{0, 0, 2.5, 1}, {3, 0.5, 4, 1.5}}}
	w, err = m.Weights(4, 4, 4, 4, "", "")
	require.NoError(t, err)
	assertClose(t, []float64{1, 1, 0.5, 0.5, 0, 0, 0, 0.5, 0, 0, 0, 0, 0, 0, 0, 0}, w, 1e-7, "fractional pixels")
	w, err = m.Weights(1, 1, 4, 4, "", "")
	require.NoError(t, err)
	assertClose(t, []float64{(2.5 + 1) / 16}, w, 1e-7, "one cell: the covered area")

	// Non-square image 16×24 (h × w) on a 2×3 latent grid (8 px cells); inverted.
	m = &Mask{Boxes: [][4]float64{{8, 0, 24, 4}}, Invert: true}
	w, err = m.Weights(2, 3, 16, 24, "", "")
	require.NoError(t, err)
	assertClose(t, []float64{1, 0.5, 0.5, 1, 1, 1}, w, 1e-7, "inverted, non-square")
}

// writePNG encodes img into dir/name and returns the path.
func writePNG(t *testing.T, dir, name string, img image.Image) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, img))
	require.NoError(t, f.Close())
	return path
}

// TestMaskPNG: a greyscale PNG reads as level/255, a colour PNG with alpha as BT.601 luminance ×
// alpha, both area-averaged (from any size) to the latent grid; a relative path is opened in the
// preset's folder; invert.
func TestMaskPNG(t *testing.T) {
	dir := t.TempDir()
	grey := image.NewGray(image.Rect(0, 0, 5, 3))
	levels := make([]float64, 15)
	for i := range levels {
		grey.Pix[i] = uint8(i * 17)
		levels[i] = float64(i*17) / 255
	}
	writePNG(t, dir, "grey.png", grey)
	w, err := (&Mask{PNG: "grey.png"}).Weights(2, 2, 64, 64, dir, "")
	require.NoError(t, err)
	assertClose(t, directArea(levels, 3, 5, 2, 2), w, 1e-6, "greyscale")
	w, err = (&Mask{PNG: filepath.Join(dir, "grey.png"), Invert: true}).Weights(3, 5, 8, 8, "elsewhere", "")
	require.NoError(t, err)
	want := make([]float64, 15)
	for i, l := range levels {
		want[i] = 1 - l
	}
	assertClose(t, want, w, 1e-6, "inverted, absolute path, same size")

	colours := []color.NRGBA{{255, 0, 0, 255}, {0, 255, 0, 128}, {0, 0, 255, 255}, {200, 100, 50, 64}}
	rgba := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	lum := make([]float64, 4)
	for i, c := range colours {
		rgba.SetNRGBA(i%2, i/2, c)
		lum[i] = (0.299*float64(c.R) + 0.587*float64(c.G) + 0.114*float64(c.B)) / 255 * float64(c.A) / 255
	}
	writePNG(t, dir, "rgba.png", rgba)
	w, err = (&Mask{PNG: "rgba.png"}).Weights(2, 2, 16, 16, dir, "")
	require.NoError(t, err)
	assertClose(t, lum, w, 1e-3, "luminance × alpha")
	w, err = (&Mask{PNG: "rgba.png"}).Weights(1, 1, 16, 16, dir, "")
	require.NoError(t, err)
	assertClose(t, []float64{(lum[0] + lum[1] + lum[2] + lum[3]) / 4}, w, 1e-3, "mean")
}

// TestMaskWeightsErrors: missing and undecodable PNGs, empty masks, bad grids and bad
// boxes are errors that say what is wrong.
func TestMaskWeightsErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "text.png"), "not a png")
	for _, c := range []struct {
		m    Mask
		h    int
		want string
	}{
		{Mask{PNG: "missing.png"}, 4, "missing.png: no such file"},
		{Mask{PNG: "text.png"}, 4, "text.png: png: invalid format"},
		{Mask{}, 4, "mask: empty; want one of png, boxes or region"},
		{Mask{Boxes: [][4]float64{{0, 0, 8, 8}}}, 0, "latent grid 0×4: want positive sizes"},
		{Mask{Boxes: [][4]float64{{0, 0, 40, 8}}}, 4, "boxes[0] [0 0 40 8]: outside the 32×32 image"},
		{Mask{Boxes: [][4]float64{{0, 0, 8, 8}, {4, 4, 4, 8}}}, 4, "boxes[1] [4 4 4 8]: empty; want x0 < x1 and y0 < y1"},
		{Mask{Boxes: [][4]float64{{-1, 0, 8, 8}}}, 4, "outside the 32×32 image"},
		{Mask{Boxes: [][4]float64{{0, math.NaN(), 8, 8}}}, 4, "want finite numbers"},
	} {
		_, err := c.m.Weights(c.h, 4, 32, 32, dir, "")
		assert.ErrorContains(t, err, c.want)
	}
}
