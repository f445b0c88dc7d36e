package eval

import (
	"image"
	"math"
	"testing"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/fixtures/tinypipe"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/sd"
)

// constAdapter adds multiplier·value to the output of the UNet's conv_out (a stand-in for a slider
// LoRA): with multiplier 0 the UNet is unchanged.
type constAdapter struct {
	mult  *Node
	value float64
}

func (a *constAdapter) LinearDelta(ctx *model.Scope, x *Node, out int) *Node { return nil }

func (a *constAdapter) Conv2DDelta(ctx *model.Scope, x *Node, cfg nn.Conv2DConfig) *Node {
	if ctx.Scope() != "/"+sd.ScopeUNet+"/conv_out" {
		return nil
	}
	b, h, w := x.Shape().Dim(0), x.Shape().Dim(2), x.Shape().Dim(3) // conv_out keeps the size
	m := MulScalar(Reshape(a.mult, b, 1, 1, 1), a.value)
	return BroadcastToDims(ConvertDType(m, x.DType()), b, cfg.Out, h, w)
}

// tinyPipeline loads the first SD1.x-shaped fixture pipeline with the constant adapter and returns
// it with an image side of about 16 pixels that it accepts.
func tinyPipeline(t *testing.T) (*sd.Pipeline, int) {
	p, err := sd.LoadPipeline(tinypipe.First(t, false).Dir, sd.PipelineOptions{
		Backend: testutil.Backend(t), Tokenizer: fixtures.BPEPath(fixtures.Root(t))})
	require.NoError(t, err)
	t.Cleanup(p.Close)
	p.SetAdapter(func(m *Node) nn.Adapter { return &constAdapter{mult: m, value: 0.5} })
	unit := p.LatentScale() * p.UNet.Config.DownsampleFactor()
	return p, unit * max(1, (16+unit-1)/unit)
}

// brightness is the mean of the RGB values in [0, 1].
func brightness(img image.Image) float64 {
	b := img.Bounds()
	sum := 0.0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			sum += float64(r+g+bl) / 3 / 0xffff
		}
	}
	return sum / float64(b.Dx()*b.Dy())
}

// brightnessReader reads the mean brightness as the area and a coarse brightness class as colour.
func brightnessReader(img image.Image) Readout {
	v := brightness(img)
	r := Readout{Area: v, Background: "white", Shape: "circle", Size: "medium", Color: "dark"}
	if v > 0.5 {
		r.Color = "light"
	}
	return r
}

// meanAbsDiff is the mean absolute difference of the RGB values in [0, 1].
func meanAbsDiff(a, b image.Image) float64 {
	sum := 0.0
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			sum += math.Abs(float64(r1)-float64(r2)) + math.Abs(float64(g1)-float64(g2)) + math.Abs(float64(b1)-float64(b2))
		}
	}
	return sum / 3 / 0xffff / float64(a.Bounds().Dx()*a.Bounds().Dy())
}

func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}

func TestEvalSlider(t *testing.T) {
	p, size := tinyPipeline(t)
	prompts := []string{"a red circle", "a large blue square"}
	seeds := []uint64{3, 7}
	got := map[uint64][][]image.Image{}
	var order []uint64
	var progress [][2]int
	req := SliderRequest{
		Prompts: prompts, Seeds: seeds, Target: "area",
		Sampling: Sampling{Steps: 2, GuidanceScale: 2, Width: size, Height: size},
		Reader:   brightnessReader,
		OnRows: func(seed uint64, rows [][]image.Image) {
			order = append(order, seed)
			got[seed] = rows
		},
		Progress: func(done, total int) { progress = append(progress, [2]int{done, total}) },
	}
	r, err := EvalSlider(p, req)
	require.NoError(t, err)
	t.Logf("brightness slider on the tiny pipeline:\n%s", r.Table())
	require.Equal(t, seeds, order)
	require.Equal(t, [][2]int{{0, 20}, {10, 20}, {20, 20}}, progress)
	require.Equal(t, 4, r.Samples)
	require.Equal(t, 20, r.Images)
	require.Equal(t, DefaultStrengths, r.Strengths)

	// The report is the one computed from the images read in order: series = (seed, prompt), their
	// read-outs by strength.
	var series []Series
	for _, seed := range seeds {
		rows := got[seed]
		require.Len(t, rows, len(prompts))
		for i, row := range rows {
			require.Len(t, row, len(DefaultStrengths))
			s := Series{Prompt: prompts[i], Seed: seed, Strengths: DefaultStrengths}
			for _, img := range row {
				require.Equal(t, image.Rect(0, 0, size, size), img.Bounds())
				s.Readouts = append(s.Readouts, brightnessReader(img))
			}
			series = append(series, s)
		}
	}
	want, err := ComputeSlider("area", nil, series)
	require.NoError(t, err)
	require.Equal(t, want, r)

	// Image (prompt i, strength j) of the second seed is the one sampled with that seed by a call
	// with the strengths reversed (up to float rounding, the batch being in another order; nearer
	// to it than to any other image of the grid): the columns are the strengths in order and share
	// the prompt's noise. Strengths and seeds change the images.
	n := len(DefaultStrengths)
	reversed := make([]float64, n)
	for j, s := range DefaultStrengths {
		reversed[n-1-j] = s
	}
	alone, err := p.SampleRows(sd.SampleRequest{Prompts: prompts, Seed: seeds[1], Strengths: reversed,
		Steps: 2, GuidanceScale: 2, Width: size, Height: size})
	require.NoError(t, err)
	for i := range prompts {
		for j, s := range DefaultStrengths {
			want := alone[i][n-1-j]
			d := meanAbsDiff(want, got[seeds[1]][i][j])
			require.Less(t, d, 0.01, "prompt %d strength %g", i, s)
			for _, seed := range seeds {
				for k := range prompts {
					for l := range DefaultStrengths {
						if seed != seeds[1] || k != i || l != j {
							require.Greater(t, meanAbsDiff(want, got[seed][k][l]), d, "prompt %d strength %g vs seed %d (%d, %d)", i, s, seed, k, l)
						}
					}
				}
			}
		}
	}
	for _, seed := range seeds {
		for i := range prompts {
			require.False(t, samePixels(got[seed][i][0], got[seed][i][2]), "strength −2 vs 0")
			require.NotEqual(t, brightness(got[seed][i][0]), brightness(got[seed][i][4]), "strength −2 vs 2")
		}
	}
	require.False(t, samePixels(got[3][0][2], got[7][0][2]), "seeds")

	_, err = EvalSlider(p, SliderRequest{Prompts: prompts, Target: "weight", Reader: brightnessReader})
	require.ErrorContains(t, err, "weight")
	_, err = EvalSlider(p, SliderRequest{Prompts: prompts, Target: "area", Strengths: []float64{1, 2}, Reader: brightnessReader})
	require.ErrorContains(t, err, "include 0")
	_, err = EvalSlider(p, SliderRequest{Target: "area"})
	require.ErrorContains(t, err, "no prompts")
}

func TestEvalErase(t *testing.T) {
	p, size := tinyPipeline(t)
	prompts, controls := []string{"a red circle"}, []string{"a blue circle"}
	all := append(append([]string(nil), prompts...), controls...)
	const seed = 5
	// The images without the adapter (column 0 of the same grid sampled directly): the reader calls
	// exactly these "red".
	before, err := p.SampleRows(sd.SampleRequest{Prompts: all, Seed: seed, Strengths: []float64{0, 1},
		Steps: 2, GuidanceScale: 2, Width: size, Height: size})
	require.NoError(t, err)
	read := func(img image.Image) Readout {
		r := brightnessReader(img)
		r.Color = "blue"
		for _, row := range before {
			if samePixels(row[0], img) {
				r.Color = "red"
			}
		}
		return r
	}
	var rows [][]image.Image
	r, err := EvalErase(p, EraseRequest{
		Prompts: prompts, Controls: controls, Seeds: []uint64{seed}, Value: "red",
		Sampling: Sampling{Steps: 2, GuidanceScale: 2, Width: size, Height: size}, Reader: read,
		OnRows: func(_ uint64, r [][]image.Image) { rows = r },
	})
	require.NoError(t, err)
	t.Logf("erase on the tiny pipeline:\n%s", r.Table())
	require.Len(t, rows, 2)
	for i, row := range rows {
		require.Len(t, row, 2)
		require.True(t, samePixels(before[i][0], row[0]), "row %d: column 0 is strength 0 with the prompt's noise", i)
	}
	require.Equal(t, 1.0, r.ErasedRateBefore)
	require.Equal(t, 0.0, r.ErasedRateAfter, "strength 1 changes every image")
	require.Equal(t, 1.0, r.ControlChange)
	require.Equal(t, 2, r.Samples)
	require.Equal(t, 1, r.TargetSamples)
	require.Equal(t, 1, r.ControlSamples)
	require.Equal(t, "color", r.Attribute)
	require.Equal(t, 1.0, r.Strength)

	_, err = EvalErase(p, EraseRequest{Prompts: prompts, Value: "red", Reader: read})
	require.ErrorContains(t, err, "control")
	_, err = EvalErase(p, EraseRequest{Prompts: prompts, Controls: controls, Reader: read})
	require.ErrorContains(t, err, "value")
	_, err = EvalErase(p, EraseRequest{Prompts: prompts, Controls: controls, Value: "purple", Reader: read})
	require.ErrorContains(t, err, `value: "purple" is not a color of the toy world`)
}
