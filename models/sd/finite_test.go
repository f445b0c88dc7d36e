package sd

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/singlefile"
)

// poisonBits are the F32 bit patterns the tests write: NaN and +Inf.
const (
	nanBits = 0x7FC00000
	infBits = 0x7F800000
)

// poisonComponent replaces the component folder comp of a composed pipeline (a symlink to a
// fixture case) by a copy whose model.safetensors has value index of tensor key set to the F32 bit
// pattern bits. It returns the weight file's path.
func poisonComponent(t *testing.T, tp *tinyPipeline, comp, key string, index int, bits uint32) string {
	t.Helper()
	src := tp.parts[comp]
	dst := filepath.Join(tp.dir, comp)
	require.NoError(t, os.Remove(dst))
	require.NoError(t, os.Mkdir(dst, 0o755))
	cfg, err := os.ReadFile(filepath.Join(src, "config.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dst, "config.json"), cfg, 0o644))
	path := filepath.Join(dst, "model.safetensors")
	poisonFile(t, filepath.Join(src, "model.safetensors"), path, key, index, bits)
	return path
}

// poisonFile copies the safetensors file src to dst with value index of the F32 tensor key set to
// bits.
func poisonFile(t *testing.T, src, dst, key string, index int, bits uint32) {
	t.Helper()
	f, err := safetensors.Open(src)
	require.NoError(t, err)
	defer f.Close()
	var entries []safetensors.Entry
	found := false
	for _, ti := range f.Infos() {
		b, err := f.Bytes(ti.Name)
		require.NoError(t, err)
		b = append([]byte(nil), b...)
		if ti.Name == key {
			require.Equal(t, safetensors.F32, ti.DType)
			binary.LittleEndian.PutUint32(b[4*index:], bits)
			found = true
		}
		entries = append(entries, safetensors.Entry{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: b})
	}
	require.True(t, found, "%s has no tensor %s", src, key)
	require.NoError(t, safetensors.WriteEntries(dst, entries, f.Metadata()))
}

// TestLoadPipelineNonFinite: a NaN in a UNet weight or a +Inf in a VAE or text-encoder weight of
// a diffusers folder, and a NaN in a single file, make LoadPipeline fail with an error naming the
// weight file and the key (wrapping safetensors.ErrNonFinite) instead of sampling black images.
func TestLoadPipelineNonFinite(t *testing.T) {
	isolateCaches(t)
	cases := []struct{ comp, key string }{
		{"unet", "conv_in.weight"},
		{"vae", "decoder.conv_out.bias"},
		{"text_encoder", "text_model.final_layer_norm.weight"},
	}
	for _, c := range cases {
		t.Run(c.comp, func(t *testing.T) {
			tp := composePipelines(t, "")[0]
			path := poisonComponent(t, tp, c.comp, c.key, 1, infBits)
			_, err := LoadPipeline(tp.dir, PipelineOptions{Backend: testutil.Backend(t), Tokenizer: bpePath(t)})
			require.ErrorIs(t, err, safetensors.ErrNonFinite)
			require.ErrorContains(t, err, path+`: "`+c.key+`": 1 of `)
			require.ErrorContains(t, err, "(first: +Inf at index 1)")
		})
	}
	t.Run("single_file", func(t *testing.T) {
		tp := composePipelines(t, "")[0]
		poisonComponent(t, tp, "unet", "conv_in.weight", 2, nanBits)
		path := filepath.Join(tp.dir, "tiny.safetensors")
		require.NoError(t, singlefile.SaveDir(path, tp.singleFileKind(), tp.dir, nil))
		_, err := LoadPipeline(path, PipelineOptions{Backend: testutil.Backend(t)})
		require.ErrorIs(t, err, safetensors.ErrNonFinite)
		require.ErrorContains(t, err, path+`: "model.diffusion_model.input_blocks.0.0.weight": 1 of `)
		require.ErrorContains(t, err, "(first: NaN at index 2)")
	})
}

// TestUseLoRANonFinite: `loba sample --lora` on a LoRA holding +Inf fails in UseLoRA, before any
// sampling (at every strength, 0 included, since none is sampled), naming the file and the key.
func TestUseLoRANonFinite(t *testing.T) {
	tp := composePipelines(t, "")[0]
	p := tp.load(t, PipelineOptions{SkipVAE: true})
	decl, err := p.UNet.Declared()
	require.NoError(t, err)
	net, err := lora.Resolve(lora.UNet, decl, lora.Targets{Preset: lora.PresetLierLa, Rank: 2})
	require.NoError(t, err)
	ctx := model.NewStore().RootScope()
	require.NoError(t, net.Init(ctx, lora.InitOptions{Seed: 1}))
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	require.NoError(t, lora.SaveKohya(ctx, good, []*lora.Network{net}, lora.SaveOptions{DType: safetensors.F32, BaseModel: lora.BaseSD1}))
	name, err := net.KohyaName(net.Modules[0], lora.LayoutDiffusers, false)
	require.NoError(t, err)
	key := name + ".lora_down.weight"
	bad := filepath.Join(dir, "bad.safetensors")
	poisonFile(t, good, bad, key, 0, infBits)

	_, err = p.UseLoRA(bad)
	require.ErrorIs(t, err, safetensors.ErrNonFinite)
	require.ErrorContains(t, err, bad+`: "`+key+`": 1 of `)
	_, err = p.UseLoRA(good)
	require.NoError(t, err)
}

// TestInspectNonFinite: Inspect scans the weight values: a NaN tensor is listed in the component's
// NonFinite, marked in Tensors (and so in the JSON), named by Report.Err (wrapping
// safetensors.ErrNonFinite) and flagged by WriteText; HeadersOnly skips the scan. The same for a
// single file, named by its key in the file.
func TestInspectNonFinite(t *testing.T) {
	isolateCaches(t)
	tp := composePipelines(t, "")[0]
	path := poisonComponent(t, tp, "unet", "conv_in.weight", 3, nanBits)
	rep, err := Inspect(tp.dir, InspectOptions{})
	require.NoError(t, err)
	err = rep.Err()
	require.ErrorIs(t, err, safetensors.ErrNonFinite)
	require.ErrorContains(t, err, "unet: 1 tensor holds NaN or ±Inf values:\n  "+path+`: "conv_in.weight": 1 of `)
	require.ErrorContains(t, err, "(first: NaN at index 3)")
	var unetRep *ComponentReport
	for i := range rep.Components {
		if rep.Components[i].Name == "unet" {
			unetRep = &rep.Components[i]
		} else {
			require.Empty(t, rep.Components[i].NonFinite, rep.Components[i].Name)
		}
	}
	require.NotNil(t, unetRep)
	require.NoError(t, unetRep.Problem, "the weights fit; only their values are bad")
	require.Len(t, unetRep.NonFinite, 1)
	entry := unetRep.Tensors["conv_in.weight"]
	require.NotNil(t, entry.NonFinite)
	require.Equal(t, 1, entry.NonFinite.NaN)
	require.Equal(t, 3, entry.NonFinite.First)
	var text strings.Builder
	rep.WriteText(&text)
	require.Contains(t, text.String(), "NaN/Inf IN 1 TENSOR (see below)")
	var js strings.Builder
	require.NoError(t, rep.WriteJSON(&js))
	var manifest map[string]map[string]map[string]any
	require.NoError(t, json.Unmarshal([]byte(js.String()), &manifest))
	require.Equal(t, map[string]any{"total": float64(entry.NonFinite.Total), "nan": 1.0, "pos_inf": 0.0, "neg_inf": 0.0,
		"first_index": 3.0, "first": "NaN"}, manifest["unet"]["conv_in.weight"]["non_finite"])
	require.NotContains(t, manifest["unet"]["conv_in.bias"], "non_finite")

	fast, err := Inspect(tp.dir, InspectOptions{HeadersOnly: true})
	require.NoError(t, err)
	require.NoError(t, fast.Err())

	single := filepath.Join(tp.dir, "tiny.safetensors")
	require.NoError(t, singlefile.SaveDir(single, tp.singleFileKind(), tp.dir, nil))
	rep, err = Inspect(single, InspectOptions{})
	require.NoError(t, err)
	require.ErrorIs(t, rep.Err(), safetensors.ErrNonFinite)
	require.ErrorContains(t, rep.Err(), "unet: 1 tensor holds NaN or ±Inf values:\n  "+single+`: "model.diffusion_model.input_blocks.0.0.weight": 1 of `)
	rep, err = InspectSingleFile(single, SingleFileOptions{HeadersOnly: true})
	require.NoError(t, err)
	require.NoError(t, rep.Err())
}

// TestNonFiniteErrNamesTen: Report.Err names the first 10 non-finite tensors of a component and
// counts the others; the result still wraps safetensors.ErrNonFinite.
func TestNonFiniteErrNamesTen(t *testing.T) {
	var bad []*safetensors.NonFiniteError
	for i := range 13 {
		bad = append(bad, &safetensors.NonFiniteError{File: "m.safetensors", Key: fmt.Sprintf("k%02d", i),
			NonFinite: safetensors.NonFinite{Total: 4, NaN: 1, FirstValue: "NaN"}})
	}
	rep := &Report{Components: []ComponentReport{{Component: Component{Name: "unet"}, NonFinite: bad}}}
	err := rep.Err()
	require.ErrorIs(t, err, safetensors.ErrNonFinite)
	msg := err.Error()
	require.True(t, strings.HasPrefix(msg, "unet: 13 tensors hold NaN or ±Inf values:\n  m.safetensors: \"k00\": 1 of 4"), msg)
	require.Contains(t, msg, `"k09"`)
	require.NotContains(t, msg, `"k10"`)
	require.True(t, strings.HasSuffix(msg, "\n  ... and 3 more (loba inspect --json marks each)"), msg)
	var text strings.Builder
	rep.WriteText(&text)
	require.Contains(t, text.String(), "NaN/Inf IN 13 TENSORS (see below)")
}
