package sd

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/models/nn"
)

// constAdapter adds multiplier·value to the output of the UNet's conv_out (a stand-in for a slider
// LoRA): with multiplier 0 the UNet is unchanged.
type constAdapter struct {
	mult  *Node
	value float64
	calls *int
}

func (a *constAdapter) LinearDelta(ctx *model.Scope, x *Node, out int) *Node { return nil }

func (a *constAdapter) Conv2DDelta(ctx *model.Scope, x *Node, cfg nn.Conv2DConfig) *Node {
	if ctx.Scope() != "/"+ScopeUNet+"/conv_out" {
		return nil
	}
	*a.calls++
	b, h, w := x.Shape().Dim(0), x.Shape().Dim(2), x.Shape().Dim(3) // conv_out keeps the size
	m := MulScalar(Reshape(a.mult, b, 1, 1, 1), a.value)
	return BroadcastToDims(ConvertDType(m, x.DType()), b, cfg.Out, h, w)
}

func pixels(t *testing.T, img image.Image) []uint8 {
	t.Helper()
	n, ok := img.(*image.NRGBA)
	require.True(t, ok)
	return n.Pix
}

// samePixels: bit-identical images (same request, same graph shapes).
func samePixels(t *testing.T, a, b image.Image) bool {
	return string(pixels(t, a)) == string(pixels(t, b))
}

// closePixels: images computed with other batch shapes may differ by float rounding: at most one
// level in at most 1% of the values.
func closePixels(t *testing.T, a, b image.Image) bool {
	pa, pb := pixels(t, a), pixels(t, b)
	if len(pa) != len(pb) {
		return false
	}
	n := 0
	for i := range pa {
		d := int(pa[i]) - int(pb[i])
		if d > 1 || d < -1 {
			return false
		}
		if d != 0 {
			n++
		}
	}
	return n*100 <= len(pa)
}

// meanAbsDiff is the mean absolute difference of the RGBA values, in levels.
func meanAbsDiff(t *testing.T, a, b image.Image) float64 {
	pa, pb := pixels(t, a), pixels(t, b)
	sum := 0
	for i := range pa {
		d := int(pa[i]) - int(pb[i])
		sum += max(d, -d)
	}
	return float64(sum) / float64(len(pa))
}

// differentPixels: a real change, a mean absolute difference of at least one level.
func differentPixels(t *testing.T, a, b image.Image) bool { return meanAbsDiff(t, a, b) >= 1 }

// testSize is a small latent size the UNet accepts (half its sample_size, a multiple of its
// downsampling) and the image size it gives (× the VAE factor).
func testSize(p *Pipeline) (lh, lw, h, w int) {
	ss := p.UNet.Config.SampleSize
	lh, lw = ss.At(0), ss.At(0)
	if ss.IsList && len(ss.Values) > 1 {
		lw = ss.Values[1]
	}
	d := p.UNet.Config.DownsampleFactor()
	half := func(n int) int { return max(d, n/2/d*d) }
	lh, lw = half(lh), half(lw)
	f := p.VAE.Config.DownsampleFactor()
	return lh, lw, lh * f, lw * f
}

func TestSample(t *testing.T) {
	for _, tp := range composePipelines(t, "") {
		if tp.sdxl {
			continue
		}
		t.Run(tp.name(), func(t *testing.T) { testSampleSD15(t, tp) })
	}
}

func testSampleSD15(t *testing.T, tp *tinyPipeline) {
	p := tp.load(t, PipelineOptions{})
	lh, lw, h, w := testSize(p)
	calls := 0
	p.SetAdapter(func(m *Node) nn.Adapter { return &constAdapter{mult: m, value: 0.5, calls: &calls} })
	const steps = 3
	prompts := []string{"a photo of a cat", "a red car"}
	strengths := []float64{0, 1, -2}
	req := SampleRequest{Prompts: prompts, NegativePrompt: "blurry", Width: w, Height: h, Steps: steps,
		GuidanceScale: 5, Seed: 7, Strengths: strengths}

	imgs, err := p.Sample(req)
	require.NoError(t, err)
	require.Len(t, imgs, len(prompts)*len(strengths))
	for _, img := range imgs {
		require.Equal(t, image.Rect(0, 0, w, h), img.Bounds(), "image = latent %dx%d × vae factor", lh, lw)
	}
	st := p.Stats()
	require.Equal(t, 1, st.StepGraphs, "the step graph is compiled once")
	require.Equal(t, steps, st.StepRuns)
	require.Equal(t, 1, st.DecodeGraphs)
	require.Equal(t, 1, calls, "the adapter is built into the one step graph")

	// Strengths change the images; prompts too.
	at := func(imgs []image.Image, prompt, strength int) image.Image {
		return imgs[prompt*len(strengths)+strength]
	}
	for i := range prompts {
		require.True(t, differentPixels(t, at(imgs, i, 0), at(imgs, i, 1)), "strength 0 vs 1")
		require.True(t, differentPixels(t, at(imgs, i, 1), at(imgs, i, 2)), "strength 1 vs -2")
	}
	require.True(t, differentPixels(t, at(imgs, 0, 0), at(imgs, 1, 0)), "prompts")

	// The same request again, as a grid (rows = prompts, columns = strengths): the same pixels,
	// no new graph.
	gridPath := filepath.Join(t.TempDir(), "grid.png")
	require.NoError(t, p.SaveGrid(gridPath, req))
	f, err := os.Open(gridPath)
	require.NoError(t, err)
	grid, err := png.Decode(f)
	require.NoError(t, f.Close())
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, len(strengths)*w, len(prompts)*h), grid.Bounds())
	for i := range prompts {
		for j := range strengths {
			img := at(imgs, i, j)
			for y := range h {
				for x := range w {
					require.Equal(t, color.NRGBAModel.Convert(img.At(x, y)), color.NRGBAModel.Convert(grid.At(j*w+x, i*h+y)),
						"grid cell (%d, %d) pixel (%d, %d)", i, j, x, y)
				}
			}
		}
	}
	if keep := os.Getenv("LOBA_SD_KEEP_GRID"); keep != "" { // for looking at it
		require.NoError(t, SavePNG(keep, grid))
	}
	st = p.Stats()
	require.Equal(t, 1, st.StepGraphs)
	require.Equal(t, 2*steps, st.StepRuns)
	require.Equal(t, 1, st.DecodeGraphs)

	// One prompt from here on (row 0 of imgs).
	one := req
	one.Prompts = prompts[:1]

	// Delayed start below every timestep: the adapter never acts, every column equals strength 0.
	ts := p.graphs.step[stepKey{sampler: SamplerDDIM, steps: steps, cfg: true, adapterGen: p.graphs.adapterGen}].sched.Timesteps()
	late := one
	late.StartNoise = ts[len(ts)-1] / 2
	lateImgs, err := p.Sample(late)
	require.NoError(t, err)
	for j := range strengths {
		require.True(t, samePixels(t, lateImgs[j], lateImgs[0]), "StartNoise below all timesteps: strength %d", j)
		require.True(t, closePixels(t, lateImgs[j], at(imgs, 0, 0)), "StartNoise below all timesteps: strength %d", j)
	}
	// Delayed start between the first and the last timestep: different from both.
	mid := one
	mid.StartNoise = ts[1]
	midImgs, err := p.Sample(mid)
	require.NoError(t, err)
	require.True(t, differentPixels(t, midImgs[1], at(imgs, 0, 1)))
	require.True(t, differentPixels(t, midImgs[1], at(imgs, 0, 0)))
	require.Equal(t, 2, p.Stats().StepGraphs, "StartNoise is a host-side schedule of the strength input (one graph per batch shape)")

	// Smaller batches (the last one padded): same images.
	batched := one
	batched.BatchSize = 2
	batchedImgs, err := p.Sample(batched)
	require.NoError(t, err)
	require.Len(t, batchedImgs, len(strengths))
	for j := range strengths {
		require.True(t, closePixels(t, batchedImgs[j], at(imgs, 0, j)), "batched image %d", j)
	}

	// Another seed: other images. Euler on the same config: other images.
	single := one
	single.Strengths = nil
	single.Seed = 8
	seeded, err := p.Sample(single)
	require.NoError(t, err)
	require.Len(t, seeded, 1)
	require.True(t, differentPixels(t, seeded[0], imgs[0]))
	single.Seed = req.Seed
	ddimImgs, err := p.Sample(single)
	require.NoError(t, err)
	graphs := p.Stats().StepGraphs
	single.Sampler = SamplerEuler
	eulerImgs, err := p.Sample(single)
	require.NoError(t, err)
	require.Equal(t, graphs+1, p.Stats().StepGraphs)
	// DDIM (eta 0) is Euler's method on x/sqrt(ᾱ) in σ = sqrt((1-ᾱ)/ᾱ) (Karras et al. 2022), so with the
	// same noise and timesteps the two give nearly the same images (they differ by the last σ:
	// DDIM ends at ᾱ_0, Euler at 0). A wrong init_noise_sigma or scale_model_input would not.
	require.False(t, samePixels(t, eulerImgs[0], ddimImgs[0]))
	d := meanAbsDiff(t, eulerImgs[0], ddimImgs[0])
	require.Less(t, d, 2.0, "euler vs ddim: mean difference %.2f levels", d)

	// Precomputed conditioning, text encoders freed (the trainer's path): same images.
	all, err := p.EncodePrompts(append([]string{req.NegativePrompt}, prompts...), EncodeOptions{})
	require.NoError(t, err)
	require.NoError(t, p.FreeTextEncoders())
	_, err = p.EncodePrompts(prompts, EncodeOptions{})
	require.ErrorContains(t, err, "freed")
	pre := req
	pre.Prompts = nil
	pre.Cond, err = ConditioningRows(all, 1)
	require.NoError(t, err)
	pre.NegativeCond, err = ConditioningRows(all, 0)
	require.NoError(t, err)
	preImgs, err := p.Sample(pre)
	require.NoError(t, err)
	for j := range strengths {
		require.True(t, closePixels(t, preImgs[j], at(imgs, 0, j)), "precomputed conditioning, image %d", j)
	}
	noNeg := pre
	noNeg.NegativeCond = nil
	_, err = p.Sample(noNeg)
	require.ErrorContains(t, err, "NegativeCond")

	// Strength 0 equals no adapter (same batch shape: bit-identical).
	zero := pre
	zero.Cond, err = ConditioningRows(all, 1, 2)
	require.NoError(t, err)
	zero.Strengths = []float64{0}
	zeroImgs, err := p.Sample(zero)
	require.NoError(t, err)
	p.SetAdapter(nil)
	plain := zero
	plain.Strengths = nil
	plainImgs, err := p.Sample(plain)
	require.NoError(t, err)
	require.Len(t, plainImgs, len(prompts))
	for i := range prompts {
		require.True(t, samePixels(t, plainImgs[i], zeroImgs[i]), "prompt %d: strength 0 vs no adapter", i)
		require.True(t, closePixels(t, plainImgs[i], at(imgs, i, 0)), "prompt %d: strength 0 vs no adapter", i)
	}
	_, err = p.Sample(pre) // strengths without an adapter
	require.ErrorContains(t, err, "SetAdapter")

	// Bad sizes are named.
	bad := plain
	bad.Width = w + 1
	_, err = p.Sample(bad)
	require.ErrorContains(t, err, "multiples")
}

// TestSampleSDXL runs the SDXL path (pooled text_embeds and time ids) with the default sampler
// and no guidance as well as with guidance.
func TestSampleSDXL(t *testing.T) {
	for _, tp := range composePipelines(t, "") {
		if !tp.sdxl {
			continue
		}
		t.Run(tp.name(), func(t *testing.T) {
			p := tp.load(t, PipelineOptions{})
			_, _, h, w := testSize(p)
			req := SampleRequest{Prompts: []string{"a photo of a cat"}, Width: w, Height: h, Steps: 2, GuidanceScale: 4, Seed: 1}
			imgs, err := p.Sample(req)
			require.NoError(t, err)
			require.Len(t, imgs, 1)
			require.Equal(t, image.Rect(0, 0, w, h), imgs[0].Bounds())
			again, err := p.Sample(req)
			require.NoError(t, err)
			require.True(t, samePixels(t, imgs[0], again[0]))
			noCFG := req
			noCFG.GuidanceScale = 1
			other, err := p.Sample(noCFG)
			require.NoError(t, err)
			require.True(t, differentPixels(t, imgs[0], other[0]))
			require.Equal(t, 2, p.Stats().StepGraphs, "one graph with guidance, one without")
			require.True(t, strings.HasPrefix(p.Sampler, SamplerEuler))
		})
	}
}
