package toyworld

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// sampleMatching draws scenes with Sample until one has every class the prompt names.
func sampleMatching(rng *rand.Rand, prompt string) Scene {
	want := Parse(prompt)
	for {
		s := Sample(rng)
		ok := true
		for attr, class := range want {
			ok = ok && s.Attr(attr) == class
		}
		if ok {
			return s
		}
	}
}

// painted is the foreground of a scene as Render paints it: true where the pixel is not the
// background colour.
func painted(s Scene, w, h int) []bool {
	img := Render(s, w, h)
	bg, _ := BackgroundColor(s.Background)
	out := make([]bool, w*h)
	for y := range h {
		for x := range w {
			out[y*w+x] = img.RGBAAt(x, y) != bg
		}
	}
	return out
}

// sweptUnion is the union of the painted foregrounds of every shape and size the prompt allows,
// with the box centre on a (k+1)×(k+1) grid over the jitter range (its corners included): a direct
// lower bound of the region RegionMask must cover.
func sweptUnion(prompt string, w, h, k int) []bool {
	attrs := Parse(prompt)
	out := make([]bool, w*h)
	for _, shape := range classesOrAll(attrs, AttrShape) {
		for _, size := range classesOrAll(attrs, AttrSize) {
			for i := range k + 1 {
				for j := range k + 1 {
					jx, jy := Jitter*(2*float64(i)/float64(k)-1), Jitter*(2*float64(j)/float64(k)-1)
					s := Scene{Shape: shape, Color: "red", Size: size, Background: "white",
						CX: 0.5 + jx, CY: 0.5 + jy + centroidDrop(shape, size)}
					for p, on := range painted(s, w, h) {
						out[p] = out[p] || on
					}
				}
			}
		}
	}
	return out
}

func maskSum(m []float32) float64 {
	s := 0.0
	for _, v := range m {
		s += float64(v)
	}
	return s
}

var regionPrompts = []string{"a small circle", "a large red square on a black background", "a triangle",
	"a shape", "", "a big disc", "medium box on white", "an image of a tiny triangle in blue"}

// Every pixel a random scene matching the prompt paints lies in the prompt's foreground mask; the
// background mask is its complement; and the mask is tight: on these canvases it is exactly the
// union of the shapes swept over a 17×17 grid of centres spanning the jitter range.
func TestRegionMaskCoversScenes(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 1))
	for _, wh := range [][2]int{{32, 32}, {48, 32}, {31, 33}, {64, 64}} {
		w, h := wh[0], wh[1]
		for _, prompt := range regionPrompts {
			name := fmt.Sprintf("%q on %d×%d", prompt, w, h)
			fg, err := RegionMask(prompt, RegionForeground, w, h)
			require.NoError(t, err, name)
			bg, err := RegionMask(prompt, RegionBackground, w, h)
			require.NoError(t, err, name)
			require.Len(t, fg, w*h, name)
			for i := range fg {
				require.Contains(t, []float32{0, 1}, fg[i], name)
				require.Equal(t, 1-fg[i], bg[i], name)
			}
			for range 100 {
				s := sampleMatching(rng, prompt)
				for p, on := range painted(s, w, h) {
					if on {
						require.Equal(t, float32(1), fg[p], "%s: %+v paints pixel (%d, %d)", name, s, p%w, p/w)
					}
				}
			}
			union := sweptUnion(prompt, w, h, 16)
			extra, inUnion := 0, 0
			for p, on := range union {
				if on {
					inUnion++
					require.Equal(t, float32(1), fg[p], "%s: swept pixel (%d, %d)", name, p%w, p/w)
				} else if fg[p] == 1 {
					extra++
				}
			}
			t.Logf("%s: mask %v px, swept union %d px", name, maskSum(fg), inUnion)
			require.Zero(t, extra, "%s: the mask adds %d pixels to the swept union", name, extra)
		}
	}
}

// Masks grow with the size; "a shape" covers the most, exactly the union of every (shape, size)
// mask; colour and background words do not move the shape.
func TestRegionMaskSizes(t *testing.T) {
	mask := func(prompt string) []float32 {
		m, err := RegionMask(prompt, RegionForeground, 32, 32)
		require.NoError(t, err)
		return m
	}
	small, medium, large := maskSum(mask("a small circle")), maskSum(mask("a medium circle")), maskSum(mask("a large circle"))
	require.Less(t, small, medium)
	require.Less(t, medium, large)
	all := mask("a shape")
	union := make([]float32, len(all))
	for _, shape := range Shapes() {
		m := mask("a " + shape)
		require.Less(t, maskSum(m), maskSum(all), shape)
		for _, size := range Sizes() {
			for p, v := range mask(Prompt(shape, "", size, "")) {
				union[p] = max(union[p], v)
			}
		}
	}
	require.Equal(t, union, all)
	require.Equal(t, mask("a large circle"), mask("a big red disc on a black background"))
	require.Equal(t, all, mask(""))
}

func TestRegionMaskErrors(t *testing.T) {
	_, err := RegionMask("a red circle", "middle", 32, 32)
	require.ErrorContains(t, err, `region "middle"`)
	require.ErrorContains(t, err, `"a red circle"`)
	_, err = RegionMask("a red circle", RegionForeground, 0, 32)
	require.ErrorContains(t, err, "0×32")
	_, err = RegionMask("a small cirle", RegionBackground, 32, 32)
	require.ErrorContains(t, err, `"a small cirle"`)
	require.ErrorContains(t, err, `word "cirle"`)
}

func TestConvexHull(t *testing.T) {
	// A square's corners with an inside point and a point on an edge: the four corners,
	// counter-clockwise from the lowest x.
	hull := convexHull([][2]float64{{1, 1}, {0, 0}, {2, 0}, {0, 2}, {2, 2}, {1, 0}})
	require.Equal(t, [][2]float64{{0, 0}, {2, 0}, {2, 2}, {0, 2}}, hull)
	r := reach{hull: hull}
	require.True(t, r.contains(1, 1))
	require.True(t, r.contains(2, 1), "on an edge")
	require.False(t, r.contains(2.001, 1))
}
