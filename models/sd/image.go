package sd

// Images: ports diffusers' VaeImageProcessor.postprocess(output_type="pil") — (x/2 + 0.5).clamp(0, 1),
// ×255, round half to even (numpy), uint8 — plus grids and atomic PNG files.

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/loba-dev/loba/internal/atomicfile"
)

// ToImages converts decoded images [N, 3, H, W] (float32, about [-1, 1], NCHW) to 8-bit RGB images,
// as diffusers' postprocess: round((clamp(x/2 + 0.5, 0, 1))·255).
func ToImages(t *tensors.Tensor) ([]image.Image, error) {
	s := t.Shape()
	if s.Rank() != 4 || s.Dim(1) != 3 {
		return nil, fmt.Errorf("sd.ToImages: want [N, 3, H, W] images, got %s", s)
	}
	flat, err := tensors.CopyFlatData[float32](t)
	if err != nil {
		return nil, fmt.Errorf("sd.ToImages: %w (want float32)", err)
	}
	n, h, w := s.Dim(0), s.Dim(2), s.Dim(3)
	plane := h * w
	out := make([]image.Image, n)
	for i := range n {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		base := i * 3 * plane
		for y := range h {
			for x := range w {
				o := img.PixOffset(x, y)
				for ch := range 3 {
					img.Pix[o+ch] = toByte(flat[base+ch*plane+y*w+x])
				}
				img.Pix[o+3] = 255
			}
		}
		out[i] = img
	}
	return out, nil
}

// toByte maps [-1, 1] to [0, 255] as diffusers: (v/2 + 0.5).clamp(0, 1)·255, rounded half to even.
func toByte(v float32) uint8 {
	u := v/2 + 0.5
	if !(u > 0) { // also NaN
		u = 0
	}
	u = min(u, 1)
	return uint8(math.RoundToEven(float64(u * 255)))
}

// Grid lays out rows of images (rows may differ in length) in cells of the largest image size, on
// black; an empty grid gives an empty image.
func Grid(rows [][]image.Image) image.Image {
	cw, ch, cols := 0, 0, 0
	for _, row := range rows {
		cols = max(cols, len(row))
		for _, img := range row {
			if img != nil {
				cw, ch = max(cw, img.Bounds().Dx()), max(ch, img.Bounds().Dy())
			}
		}
	}
	grid := image.NewNRGBA(image.Rect(0, 0, cols*cw, len(rows)*ch))
	draw.Draw(grid, grid.Bounds(), image.NewUniform(color.Black), image.Point{}, draw.Src)
	for r, row := range rows {
		for c, img := range row {
			if img == nil {
				continue
			}
			at := image.Pt(c*cw, r*ch)
			draw.Draw(grid, image.Rectangle{Min: at, Max: at.Add(img.Bounds().Size())}, img, img.Bounds().Min, draw.Src)
		}
	}
	return grid
}

// SavePNG writes img as a PNG at path atomically (a temporary file in the same folder, renamed).
func SavePNG(path string, img image.Image) error {
	if err := atomicfile.Write(path, func(w io.Writer) error { return png.Encode(w, img) }); err != nil {
		return fmt.Errorf("sd.SavePNG %s: %w", path, err)
	}
	return nil
}

// SaveGrid writes rows of images (e.g. prompts × strengths) as one PNG at path.
func SaveGrid(path string, rows [][]image.Image) error {
	return SavePNG(path, Grid(rows))
}
