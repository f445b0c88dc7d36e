package main

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures/tinypipe"
	"github.com/loba-dev/loba/internal/testutil"
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
}
