package main

import (
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures/tinypipe"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/sd"
)

// TestSampleCommand: `loba sample MODEL --lora F --prompt … --strengths …` writes a grid with one
// row per prompt and one column per strength; a bad LoRA file is a clear error.
func TestSampleCommand(t *testing.T) {
	testutil.Backend(t)
	dir := t.TempDir()
	preset := writePreset(t, dir, "")
	out := filepath.Join(dir, "out")
	code, _, stderr := runCLI("train", preset, "--out", out, "--quiet", "--steps", "2")
	require.Equal(t, 0, code, stderr)

	model := tinypipe.First(t, false).Dir
	grid := filepath.Join(dir, "grid.png")
	code, stdout, stderr := runCLI("sample", model, "--lora", filepath.Join(out, "lora.safetensors"),
		"--prompt", "a red cube", "--prompt", "a blue ball", "--strengths", "-1,0,1", "--steps", "2", "--size", "16", "--out", grid)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "2 rows × 3 columns")
	f, err := os.Open(grid)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	require.Equal(t, 48, img.Bounds().Dx())
	require.Equal(t, 32, img.Bounds().Dy())

	code, _, stderr = runCLI("sample", model, "--lora", preset, "--prompt", "x", "--out", grid)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, preset)

	// The grid sampled a column at a time (to count the images) is the grid of one call: each
	// image keeps its prompt's noise at every strength (up to float rounding, the batches differing).
	p, err := sd.LoadPipeline(model, sd.PipelineOptions{Backend: testutil.Backend(t)})
	require.NoError(t, err)
	defer p.Close()
	_, err = p.UseLoRA(filepath.Join(out, "lora.safetensors"))
	require.NoError(t, err)
	req := sd.SampleRequest{Prompts: []string{"a red cube", "a blue ball"}, Strengths: []float64{-1, 0, 1}, Steps: 2, Width: 16, Height: 16}
	var progress [][2]int
	cols, err := sampleColumns(p, req, func(done, total int) { progress = append(progress, [2]int{done, total}) })
	require.NoError(t, err)
	require.Equal(t, [][2]int{{0, 6}, {2, 6}, {4, 6}, {6, 6}}, progress)
	whole, err := p.SampleRows(req)
	require.NoError(t, err)
	for i, row := range whole {
		require.Len(t, cols[i], len(row))
		for j := range row {
			require.Less(t, pixelDiff(row[j], cols[i][j]), 0.01, "prompt %d strength %g", i, req.Strengths[j])
		}
	}
	require.Greater(t, pixelDiff(whole[0][0], whole[1][0]), 0.01, "the prompts' images differ")
}

// pixelDiff is the mean absolute difference of two images' RGB values, in [0, 1].
func pixelDiff(a, b image.Image) float64 {
	sum, n := 0.0, 0
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			sum += math.Abs(float64(r1)-float64(r2)) + math.Abs(float64(g1)-float64(g2)) + math.Abs(float64(b1)-float64(b2))
			n += 3
		}
	}
	return sum / float64(n) / 0xffff
}
