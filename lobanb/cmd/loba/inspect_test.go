package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/safetensors"
)

type manifest map[string]struct {
	Shape []int  `json:"shape"`
	DType string `json:"dtype"`
}

// TestInspectRealConfigsMatchManifests: `loba inspect --json` on the real SD1.5 and SDXL config
// folders prints exactly the keys, shapes and dtypes of the diffusers manifests.
func TestInspectRealConfigsMatchManifests(t *testing.T) {
	testutil.Backend(t)
	real := filepath.Join(fixtures.Root(t), "real")
	for _, model := range []string{"sd15", "sdxl_base"} {
		t.Run(model, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			start := time.Now()
			code := run([]string{"inspect", "--json", filepath.Join(real, "configs", model)}, &stdout, &stderr)
			require.Equal(t, 0, code, stderr.String())
			t.Logf("inspect --json %s: %s", model, time.Since(start))
			var got map[string]manifest
			require.NoError(t, json.Unmarshal(stdout.Bytes(), &got))
			manifests, err := filepath.Glob(filepath.Join(real, "manifests", "diffusers", model, "*.json"))
			require.NoError(t, err)
			checked := 0
			for _, path := range manifests {
				name := strings.TrimSuffix(filepath.Base(path), ".json")
				if strings.Contains(name, ".") { // variants such as vae.hub_fp32_file_legacy_names
					continue
				}
				data, err := os.ReadFile(path)
				require.NoError(t, err)
				var want manifest
				require.NoError(t, json.Unmarshal(data, &want))
				require.Contains(t, got, name, "component %s missing from inspect output", name)
				require.Equal(t, want, got[name], "component %s differs from %s", name, path)
				checked++
			}
			require.GreaterOrEqual(t, checked, 3)
		})
	}
}

// TestInspectBadWeights: weight files that do not fit give exit code 1 and name the file and key.
func TestInspectBadWeights(t *testing.T) {
	testutil.Backend(t)
	src := filepath.Join(fixtures.Root(t), "vae", "sd_vae_tiny")
	dir := t.TempDir()
	cfg, err := os.ReadFile(filepath.Join(src, "config.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644))
	ts, err := safetensors.ReadTensors(filepath.Join(src, "model.safetensors"), 0)
	require.NoError(t, err)
	delete(ts, "decoder.conv_out.bias")
	weightsPath := filepath.Join(dir, "diffusion_pytorch_model.safetensors")
	require.NoError(t, safetensors.Write(weightsPath, ts, nil))

	var stdout, stderr bytes.Buffer
	code := run([]string{"inspect", dir}, &stdout, &stderr)
	require.Equal(t, 1, code)
	require.Contains(t, stderr.String(), "decoder.conv_out.bias")
	require.Contains(t, stderr.String(), weightsPath)

	// A truncated file: the header check names the file.
	data, err := os.ReadFile(weightsPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(weightsPath, data[:len(data)/2], 0o644))
	stdout.Reset()
	stderr.Reset()
	code = run([]string{"inspect", dir}, &stdout, &stderr)
	require.Equal(t, 1, code)
	require.Contains(t, stderr.String(), weightsPath)

	// A pickle checkpoint is refused, pointing to safetensors.
	require.NoError(t, os.Remove(weightsPath))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "diffusion_pytorch_model.bin"), []byte("\x80\x02."), 0o644))
	stderr.Reset()
	code = run([]string{"inspect", dir}, &stdout, &stderr)
	require.Equal(t, 1, code)
	require.Contains(t, stderr.String(), "diffusion_pytorch_model.bin")
	require.Contains(t, stderr.String(), "safetensors")

	// Not a model folder at all.
	stderr.Reset()
	code = run([]string{"inspect", t.TempDir()}, &stdout, &stderr)
	require.Equal(t, 2, code)
	require.Contains(t, stderr.String(), "model_index.json")
}

// TestInspectBadConfig: an unknown block type or a malformed config.json gives exit code 2 and an
// error naming the file and the value.
func TestInspectBadConfig(t *testing.T) {
	testutil.Backend(t)
	src, err := os.ReadFile(filepath.Join(fixtures.Root(t), "unet", "sd15_tiny", "config.json"))
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	bad := strings.Replace(string(src), `"CrossAttnDownBlock2D"`, `"SimpleCrossAttnDownBlock2D"`, 1)
	require.NotEqual(t, string(src), bad)
	require.NoError(t, os.WriteFile(path, []byte(bad), 0o644))
	var stdout, stderr bytes.Buffer
	code := run([]string{"inspect", dir}, &stdout, &stderr)
	require.Equal(t, 2, code)
	require.Contains(t, stderr.String(), path)
	require.Contains(t, stderr.String(), "SimpleCrossAttnDownBlock2D")

	require.NoError(t, os.WriteFile(path, src[:len(src)/2], 0o644))
	stderr.Reset()
	code = run([]string{"inspect", dir}, &stdout, &stderr)
	require.Equal(t, 2, code)
	require.Contains(t, stderr.String(), path)
}
