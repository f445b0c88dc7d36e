package sd

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"
)

func TestToImages(t *testing.T) {
	// [2, 3, 1, 4]: image 0 channel values, image 1 their negatives.
	vals := []float32{-1, 0, 1, 2, -3, 0.5, float32(math.NaN()), 0.001, 1 / 255.0, -1 / 255.0, 0.999, -0.999}
	var flat []float32
	flat = append(flat, vals...)
	for _, v := range vals {
		flat = append(flat, -v)
	}
	imgs, err := ToImages(tensors.FromFlatDataAndDimensions(flat, 2, 3, 1, 4))
	require.NoError(t, err)
	require.Len(t, imgs, 2)
	require.Equal(t, image.Rect(0, 0, 4, 1), imgs[0].Bounds())
	// (v/2 + 0.5) clamped to [0, 1], ×255, rounded half to even: 0 → 127.5 → 128.
	want := func(v float32) uint8 {
		u := math.Max(0, math.Min(1, float64(v)/2+0.5))
		if math.IsNaN(float64(v)) {
			u = 0
		}
		return uint8(math.RoundToEven(u * 255))
	}
	for i, img := range imgs {
		for x := range 4 {
			c := img.At(x, 0).(color.NRGBA)
			for ch, got := range []uint8{c.R, c.G, c.B} {
				v := flat[i*12+ch*4+x]
				require.Equal(t, want(v), got, "image %d pixel %d channel %d (value %g)", i, x, ch, v)
			}
			require.Equal(t, uint8(255), c.A)
		}
	}
	require.Equal(t, color.NRGBA{0, 0, 128, 255}, imgs[0].At(0, 0)) // -1, -3, 1/255 (→ 128.0)
	require.Equal(t, uint8(0), imgs[0].At(2, 0).(color.NRGBA).G)    // NaN → 0
	require.Equal(t, uint8(128), imgs[0].At(1, 0).(color.NRGBA).R)  // 0 → 127.5 → 128 (half to even)

	_, err = ToImages(tensors.FromFlatDataAndDimensions(make([]float32, 4), 1, 4, 1, 1))
	require.ErrorContains(t, err, "[N, 3, H, W]")
}

func solid(w, h int, c color.NRGBA) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

func TestGridAndSavePNG(t *testing.T) {
	red, green, blue := color.NRGBA{255, 0, 0, 255}, color.NRGBA{0, 255, 0, 255}, color.NRGBA{0, 0, 255, 255}
	rows := [][]image.Image{
		{solid(3, 2, red), solid(3, 2, green)},
		{solid(2, 2, blue)}, // shorter row, smaller image: black around it
	}
	g := Grid(rows)
	require.Equal(t, image.Rect(0, 0, 6, 4), g.Bounds())
	at := func(x, y int) color.NRGBA { return color.NRGBAModel.Convert(g.At(x, y)).(color.NRGBA) }
	require.Equal(t, red, at(0, 0))
	require.Equal(t, red, at(2, 1))
	require.Equal(t, green, at(3, 0))
	require.Equal(t, green, at(5, 1))
	require.Equal(t, blue, at(0, 2))
	require.Equal(t, blue, at(1, 3))
	black := color.NRGBA{0, 0, 0, 255}
	require.Equal(t, black, at(2, 2))
	require.Equal(t, black, at(5, 3))

	dir := t.TempDir()
	path := filepath.Join(dir, "grid.png")
	require.NoError(t, SavePNG(path, g))
	require.NoError(t, SaveGrid(path, rows)) // overwrite
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left")
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	back, err := png.Decode(f)
	require.NoError(t, err)
	require.Equal(t, g.Bounds(), back.Bounds())
	for y := range 4 {
		for x := range 6 {
			require.Equal(t, at(x, y), color.NRGBAModel.Convert(back.At(x, y)), "pixel %d,%d", x, y)
		}
	}
	require.Error(t, SavePNG(filepath.Join(dir, "missing", "x.png"), g))
	require.Equal(t, image.Rect(0, 0, 0, 0), Grid(nil).Bounds())
}
