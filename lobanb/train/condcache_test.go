package train

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures/tinypipe"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/slider"
)

// TestCondCache: the first run encodes and caches every prompt's conditioning in the run folder; a
// second run (a later cell, a resume) reads it without loading the text encoders and trains on the
// same values; a new prompt, or a corrupt cache file, makes it encode again and rewrite the cache.
func TestCondCache(t *testing.T) {
	for _, sdxl := range []bool{false, true} {
		name := "sd15"
		if sdxl {
			name = "sdxl"
		}
		t.Run(name, func(t *testing.T) {
			p := tinyPreset(t, 1)
			p.Model.NameOrPath = tinypipe.First(t, sdxl).Dir
			require.NoError(t, p.Normalize())
			out := t.TempDir()
			cache := rundir.Dir(out).CondCache()

			first, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t)})
			require.NoError(t, err)
			require.False(t, first.CondCached)
			require.FileExists(t, cache)

			var log bytes.Buffer
			second, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t), Log: &log})
			require.NoError(t, err)
			require.True(t, second.CondCached, "log: %s", log.String())
			require.Contains(t, log.String(), "read from "+cache)
			require.Len(t, second.loop.conds, len(first.loop.conds))
			for prompt, c := range first.loop.conds {
				got := second.loop.conds[prompt]
				require.Equal(t, flat(t, c.Hidden), flat(t, got.Hidden), "prompt %q", prompt)
				if sdxl {
					require.NotNil(t, got.TextEmbeds)
					require.Equal(t, flat(t, c.TextEmbeds), flat(t, got.TextEmbeds), "prompt %q", prompt)
				} else {
					require.Nil(t, got.TextEmbeds)
				}
			}
			_, err = second.Train()
			require.NoError(t, err)

			// A prompt the cache lacks: encode again, and the rewritten cache serves the next run.
			p2 := tinyPreset(t, 1)
			p2.Model.NameOrPath = p.Model.NameOrPath
			p2.Prompts = append(p2.Prompts, slider.Prompt{Target: "a blue ball", Action: slider.ActionErase})
			require.NoError(t, p2.Normalize())
			out2 := t.TempDir()
			require.NoError(t, os.MkdirAll(filepath.Dir(rundir.Dir(out2).CondCache()), 0o755))
			data, err := os.ReadFile(cache)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(rundir.Dir(out2).CondCache(), data, 0o644))
			miss, err := setup(p2, Options{OutDir: out2, Backend: testutil.Backend(t), Log: &log})
			require.NoError(t, err)
			require.False(t, miss.CondCached)
			require.Contains(t, log.String(), `prompt "a blue ball" is not cached`)
			hit, err := setup(p2, Options{OutDir: out2, Backend: testutil.Backend(t)})
			require.NoError(t, err)
			require.True(t, hit.CondCached)

			// A corrupt cache is a miss, logged, never an error.
			require.NoError(t, os.WriteFile(cache, []byte("not a safetensors file"), 0o644))
			log.Reset()
			again, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t), Log: &log})
			require.NoError(t, err)
			require.False(t, again.CondCached)
			require.Contains(t, log.String(), "not used")
			hit, err = setup(p, Options{OutDir: out, Backend: testutil.Backend(t)})
			require.NoError(t, err)
			require.True(t, hit.CondCached, "the corrupt cache was rewritten")
		})
	}
}

// TestCondCacheKey: the key changes with the text encoder's files and with the encode settings.
func TestCondCacheKey(t *testing.T) {
	// A real copy: the composed folder links its components to the shared fixtures, which must not
	// be touched.
	src := tinypipe.First(t, false).Dir
	dir := filepath.Join(t.TempDir(), "model")
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		from, err := filepath.EvalSymlinks(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		st, err := os.Stat(from)
		require.NoError(t, err)
		if st.IsDir() {
			require.NoError(t, os.CopyFS(filepath.Join(dir, e.Name()), os.DirFS(from)))
		} else {
			data, err := os.ReadFile(from)
			require.NoError(t, err)
			require.NoError(t, os.MkdirAll(dir, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644))
		}
	}
	te := filepath.Join(dir, "text_encoder", "config.json")
	if st, err := os.Lstat(te); err != nil || st.Mode()&os.ModeSymlink != 0 {
		t.Fatalf("%s: want a copied file (%v)", te, err)
	}
	settings := map[string]string{"hidden_state": "last"}
	k1, err := condCacheKey(dir, settings)
	require.NoError(t, err)
	k2, err := condCacheKey(dir, settings)
	require.NoError(t, err)
	require.Equal(t, k1, k2)
	k3, err := condCacheKey(dir, map[string]string{"hidden_state": "penultimate"})
	require.NoError(t, err)
	require.NotEqual(t, k1, k3, "settings")
	later := time.Now().Add(time.Hour)
	require.NoError(t, os.Chtimes(te, later, later))
	k4, err := condCacheKey(dir, settings)
	require.NoError(t, err)
	require.NotEqual(t, k1, k4, "a text encoder file changed")
}

func flat(t *testing.T, x *tensors.Tensor) []float32 {
	t.Helper()
	return tensors.MustCopyFlatData[float32](x)
}
