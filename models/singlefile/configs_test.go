package singlefile

import (
	"encoding/json"
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSingleFileConfigFiles checks configs/ itself (TestSingleFileEmbeddedConfigs compares the
// results with the hub files): every file is used, every overlay's base is a plain file, and
// hubJSON writes every plain file back byte for byte, so overlays come out in the hub's format.
func TestSingleFileConfigFiles(t *testing.T) {
	used := map[string]bool{}
	for _, name := range configFiles {
		used[name] = true
	}
	entries, err := fs.ReadDir(configFS, "configs")
	require.NoError(t, err)
	for _, e := range entries {
		name := e.Name()
		b, err := configFS.ReadFile("configs/" + name)
		require.NoError(t, err)
		if strings.HasSuffix(name, overlaySuffix) {
			require.True(t, used[name], "configs/%s is not used by configFiles", name)
			var ov overlay
			require.NoError(t, json.Unmarshal(b, &ov), name)
			used[ov.Base] = true
			continue
		}
		var obj map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(b, &obj), name)
		again, err := hubJSON(obj)
		require.NoError(t, err, name)
		require.Equal(t, string(b), string(again), "configs/%s is not in the hub's json.dumps(indent=2, sort_keys=True) format", name)
	}
	for _, e := range entries {
		require.True(t, used[e.Name()], "configs/%s is not used", e.Name())
	}
	configs, err := builtinConfigs()
	require.NoError(t, err)
	require.Len(t, configs, len(configFiles))
	require.Contains(t, configs["sdxl_base/text_encoder"], `"torch_dtype": "float16"`)
	require.NotContains(t, configs["sdxl_base/text_encoder"], `_name_or_path`)
	require.Contains(t, configs["sdxl_base/vae"], "  \"sample_size\": 1024,\n  \"scaling_factor\": 0.13025,\n  \"up_block_types\": [\n")
}

func TestApplySFOverlay(t *testing.T) {
	base := []byte(`{"b": [1, 2.0], "a": 1e-05, "c": {"x": null}}`)
	out, err := applyOverlay(base, overlay{Delete: []string{"c"}, Set: map[string]json.RawMessage{
		"a": json.RawMessage(`0.0`), "_z": json.RawMessage(`[]`)}})
	require.NoError(t, err)
	require.Equal(t, "{\n  \"_z\": [],\n  \"a\": 0.0,\n  \"b\": [\n    1,\n    2.0\n  ]\n}\n", string(out))
	_, err = applyOverlay(base, overlay{Delete: []string{"d"}})
	require.ErrorContains(t, err, `no key "d"`)
	_, err = applyOverlay([]byte(`[1]`), overlay{})
	require.Error(t, err)
	_, err = readConfig("missing.overlay.json")
	require.Error(t, err)
}
