package eval

import (
	"image"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/models/toyworld"
)

// lerpImages blends two images of the same size: (1−t)·a + t·b per channel.
func lerpImages(a, b *image.RGBA, t float64) *image.RGBA {
	out := image.NewRGBA(a.Bounds())
	for i := range a.Pix {
		out.Pix[i] = uint8((1-t)*float64(a.Pix[i]) + t*float64(b.Pix[i]) + 0.5)
	}
	return out
}

// The reports on the toy world's real read-outs of rendered series: a shape growing with the
// strength (size slider) and a red shape blending into blue (colour slider).
func TestToyWorldSeries(t *testing.T) {
	const w, h = 32, 32
	var sizeSeries, colorSeries []Series
	for _, shape := range toyworld.Shapes() {
		for _, bg := range toyworld.Backgrounds() {
			prompt := shape + " on " + bg
			// Size: small, small, medium, large, large over −2…2 (the reader's classes; Area rises
			// with each class, equal within one).
			s := Series{Prompt: prompt, Strengths: DefaultStrengths}
			for _, size := range []string{"small", "small", "medium", "large", "large"} {
				img := toyworld.Render(toyworld.Scene{Shape: shape, Color: "green", Size: size, Background: bg, CX: 0.5, CY: 0.5}, w, h)
				s.Readouts = append(s.Readouts, defaultReader(img))
			}
			sizeSeries = append(sizeSeries, s)

			// Colour: red → blue by blending the two renders, the same shape.
			scene := toyworld.Scene{Shape: shape, Color: "red", Size: "large", Background: bg, CX: 0.5, CY: 0.5}
			red := toyworld.Render(scene, w, h)
			scene.Color = "blue"
			blue := toyworld.Render(scene, w, h)
			c := Series{Prompt: prompt, Strengths: DefaultStrengths}
			for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
				c.Readouts = append(c.Readouts, defaultReader(lerpImages(red, blue, f)))
			}
			colorSeries = append(colorSeries, c)
		}
	}
	r, err := ComputeSlider("area", nil, sizeSeries)
	require.NoError(t, err)
	t.Logf("size series:\n%s", r.Table())
	require.InDelta(t, 0.9486832980505138, r.EffectSpearman, 1e-12, "ρ of [1.5, 1.5, 3, 4.5, 4.5] against 1…5 = 3/√10")
	require.Greater(t, r.EffectSlope, 0.0)
	require.Equal(t, map[string]float64{"background": 0, "color": 0, "shape": 0}, r.OffTarget)

	r, err = ComputeSlider("blueness", nil, colorSeries)
	require.NoError(t, err)
	t.Logf("colour series:\n%s", r.Table())
	require.Equal(t, 1.0, r.EffectSpearman, "blueness rises from red through the blend to blue")
	require.Equal(t, map[string]float64{"background": 0, "shape": 0, "size": 0}, r.OffTarget)
	require.InDelta(t, 1.0/3, *r.TargetMean[0], 0.02, "red")
	require.InDelta(t, 1.0, *r.TargetMean[4], 0.02, "blue")

	r, err = ComputeSlider("blue_minus_red", nil, colorSeries)
	require.NoError(t, err)
	require.Equal(t, 1.0, r.EffectSpearman, "B − R rises along the red → blue blend")
	require.Less(t, *r.TargetMean[0], -0.8, "red")
	require.Greater(t, *r.TargetMean[4], 0.8, "blue")
}

// The tone read-outs on rendered series: a background fading from black to white behind the same
// shape (a background slider) and a scene tinted more and more blue (a cool style shift).
func TestToyWorldToneSeries(t *testing.T) {
	const w, h = 32, 32
	blue := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range blue.Pix {
		blue.Pix[i] = [4]uint8{0, 0, 255, 255}[i%4]
	}
	var bgSeries, castSeries []Series
	for _, shape := range toyworld.Shapes() {
		for _, c := range toyworld.Colors() {
			scene := toyworld.Scene{Shape: shape, Color: c, Size: "medium", Background: "black", CX: 0.5, CY: 0.5}
			black := toyworld.Render(scene, w, h)
			scene.Background = "white"
			white := toyworld.Render(scene, w, h)
			b := Series{Prompt: c + " " + shape, Strengths: DefaultStrengths}
			k := Series{Prompt: c + " " + shape, Strengths: DefaultStrengths}
			for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
				b.Readouts = append(b.Readouts, defaultReader(lerpImages(black, white, f)))
				k.Readouts = append(k.Readouts, defaultReader(lerpImages(white, blue, f*0.4)))
			}
			bgSeries, castSeries = append(bgSeries, b), append(castSeries, k)
		}
	}
	r, err := ComputeSlider("background_luminance", nil, bgSeries)
	require.NoError(t, err)
	t.Logf("background series:\n%s", r.Table())
	require.Equal(t, 1.0, r.EffectSpearman)
	require.Equal(t, map[string]float64{"color": 0, "shape": 0, "size": 0}, r.OffTarget)
	require.InDelta(t, 0.0, *r.TargetMean[0], 1e-12, "black")
	require.InDelta(t, 0.5, *r.TargetMean[2], 0.003, "mid-grey")
	require.InDelta(t, 1.0, *r.TargetMean[4], 1e-12, "white")
	require.InDelta(t, 0.0, *r.OffTargetAreaChange, 1e-12, "the shape is the same in every image")

	r, err = ComputeSlider("color_cast", []string{"background", "shape", "size"}, castSeries)
	require.NoError(t, err)
	t.Logf("blue-tint series:\n%s", r.Table())
	require.Equal(t, 1.0, r.EffectSpearman)
	require.Equal(t, map[string]float64{"background": 0, "shape": 0, "size": 0}, r.OffTarget)
	require.Less(t, *r.OffTargetAreaChange, 0.01, "a uniform tint keeps the foreground weights")
}
