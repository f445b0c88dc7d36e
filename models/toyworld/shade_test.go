package toyworld

import (
	"image/color"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSampleShaded: with maxShade 0 it is Sample, rng state included; otherwise the shade is uniform
// below maxShade, toward each of the three other colours.
func TestSampleShaded(t *testing.T) {
	r1, r2 := rand.New(rand.NewPCG(5, 6)), rand.New(rand.NewPCG(5, 6))
	for range 50 {
		require.Equal(t, Sample(r1), SampleShaded(r2, 0))
	}
	require.Equal(t, r1.Uint64(), r2.Uint64(), "the same values of rng consumed")

	const n, maxShade = 3000, MaxShade
	rng := rand.New(rand.NewPCG(1, 2))
	toward := map[[2]string]int{}
	var top float64
	for range n {
		s := SampleShaded(rng, maxShade)
		require.NoError(t, s.Validate())
		require.GreaterOrEqual(t, s.Shade, 0.0)
		require.Less(t, s.Shade, maxShade)
		require.NotEqual(t, s.Color, s.ShadeToward)
		toward[[2]string{s.Color, s.ShadeToward}]++
		top = max(top, s.Shade)
	}
	require.Len(t, toward, 12, "every colour shaded toward each of the three others")
	for pair, k := range toward {
		require.InDelta(t, n/12.0, float64(k), 0.25*n/12, "%v", pair)
	}
	require.Greater(t, top, 0.99*MaxShade)

	_, _, s1 := BatchShaded(rand.New(rand.NewPCG(9, 9)), 5, 32, 32, 0)
	_, _, s2 := Batch(rand.New(rand.NewPCG(9, 9)), 5, 32, 32)
	require.Equal(t, s2, s1)
}

// TestRenderShaded: the shape is painted in the mix (1 − Shade)·Color + Shade·ShadeToward, the
// background is untouched, and every read-out keeps its class up to MaxShade.
func TestRenderShaded(t *testing.T) {
	s := Scene{Shape: "square", Color: "red", Size: "large", Background: "white", CX: 0.5, CY: 0.5, ShadeToward: "blue", Shade: 0.25}
	img := Render(s, 32, 32)
	require.Equal(t, [4]uint8{191, 0, 64, 255}, rgba(img.RGBAAt(16, 16)), "0.75·red + 0.25·blue, rounded")
	require.Equal(t, [4]uint8{255, 255, 255, 255}, rgba(img.RGBAAt(0, 0)))

	// MaxShade's margin: at 0.3 red shaded toward green on black already reads as yellow.
	// (Render refuses the shade, so the shape's pixels are recoloured by hand.)
	far := Scene{Shape: "square", Color: "red", Size: "large", Background: "black", CX: 0.5, CY: 0.5}
	img = Render(far, 32, 32)
	far.ShadeToward, far.Shade = "green", 0.3
	require.Error(t, far.Validate())
	for y := range 32 {
		for x := range 32 {
			if img.RGBAAt(x, y) == palette["red"] {
				img.SetRGBA(x, y, shadeColor(far))
			}
		}
	}
	require.Equal(t, "yellow", Read(img).Color)

	const n = 600
	rng := rand.New(rand.NewPCG(11, 12))
	for i := range n {
		s := SampleShaded(rng, MaxShade)
		img := Render(s, 32, 32)
		avg, err := BlockAverage(img)
		require.NoError(t, err)
		for _, r := range []Readout{Read(img), Read(avg)} {
			require.Equal(t, []string{s.Color, s.Size, s.Background}, []string{r.Color, r.Size, r.Background}, "scene %d: %+v", i, s)
		}
		// The shade moves the colour read-outs continuously: blue_minus_red (B − R) of a red shape
		// shaded toward blue is −1 + 2·Shade up to 8-bit rounding.
		if s.Color == "red" && s.ShadeToward == "blue" {
			r := Read(img)
			require.InDelta(t, -1+2*s.Shade, r.RGB[2]-r.RGB[0], 2.0/255)
		}
	}
}

func TestSceneShadeErrors(t *testing.T) {
	base := Scene{Shape: "circle", Color: "green", Size: "small", Background: "black", CX: 0.5, CY: 0.5}
	for _, bad := range []struct {
		toward string
		shade  float64
		want   string
	}{
		{"blue", 0.26, "shade 0.26 is not in [0, 0.25]"},
		{"blue", -0.1, "shade -0.1"},
		{"blue", math.NaN(), "shade NaN"},
		{"green", 0.2, `shade toward "green"`},
		{"purple", 0.2, `shade toward "purple"`},
		{"", 0.2, `shade toward ""`},
	} {
		s := base
		s.ShadeToward, s.Shade = bad.toward, bad.shade
		err := s.Validate()
		require.Error(t, err, "%+v", bad)
		require.Contains(t, err.Error(), bad.want)
	}
	s := base
	s.ShadeToward, s.Shade = "yellow", MaxShade
	require.NoError(t, s.Validate())
	require.True(t, slices.Contains(Colors(), s.ShadeToward))
}

func rgba(c color.RGBA) [4]uint8 { return [4]uint8{c.R, c.G, c.B, c.A} }
