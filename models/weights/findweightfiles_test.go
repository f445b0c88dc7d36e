package weights

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFindWeightFilesVariantIndex: diffusers/transformers name a variant's shard index
// <stem>.safetensors.index.<variant>.json (_add_variant inserts the variant before ".json").
func TestFindWeightFilesVariantIndex(t *testing.T) {
	for _, index := range []string{"diffusion_pytorch_model.safetensors.index.fp16.json",
		"diffusion_pytorch_model.safetensors.fp16.index.json", "diffusion_pytorch_model.fp16.safetensors.index.json"} {
		dir := t.TempDir()
		writeTensors(t, filepath.Join(dir, "diffusion_pytorch_model.safetensors"), map[string][]int{"a": {1}})
		writeTensors(t, filepath.Join(dir, "diffusion_pytorch_model.fp16-00001-of-00002.safetensors"), map[string][]int{"a": {1}})
		writeTensors(t, filepath.Join(dir, "diffusion_pytorch_model.fp16-00002-of-00002.safetensors"), map[string][]int{"b": {1}})
		require.NoError(t, os.WriteFile(filepath.Join(dir, index), []byte(`{"weight_map": {`+
			`"a": "diffusion_pytorch_model.fp16-00001-of-00002.safetensors", "b": "diffusion_pytorch_model.fp16-00002-of-00002.safetensors"}}`), 0o644))
		files, err := FindWeightFiles(dir, "fp16")
		require.NoError(t, err, index)
		require.Equal(t, []string{filepath.Join(dir, "diffusion_pytorch_model.fp16-00001-of-00002.safetensors"),
			filepath.Join(dir, "diffusion_pytorch_model.fp16-00002-of-00002.safetensors")}, files, index)
		files, err = FindWeightFiles(dir, "")
		require.NoError(t, err)
		require.Equal(t, []string{filepath.Join(dir, "diffusion_pytorch_model.safetensors")}, files)
	}
}
