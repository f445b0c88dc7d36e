package toyworld

import (
	"image"
	"image/color"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// directTone computes the tone read-outs straight from the pixels: mean(B) − mean(R) over the
// image, and the mean Rec. 709 luma of the pixels for which isBg is true.
func directTone(img *image.RGBA, isBg func(x, y int) bool) (cast, bgLuma float64) {
	b := img.Bounds()
	n := 0
	for y := range b.Dy() {
		for x := range b.Dx() {
			c := img.RGBAAt(x, y)
			cast += (float64(c.B) - float64(c.R)) / 255
			if isBg(x, y) {
				bgLuma += (0.2126*float64(c.R) + 0.7152*float64(c.G) + 0.0722*float64(c.B)) / 255
				n++
			}
		}
	}
	return cast / float64(b.Dx()*b.Dy()), bgLuma / float64(n)
}

// tint blends every pixel of img towards c by t: (1−t)·p + t·c, rounded to 8 bits.
func tint(img *image.RGBA, c color.RGBA, t float64) *image.RGBA {
	out := image.NewRGBA(img.Bounds())
	for i := range img.Pix {
		v := [4]uint8{c.R, c.G, c.B, c.A}[i%4]
		out.Pix[i] = uint8(math.Round((1-t)*float64(img.Pix[i]) + t*float64(v)))
	}
	return out
}

// plain is a w×h image of one colour.
func plain(c color.RGBA, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func TestBgLuminance(t *testing.T) {
	for _, shape := range Shapes() {
		for _, c := range Colors() {
			for _, bg := range Backgrounds() {
				s := Scene{Shape: shape, Color: c, Size: "large", Background: bg, CX: 0.5, CY: 0.5}
				img := Render(s, 32, 32)
				want := map[string]float64{"white": 1, "black": 0}[bg]
				require.InDelta(t, want, Read(img).BgLuminance, 1e-12, "%s %s on %s", c, shape, bg)
				avg, err := BlockAverage(img)
				require.NoError(t, err)
				require.InDelta(t, want, Read(avg).BgLuminance, 1e-12, "block-averaged %s %s on %s", c, shape, bg)
			}
		}
	}

	// A lavender-tinted and a grey background behind a red circle: the mean luma of exactly the pixels
	// Render left as background, not of the whole image.
	s := Scene{Shape: "circle", Color: "red", Size: "large", Background: "white", CX: 0.5, CY: 0.5}
	white := Render(s, 32, 32)
	isBg := func(x, y int) bool { return white.RGBAAt(x, y) == color.RGBA{255, 255, 255, 255} }
	for _, bg := range []color.RGBA{{216, 204, 255, 255}, {128, 128, 128, 255}} {
		img := image.NewRGBA(white.Bounds())
		copy(img.Pix, white.Pix)
		for y := range 32 {
			for x := range 32 {
				if isBg(x, y) {
					img.SetRGBA(x, y, bg)
				}
			}
		}
		_, want := directTone(img, isBg)
		_, all := directTone(img, func(int, int) bool { return true })
		r := Read(img)
		require.False(t, r.Empty)
		require.InDelta(t, want, r.BgLuminance, 1e-12, "background %v", bg)
		require.Greater(t, math.Abs(all-want), 0.04, "the whole image's luma differs: the test can tell them apart")
	}

	// No shape: every pixel.
	require.InDelta(t, 0.5*0.2126+0.25*0.7152+1*0.0722, Read(plain(color.RGBA{0x80, 0x40, 0xff, 255}, 8, 8)).BgLuminance, 0.003)
	// The image fading to black reads lower at every step; from 0.8 on the red no longer stands out
	// (Empty) and every pixel counts.
	prev := math.Inf(1)
	for _, f := range []float64{0, 0.2, 0.4, 0.6, 0.8, 1} {
		img := tint(white, color.RGBA{0, 0, 0, 255}, f)
		r := Read(img)
		require.Equal(t, f >= 0.8, r.Empty, "faded by %g", f)
		region := isBg
		if r.Empty {
			region = func(int, int) bool { return true }
		}
		_, want := directTone(img, region)
		require.InDelta(t, want, r.BgLuminance, 1e-12, "faded by %g", f)
		require.Less(t, r.BgLuminance, prev)
		prev = r.BgLuminance
	}
}

func TestCast(t *testing.T) {
	for _, c := range []color.RGBA{{255, 255, 255, 255}, {0, 0, 0, 255}, {128, 128, 128, 255}} {
		r := Read(plain(c, 32, 32))
		require.True(t, r.Empty)
		require.Equal(t, 0.0, r.Cast, "untinted %v", c)
	}
	all := func(int, int) bool { return true }
	for _, color0 := range Colors() {
		s := Scene{Shape: "square", Color: color0, Size: "medium", Background: "white", CX: 0.5, CY: 0.5}
		img := Render(s, 32, 32)
		for _, tc := range []struct {
			name string
			c    color.RGBA
			sign float64 // +1: the cast rises with the tint, −1: falls
		}{
			{"blue", color.RGBA{0, 0, 255, 255}, 1}, {"cyan", color.RGBA{0, 255, 255, 255}, 1},
			{"red", color.RGBA{255, 0, 0, 255}, -1}, {"yellow", color.RGBA{255, 255, 0, 255}, -1},
		} {
			prev := math.NaN()
			for _, f := range []float64{0, 0.05, 0.1, 0.2, 0.4, 0.7} {
				tinted := tint(img, tc.c, f)
				want, _ := directTone(tinted, all)
				got := Read(tinted).Cast
				require.InDelta(t, want, got, 1e-12, "%s square, %s tint %g", color0, tc.name, f)
				if !math.IsNaN(prev) {
					require.Greater(t, tc.sign*(got-prev), 0.0, "%s square, %s tint %g: monotone", color0, tc.name, f)
				}
				prev = got
			}
		}
	}
	// A red shape on white pulls the cast down by its area: mean(B − R) = −area.
	r := Read(Render(Scene{Shape: "circle", Color: "red", Size: "large", Background: "white", CX: 0.5, CY: 0.5}, 32, 32))
	require.InDelta(t, -r.Area, r.Cast, 1e-12)
}
