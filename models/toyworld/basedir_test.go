package toyworld

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func TestBaseDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	fsys := fstest.MapFS{
		"model_index.json":     {Data: []byte(`{"_class_name": "StableDiffusionPipeline"}`)},
		"unet/config.json":     {Data: []byte(`{}`)},
		"tokenizer/vocab.json": {Data: []byte(`{"a": 0}`)},
	}
	dir, err := extract(fsys)
	require.NoError(t, err)
	for name, f := range fsys {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		require.NoError(t, err)
		require.Equal(t, f.Data, data)
	}
	again, err := extract(fsys)
	require.NoError(t, err)
	require.Equal(t, dir, again, "the same content extracts once, to the same folder")
	fsys["unet/config.json"] = &fstest.MapFile{Data: []byte(`{"x": 1}`)}
	other, err := extract(fsys)
	require.NoError(t, err)
	require.NotEqual(t, dir, other, "other content, other folder")

	t.Setenv(EnvModel, "/some/where")
	got, err := BaseDir()
	require.NoError(t, err)
	require.Equal(t, "/some/where", got)
	t.Setenv(EnvModel, "")
	if !HasBase() {
		_, err := BaseDir()
		require.ErrorContains(t, err, "loba toyworld train")
	}
}
