package lobanb

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures/tinypipe"
	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/slider"
)

func captureOut(t *testing.T) *bytes.Buffer {
	var buf bytes.Buffer
	old := Out
	Out = &buf
	t.Cleanup(func() { Out = old })
	return &buf
}

// TestCellsOnTinyModel runs the notebook flow outside a notebook on a tiny fixture pipeline:
// Load, Slider, Train (progress lines, run folder), a second Train that resumes and finds nothing
// to do, Chart, Grid, Save.
func TestCellsOnTinyModel(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "go")
	out := captureOut(t)
	tp := tinypipe.First(t, false)
	m, err := Load(tp.Dir)
	require.NoError(t, err)
	require.Equal(t, tp.Dir, m.Dir)
	require.Contains(t, out.String(), "unet")

	p, err := Slider(m.Ref, "tiny", slider.Target{TargetClass: "a cube", Positive: "a big cube", Negative: "a small cube"})
	require.NoError(t, err)
	p.Train.Resolution = slider.Square(16) // changed after Slider: must reach the target
	p.Train.Steps = 4
	p.Train.CheckpointEvery = 2
	p.MaxDenoisingSteps = 3
	p.Sample.Steps = 2
	dir := filepath.Join(t.TempDir(), "run")
	res, err := Train(p, dir)
	require.NoError(t, err)
	require.Equal(t, 4, res.Steps)
	for _, f := range []string{"preset.yaml", "loss.csv", "lora.safetensors", "samples/step-000004.png"} {
		require.FileExists(t, filepath.Join(dir, f))
	}
	text := out.String()
	require.Contains(t, text, "step 4/4")
	require.Contains(t, text, "trained "+dir)
	pts, err := rundir.Dir(dir).ReadLoss()
	require.NoError(t, err)
	require.Len(t, pts, 4)

	// A later cell: the saved preset names the same model and resolution.
	saved, err := slider.LoadPreset(filepath.Join(dir, "preset.yaml"))
	require.NoError(t, err)
	require.Equal(t, tp.Dir, saved.Model.NameOrPath)
	require.Equal(t, slider.Square(16), saved.Targets[0].Resolutions[0])

	// Re-running the training cell resumes: nothing left to do, the same adapter.
	before, err := os.ReadFile(res.LoRA)
	require.NoError(t, err)
	p2, err := Slider(m.Ref, "tiny", slider.Target{TargetClass: "a cube", Positive: "a big cube", Negative: "a small cube"})
	require.NoError(t, err)
	p2.Train.Resolution, p2.Train.Steps, p2.Train.CheckpointEvery, p2.MaxDenoisingSteps, p2.Sample.Steps = slider.Square(16), 4, 2, 3, 2
	res2, err := Train(p2, dir)
	require.NoError(t, err)
	require.Equal(t, 4, res2.Steps)
	after, err := os.ReadFile(res2.LoRA)
	require.NoError(t, err)
	require.Equal(t, before, after)

	out.Reset()
	require.NoError(t, Chart(dir))
	require.Contains(t, out.String(), "(4 steps)")

	img, err := Grid(dir, []string{"a cube", "a sphere"}, -1, 0, 1)
	require.NoError(t, err)
	require.Equal(t, 3*16, img.Bounds().Dx())
	require.Equal(t, 2*16, img.Bounds().Dy())
	f, err := os.Open(filepath.Join(dir, "grid.png"))
	require.NoError(t, err)
	g, err := png.Decode(f)
	f.Close()
	require.NoError(t, err)
	require.Equal(t, img.Bounds(), g.Bounds())

	dest := filepath.Join(t.TempDir(), "keep")
	got, err := Save(dir, dest)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dest, "tiny.safetensors"), got)
	copied, err := os.ReadFile(got)
	require.NoError(t, err)
	require.Equal(t, after, copied)
	require.FileExists(t, filepath.Join(dest, "tiny.yaml"))
	file := filepath.Join(t.TempDir(), "x.safetensors")
	got, err = Save(dir, file)
	require.NoError(t, err)
	require.Equal(t, file, got)

	_, err = Eval(dir)
	require.ErrorContains(t, err, "no eval section")
}

func TestCellErrors(t *testing.T) {
	captureOut(t)
	_, err := Slider("", "x", slider.Target{TargetClass: " ", Positive: "a", Negative: "b"})
	require.ErrorContains(t, err, "target class")
	_, err = Slider("", "x", slider.Target{TargetClass: "a shape", Positive: "", Negative: " "})
	require.ErrorContains(t, err, "at least one end")
	_, err = Train(nil, "x")
	require.Error(t, err)
	empty := t.TempDir()
	_, err = Grid(empty, []string{"a"})
	require.ErrorContains(t, err, "preset.yaml")
	_, err = Save(empty, filepath.Join(empty, "x.safetensors"))
	require.ErrorContains(t, err, "lora.safetensors")
	require.NoFileExists(t, filepath.Join(empty, "x.safetensors"))
	require.ErrorContains(t, Chart(empty), "loss.csv")
	_, err = Load(filepath.Join(empty, "model.ckpt"))
	require.Error(t, err)
	require.Panics(t, func() { MustSlider("", "x", slider.Target{TargetClass: "", Positive: "a", Negative: "b"}) })
}

func TestLossSVG(t *testing.T) {
	require.Contains(t, lossSVG(nil, 300, 100), "waiting for the first step")
	pts := []rundir.LossPoint{{Step: 1, Loss: 2}, {Step: 2, Loss: 1}, {Step: 3, Loss: 0.5}}
	svg := lossSVG(pts, 300, 100)
	require.True(t, strings.HasPrefix(svg, "<svg") && strings.HasSuffix(svg, "</svg>"))
	require.Equal(t, 2, strings.Count(svg, "<polyline"))
	require.Contains(t, svg, ">2<")     // the y maximum
	require.Contains(t, svg, ">0.5<")   // the y minimum
	require.Contains(t, svg, "step 3<") // the last step
	// The first point sits at the top-left corner of the plot, the last at the bottom-right.
	require.Contains(t, svg, `points="56.0,10.0 `)
	require.Contains(t, svg, "288.0,74.0")
}

func TestEChartsHTML(t *testing.T) {
	pts := []rundir.LossPoint{{Step: 1, Loss: 0.75}, {Step: 2, Loss: 0.5}}
	t.Setenv("LOBA_ECHARTS_INLINE", "0")
	h, err := echartsHTML(lossChart(pts, "loss — runs/x"))
	require.NoError(t, err)
	require.Contains(t, h, EChartsCDN)
	require.Contains(t, h, `"name":"loss"`)
	require.Contains(t, h, `"name":"smoothed"`)
	require.Contains(t, h, "0.75")
	require.Contains(t, h, "requirejs")
	require.NotContains(t, h, "/*offline echarts*/")

	js := filepath.Join(t.TempDir(), "echarts.min.js")
	require.NoError(t, os.WriteFile(js, []byte("/*offline echarts*/"), 0o644))
	t.Setenv("LOBA_ECHARTS", js)
	t.Setenv("LOBA_ECHARTS_INLINE", "1")
	h2, err := echartsHTML(lossChart(pts, "x"))
	require.NoError(t, err)
	require.Contains(t, h2, "(function(define, exports, module){\n/*offline echarts*/")
	// Two charts never share element ids.
	require.NotEqual(t, chartID(h), chartID(h2))

	t.Setenv("LOBA_ECHARTS", filepath.Join(t.TempDir(), "missing.js"))
	_, err = echartsHTML(lossChart(pts, "x"))
	require.ErrorContains(t, err, "install.sh")
}

func chartID(h string) string {
	_, rest, _ := strings.Cut(h, `<div id="`)
	id, _, _ := strings.Cut(rest, `"`)
	return id
}

func TestUpscale(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 160, 96))
	img.Set(1, 2, color.RGBA{255, 0, 0, 255})
	up := upscale(img, 480)
	require.Equal(t, image.Rect(0, 0, 480, 288), up.Bounds())
	require.Equal(t, color.RGBAModel.Convert(color.RGBA{255, 0, 0, 255}), color.RGBAModel.Convert(up.At(5, 8)))
	require.Equal(t, color.RGBAModel.Convert(color.RGBA{}), color.RGBAModel.Convert(up.At(6, 8)))
	require.Equal(t, image.Rect(0, 0, 8*16, 8*16), upscale(image.NewRGBA(image.Rect(0, 0, 16, 16)), 480).Bounds()) // capped at 8×
	wide := image.NewRGBA(image.Rect(0, 0, 600, 10))
	require.Equal(t, wide.Bounds(), upscale(wide, 480).Bounds())
}
