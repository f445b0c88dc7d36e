package sd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/singlefile"
)

// singleFileKind is the single-file kind of a composed tiny pipeline.
func (tp *tinyPipeline) singleFileKind() string {
	if tp.sdxl {
		return singlefile.KindSDXLBase
	}
	return singlefile.KindSD15
}

// isolateCaches points the user cache (the built-in config folders) and the Hugging Face cache at
// empty temporary folders, offline: nothing is fetched.
func isolateCaches(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HUGGINGFACE_HUB_CACHE", "")
	t.Setenv("HF_HUB_OFFLINE", "1")
}

// TestLoadPipelineSingleFile: a single file written from a composed tiny pipeline and placed in
// that folder loads with the folder's configs, tokenizers and scheduler into the same pipeline:
// every variable equal, the same kind, sampler and padding. The weights come from the file.
func TestLoadPipelineSingleFile(t *testing.T) {
	isolateCaches(t)
	for _, tp := range composePipelines(t, "") {
		t.Run(tp.name(), func(t *testing.T) {
			path := filepath.Join(tp.dir, "tiny.safetensors")
			require.NoError(t, singlefile.SaveDir(path, tp.singleFileKind(), tp.dir, nil))
			opts := PipelineOptions{Backend: testutil.Backend(t)}
			want, err := LoadPipeline(tp.dir, opts)
			require.NoError(t, err)
			got, err := LoadPipeline(path, opts)
			require.NoError(t, err)
			require.Equal(t, path, got.Dir)
			require.Equal(t, want.Kind, got.Kind)
			require.Equal(t, want.Sampler, got.Sampler)
			require.Equal(t, want.PadIDs, got.PadIDs)
			require.Equal(t, want.SchedulerConfig, got.SchedulerConfig)
			require.Equal(t, want.VAEConfig, got.VAEConfig)
			requireSameVariables(t, want.Ctx, got.Ctx)

			src, err := ResolveSingleFile(path, SingleFileOptions{})
			require.NoError(t, err)
			require.Equal(t, tp.dir, src.ConfigDir)
			require.False(t, src.Builtin)
			require.Equal(t, filepath.Join(tp.dir, "scheduler", "scheduler_config.json"), src.SchedulerConfig)
			require.Len(t, src.Tokenizers, len(want.TextEncoders))
			require.Equal(t, filepath.Join(tp.dir, "tokenizer"), src.Tokenizers[0])
			require.Contains(t, src.ConditioningFiles(), path)

			// The weights are the file's: a changed tensor is loaded as changed.
			zeroTensor(t, path, "model.diffusion_model.input_blocks.0.0.bias") // conv_in.bias
			changed, err := LoadPipeline(path, PipelineOptions{Backend: testutil.Backend(t), SkipVAE: true, SkipTextEncoders: true})
			require.NoError(t, err)
			bias := tensors.MustCopyFlatData[float32](changed.Ctx.At("unet").At("conv_in").GetVariable("bias").MustValue())
			require.Equal(t, make([]float32, len(bias)), bias)
			require.Nil(t, changed.VAE)
			require.Empty(t, changed.TextEncoders)
		})
	}
}

// requireSameVariables checks that got holds every variable of want, with the same values, and no
// other.
func requireSameVariables(t *testing.T, want, got *gmodel.Scope) {
	t.Helper()
	n := 0
	for v := range want.IterVariables() {
		g := got.Store().GetVariable(gmodel.JoinPath(v.Scope(), v.Name()))
		require.NotNil(t, g, "variable %s/%s missing", v.Scope(), v.Name())
		require.Equal(t, v.MustValue().Shape(), g.MustValue().Shape(), "%s/%s", v.Scope(), v.Name())
		require.Equal(t, v.MustValue().Value(), g.MustValue().Value(), "%s/%s", v.Scope(), v.Name())
		require.Equal(t, v.Trainable, g.Trainable, "%s/%s", v.Scope(), v.Name())
		n++
	}
	m := 0
	for range got.IterVariables() {
		m++
	}
	require.Positive(t, n)
	require.Equal(t, n, m, "variable count")
}

// zeroTensor rewrites the single file at path with the named tensor zeroed.
func zeroTensor(t *testing.T, path, name string) {
	t.Helper()
	f, err := safetensors.Open(path)
	require.NoError(t, err)
	var entries []safetensors.Entry
	found := false
	for _, ti := range f.Infos() {
		b, err := f.Bytes(ti.Name)
		require.NoError(t, err)
		data := append([]byte(nil), b...)
		if ti.Name == name {
			data, found = make([]byte, len(b)), true
		}
		entries = append(entries, safetensors.Entry{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: data})
	}
	md := f.Metadata()
	require.NoError(t, f.Close())
	require.True(t, found, "%s has no tensor %s", path, name)
	require.NoError(t, safetensors.WriteEntries(path, entries, md))
}

// TestLoadPipelineSingleFileSources: a single file with no folder beside it takes the built-in
// configs and scheduler of its kind (which the tiny weights do not fit, and the error says so); a
// tokenizer missing everywhere is fetched from the Hub, so offline the error says what to set; an
// explicit config folder without scheduler/ falls back to the built-in scheduler.
func TestLoadPipelineSingleFileSources(t *testing.T) {
	isolateCaches(t)
	var sd15 *tinyPipeline
	for _, tp := range composePipelines(t, "") {
		if !tp.sdxl {
			sd15 = tp
		}
	}
	alone := filepath.Join(t.TempDir(), "alone.safetensors")
	require.NoError(t, singlefile.SaveDir(alone, singlefile.KindSD15, sd15.dir, nil))
	src, err := ResolveSingleFile(alone, SingleFileOptions{})
	require.NoError(t, err)
	require.True(t, src.Builtin)
	require.Equal(t, []string{""}, src.Tokenizers)
	require.Equal(t, "stable-diffusion-v1-5/stable-diffusion-v1-5", src.HubRepo)
	builtinSched, err := singlefile.BuiltinSchedulerConfig(singlefile.KindSD15)
	require.NoError(t, err)
	sched, err := os.ReadFile(src.SchedulerConfig)
	require.NoError(t, err)
	require.Equal(t, builtinSched, sched)

	opts := PipelineOptions{Backend: testutil.Backend(t)}
	_, err = LoadPipeline(alone, opts)
	require.ErrorContains(t, err, "--tokenizer")
	require.ErrorContains(t, err, alone)
	opts.Tokenizer = bpePath(t)
	_, err = LoadPipeline(alone, opts)
	require.ErrorContains(t, err, alone)
	require.ErrorContains(t, err, src.ConfigDir, "the error names the built-in config folder")

	// A config folder without scheduler/ or tokenizer/.
	configOnly := t.TempDir()
	for _, comp := range []string{"unet", "vae", "text_encoder"} {
		b, err := os.ReadFile(filepath.Join(sd15.dir, comp, "config.json"))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(configOnly, comp), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(configOnly, comp, "config.json"), b, 0o644))
	}
	src, err = ResolveSingleFile(alone, SingleFileOptions{ConfigDir: configOnly})
	require.NoError(t, err)
	require.False(t, src.Builtin)
	require.Equal(t, []string{""}, src.Tokenizers)
	sched, err = os.ReadFile(src.SchedulerConfig)
	require.NoError(t, err)
	require.Equal(t, builtinSched, sched)

	dir, err := ResolveModel(alone, "", nil)
	require.NoError(t, err)
	require.Equal(t, alone, dir)
	_, err = ResolveModel(alone+".missing.safetensors", "", nil)
	require.ErrorContains(t, err, "no such file")
}

// TestLoadPipelineSingleFileRefused: a config folder of the other kind and pickle files are refused
// with errors that say what is wrong.
func TestLoadPipelineSingleFileRefused(t *testing.T) {
	isolateCaches(t)
	bySDXL := map[bool]*tinyPipeline{}
	for _, tp := range composePipelines(t, "") {
		bySDXL[tp.sdxl] = tp
	}
	sd15, sdxl := bySDXL[false], bySDXL[true]
	opts := PipelineOptions{Backend: testutil.Backend(t), Tokenizer: bpePath(t)}

	// An SDXL file beside an SD1.x folder.
	wrong := filepath.Join(sd15.dir, "xl.safetensors")
	require.NoError(t, singlefile.SaveDir(wrong, singlefile.KindSDXLBase, sdxl.dir, nil))
	_, err := LoadPipeline(wrong, opts)
	require.ErrorContains(t, err, "does not fit")
	require.ErrorContains(t, err, filepath.Join(sd15.dir, "unet", "config.json"))

	// Pickles: refused with the safetensors advice, by LoadPipeline and ResolveModel.
	ckpt := filepath.Join(t.TempDir(), "model.ckpt")
	require.NoError(t, os.WriteFile(ckpt, []byte("PK\x03\x04"), 0o644))
	_, err = LoadPipeline(ckpt, opts)
	require.ErrorContains(t, err, "pickle")
	require.ErrorContains(t, err, ".safetensors")
	for _, ref := range []string{ckpt, "missing.ckpt", "./model.bin"} {
		_, err = ResolveModel(ref, "", nil)
		require.ErrorContains(t, err, "pickle", ref)
	}
}
