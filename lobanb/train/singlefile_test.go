package train

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures/tinypipe"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/sd"
	"github.com/loba-dev/loba/models/singlefile"
)

// configOnlyCopy copies a composed pipeline folder without any weights: model_index.json, each
// network's config.json and the other components (scheduler/, tokenizers) whole. A single file put
// in it is loaded with these configs, and its weights can come from nowhere else.
func configOnlyCopy(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "model")
	copyFile := func(rel string) {
		data, err := os.ReadFile(filepath.Join(src, rel))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dst, rel), data, 0o644))
	}
	copyFile("model_index.json")
	comps, err := sd.ReadComponents(src)
	require.NoError(t, err)
	for _, c := range comps {
		switch {
		case c.Dir == "":
		case sd.ModelKinds[c.Class]:
			copyFile(filepath.Join(c.Name, "config.json"))
		default:
			require.NoError(t, os.CopyFS(filepath.Join(dst, c.Name), os.DirFS(c.Dir)))
		}
	}
	return dst
}

// TestTrainSingleFile (issue 14): an LDM/SGM single file built from a tiny fixture pipeline, in a
// config-only copy of that pipeline's folder, trains 2 steps with the same losses as the diffusers
// folder; its conditioning cache is keyed on the file (a touched file misses); a pickle
// checkpoint is refused with the safetensors advice.
func TestTrainSingleFile(t *testing.T) {
	for _, sdxl := range []bool{false, true} {
		t.Run(fmt.Sprintf("sdxl=%v", sdxl), func(t *testing.T) {
			tp := tinypipe.First(t, sdxl)
			kind := singlefile.KindSD15
			if sdxl {
				kind = singlefile.KindSDXLBase
			}
			path := filepath.Join(configOnlyCopy(t, tp.Dir), "tiny.safetensors")
			require.NoError(t, singlefile.SaveDir(path, kind, tp.Dir, nil))

			folder := trainTwoSteps(t, tp.Dir, t.TempDir())
			out := t.TempDir()
			single := trainTwoSteps(t, path, out)
			t.Logf("%s: diffusers folder losses %v, single file losses %v", kind, folder, single)
			require.Len(t, single, 2)
			for i := range folder {
				rel := math.Abs(float64(single[i]-folder[i])) / math.Max(math.Abs(float64(folder[i])), 1e-30)
				require.LessOrEqual(t, rel, 1e-6, "step %d: single file %g, folder %g", i+1, single[i], folder[i])
			}

			p := tinyPreset(t, 2) // the run's own preset: its folder resumes (finished), no other preset may
			p.Model.NameOrPath = path
			require.NoError(t, p.Normalize())
			hit, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t)})
			require.NoError(t, err)
			require.True(t, hit.CondCached, "the single file's conditioning is cached")
			require.Equal(t, path, hit.Pipeline.Dir)
			later := time.Now().Add(time.Hour)
			require.NoError(t, os.Chtimes(path, later, later))
			miss, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t)})
			require.NoError(t, err)
			require.False(t, miss.CondCached, "a changed single file misses the cache")
		})
	}
	ckpt := filepath.Join(t.TempDir(), "model.ckpt")
	require.NoError(t, os.WriteFile(ckpt, []byte("PK\x03\x04"), 0o644))
	p := tinyPreset(t, 1)
	p.Model.NameOrPath = ckpt
	require.NoError(t, p.Normalize())
	_, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.ErrorContains(t, err, "model.name_or_path")
	require.ErrorContains(t, err, "pickle")
	require.ErrorContains(t, err, ".safetensors")
}

// trainTwoSteps trains the tiny preset 2 steps on model in the run folder out and returns the
// losses.
func trainTwoSteps(t *testing.T, model, out string) []float32 {
	t.Helper()
	p := tinyPreset(t, 2)
	p.Model.NameOrPath = model
	require.NoError(t, p.Normalize())
	run, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t)})
	require.NoError(t, err)
	require.False(t, run.CondCached)
	res, err := run.Train()
	require.NoError(t, err)
	return res.FirstLosses
}
