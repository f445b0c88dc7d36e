package sd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/models/vae"
)

// TestInspectReportsUnusedConfigKeys: config keys LOBA's configs do not know are accepted, recorded
// per component (network components and supported schedulers; "_" metadata keys left out) and
// written by WriteText as "<component>: unknown config keys ignored: ...".
func TestInspectReportsUnusedConfigKeys(t *testing.T) {
	dir := t.TempDir()
	writeJSON := func(path string, v any) {
		t.Helper()
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		data, err := json.Marshal(v)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, data, 0o644))
	}
	writeJSON(filepath.Join(dir, "model_index.json"), map[string]any{
		"_class_name": "StableDiffusionPipeline",
		"vae":         []string{"diffusers", "AutoencoderKL"},
		"scheduler":   []string{"diffusers", "DDIMScheduler"},
		"tokenizer":   []string{"transformers", "CLIPTokenizer"},
	})
	var vaeConfig map[string]any
	data, err := json.Marshal(vae.DefaultConfig())
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &vaeConfig))
	vaeConfig["norm_type"] = "group"
	vaeConfig["a_future_key"] = 1
	vaeConfig["_use_default_values"] = []string{"act_fn"}
	writeJSON(filepath.Join(dir, "vae", "config.json"), vaeConfig)
	writeJSON(filepath.Join(dir, "scheduler", "scheduler_config.json"), map[string]any{
		"_class_name": "DDIMScheduler", "skip_prk_steps": true, "clip_sample": false,
	})

	rep, err := Inspect(dir, InspectOptions{})
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	require.Equal(t, map[string][]string{
		"vae":       {"a_future_key", "norm_type"},
		"scheduler": {"skip_prk_steps"},
	}, rep.Unused)
	var text strings.Builder
	rep.WriteText(&text)
	require.Contains(t, text.String(), "\nvae: unknown config keys ignored: a_future_key, norm_type\n")
	require.Contains(t, text.String(), "\nscheduler: unknown config keys ignored: skip_prk_steps\n")
	require.NotContains(t, text.String(), "_use_default_values")
	require.NotContains(t, text.String(), "tokenizer: unknown")
}
