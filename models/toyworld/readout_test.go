package toyworld

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// addNoise returns img plus Gaussian noise of std sigma (in [0, 1] units) per channel, clamped and
// rounded to 8 bits.
func addNoise(img *image.RGBA, sigma float64, rng *rand.Rand) *image.RGBA {
	out := image.NewRGBA(img.Bounds())
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := img.RGBAAt(x, y)
			var v [3]uint8
			for k, u := range [3]uint8{c.R, c.G, c.B} {
				f := float64(u)/255 + sigma*rng.NormFloat64()
				v[k] = uint8(math.Round(255 * max(0, min(1, f))))
			}
			out.SetRGBA(x, y, color.RGBA{v[0], v[1], v[2], 255})
		}
	}
	return out
}

// boxBlur returns img convolved with a 3×3 box (edges clamped): a soft-edged, model-like image.
func boxBlur(img *image.RGBA) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(b)
	for y := range b.Dy() {
		for x := range b.Dx() {
			var s [3]int
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					c := img.RGBAAt(b.Min.X+min(max(x+dx, 0), b.Dx()-1), b.Min.Y+min(max(y+dy, 0), b.Dy()-1))
					s[0], s[1], s[2] = s[0]+int(c.R), s[1]+int(c.G), s[2]+int(c.B)
				}
			}
			out.SetRGBA(b.Min.X+x, b.Min.Y+y, color.RGBA{uint8((s[0] + 4) / 9), uint8((s[1] + 4) / 9), uint8((s[2] + 4) / 9), 255})
		}
	}
	return out
}

// accuracy counts correct read-outs per attribute over a set of scenes.
type accuracy struct {
	n, shape, color, size, bg, centroid int
	maxCentroidErr                      float64
	confident                           int
}

func (a *accuracy) add(t *testing.T, s Scene, r Readout, w, h int) {
	a.n++
	for _, c := range []struct {
		got, want string
		count     *int
	}{{r.Shape, s.Shape, &a.shape}, {r.Color, s.Color, &a.color}, {r.Size, s.Size, &a.size}, {r.Background, s.Background, &a.bg}} {
		if c.got == c.want {
			*c.count++
		}
	}
	e := math.Hypot((r.CX-s.CX)*float64(w), (r.CY-s.CY)*float64(h))
	a.maxCentroidErr = max(a.maxCentroidErr, e)
	if e <= 1 {
		a.centroid++
	}
	if r.Confident {
		a.confident++
	}
}

func (a *accuracy) log(t *testing.T, name string) {
	pct := func(k int) float64 { return 100 * float64(k) / float64(a.n) }
	t.Logf("%-14s n=%d shape %.1f%% color %.1f%% size %.1f%% background %.1f%% centroid≤1px %.1f%% (max err %.2f px) confident %.1f%%",
		name, a.n, pct(a.shape), pct(a.color), pct(a.size), pct(a.bg), pct(a.centroid), a.maxCentroidErr, pct(a.confident))
}

func TestReadAccuracy(t *testing.T) {
	const n, w, h = 1000, 32, 32
	rng := rand.New(rand.NewPCG(7, 7))
	noiseRng := rand.New(rand.NewPCG(8, 8))
	var clean, block, noisy, blockNoisy, blurred accuracy
	for range n {
		s := Sample(rng)
		img := Render(s, w, h)
		avg, err := BlockAverage(img)
		require.NoError(t, err)
		clean.add(t, s, Read(img), w, h)
		block.add(t, s, Read(avg), w, h)
		noisy.add(t, s, Read(addNoise(img, 0.05, noiseRng)), w, h)
		blockNoisy.add(t, s, Read(addNoise(avg, 0.05, noiseRng)), w, h)
		blurred.add(t, s, Read(boxBlur(avg)), w, h)
	}
	clean.log(t, "clean")
	block.log(t, "block-averaged")
	noisy.log(t, "noise σ=0.05")
	blockNoisy.log(t, "block+noise")
	blurred.log(t, "block+3×3 blur")
	for _, a := range []accuracy{clean, block} {
		require.Equal(t, []int{n, n, n, n, n}, []int{a.shape, a.color, a.size, a.bg, a.centroid})
	}
	require.GreaterOrEqual(t, noisy.shape, n*95/100)
	require.GreaterOrEqual(t, blockNoisy.shape, n*95/100)
	require.GreaterOrEqual(t, blurred.shape, n*95/100)
	for _, a := range []accuracy{noisy, blockNoisy, blurred} {
		require.Equal(t, []int{n, n, n}, []int{a.color, a.size, a.bg})
	}
	require.GreaterOrEqual(t, clean.confident, n*99/100)
}

func TestReadOtherCanvases(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, wh := range [][2]int{{64, 64}, {48, 32}, {31, 33}} {
		w, h := wh[0], wh[1]
		var a accuracy
		for range 100 {
			s := Sample(rng)
			a.add(t, s, Read(Render(s, w, h)), w, h)
		}
		a.log(t, fmt.Sprintf("canvas %dx%d", w, h))
		require.Equal(t, []int{100, 100, 100, 100}, []int{a.shape, a.color, a.size, a.bg}, "canvas %dx%d", w, h)
	}
}

func TestReadEmptyAndHue(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	r := Read(img)
	require.True(t, r.Empty)
	require.Equal(t, "white", r.Background)
	require.Equal(t, "", r.Shape)
	require.False(t, r.Confident)

	want := map[string]float64{"red": 0, "yellow": 60, "green": 120, "blue": 240}
	for _, c := range Colors() {
		for _, bg := range Backgrounds() {
			r := Read(Render(Scene{Shape: "circle", Color: c, Size: "medium", Background: bg, CX: 0.5, CY: 0.5}, 32, 32))
			require.InDelta(t, want[c], r.Hue, 1e-6, "%s on %s", c, bg)
			require.InDelta(t, NominalArea("medium"), r.Area, 0.01)
		}
	}

	// A red washed out halfway towards a white background still reads as red.
	s := Scene{Shape: "square", Color: "red", Size: "large", Background: "white", CX: 0.5, CY: 0.5}
	x, h, w, err := ImagesToCHW([]image.Image{Render(s, 32, 32)})
	require.NoError(t, err)
	for i := 32 * 32; i < len(x); i++ { // green and blue channels: 0 → 0.5 (in [0, 1])
		x[i] = max(x[i], 0)
	}
	r, err = ReadCHW(x, h, w)
	require.NoError(t, err)
	require.Equal(t, "red", r.Color)
	require.Equal(t, "square", r.Shape)

	_, err = ReadCHW(x[:10], h, w)
	require.Error(t, err)
	rs, err := ReadBatch(append(slices.Clone(x), x...), 2, h, w)
	require.NoError(t, err)
	require.Equal(t, []Readout{r, r}, rs)
	_, err = ReadBatch(x, 2, h, w)
	require.Error(t, err)
}

func TestSizeThresholds(t *testing.T) {
	th := SizeThresholds()
	t.Logf("nominal areas small %.4f medium %.4f large %.4f; thresholds %.4f %.4f",
		NominalArea("small"), NominalArea("medium"), NominalArea("large"), th[0], th[1])
	require.Equal(t, "small", SizeOf(NominalArea("small")))
	require.Equal(t, "medium", SizeOf(NominalArea("medium")))
	require.Equal(t, "large", SizeOf(NominalArea("large")))
}
