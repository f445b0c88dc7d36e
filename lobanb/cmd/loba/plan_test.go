package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
)

// TestPlanRealConfigs: `loba plan` on the real SD1.5 and SDXL configs (no weights) prints the
// memory table and one row per device.
func TestPlanRealConfigs(t *testing.T) {
	root := fixtures.Root(t)
	for _, c := range []struct{ kind, preset string }{
		{"sd15", "sd15-age.yaml"}, {"sdxl_base", "sdxl-detail.yaml"},
	} {
		t.Run(c.kind, func(t *testing.T) {
			var out, errOut bytes.Buffer
			preset := filepath.Join("..", "..", "..", "notebooks", "presets", "real", c.preset)
			code := run([]string{"plan", "--model", filepath.Join(root, "real", "configs", c.kind), preset}, &out, &errOut)
			require.Equal(t, 0, code, errOut.String())
			require.Contains(t, errOut.String(), "backend: ")
			for _, want := range []string{"frozen UNet", "train step, no checkpointing", "train step, checkpointing",
				"partial-denoise step", "T4 16GB", "L4 24GB", "A100 40GB", "A100 80GB", "H100 80GB", "this machine"} {
				require.Contains(t, out.String(), want)
			}
		})
	}
}

// TestTrainRefusesWhatCannotFit: `loba train` of the toy world at 512 px under a 1 GB memory limit
// exits 1 with the plan's figures and fix, and writes nothing.
func TestTrainRefusesWhatCannotFit(t *testing.T) {
	t.Setenv("LOBA_MEMORY_LIMIT", "1GB")
	dir := t.TempDir()
	preset := filepath.Join(dir, "toy512.yaml")
	require.NoError(t, os.WriteFile(preset, []byte(`objective: slider
targets:
  - {target_class: a shape, positive: a large shape, negative: a small shape}
train: {steps: 10, resolution: 512}
`), 0o644))
	out := filepath.Join(dir, "run")
	var stdout, stderr bytes.Buffer
	code := run([]string{"train", "--out", out, preset}, &stdout, &stderr)
	require.Equal(t, 1, code, stderr.String())
	require.Contains(t, stderr.String(), "does not fit")
	require.Contains(t, stderr.String(), "train.resolution:")
	require.NotContains(t, stderr.String(), "goroutine", "no runtime dump")
	require.NoDirExists(t, out)
}
