package singlefile

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/vae"
	"github.com/loba-dev/loba/models/weights"
)

// sfTiny is a tiny single-file checkpoint assembled from golden fixture components: the diffusers
// tensors, their declared shapes and the layout generated from the fixtures' configs.
type sfTiny struct {
	kind     string
	layout   *Layout
	dirs     map[string]string                     // component → fixture case folder
	tensors  map[string]map[string]*tensors.Tensor // component → diffusers key → F32 tensor
	declared map[string]map[string]shapes.Shape    // component → diffusers key → shape
}

func sfReadConfig(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	return b
}

// sfTinyCases assembles one tiny single file per UNet fixture case: its kind follows the UNet
// (addition_embed_type "text_time" → SDXL base), with the VAE and CLIP fixture cases as the other
// components (SDXL: a CLIPTextModel as text_encoder, a CLIPTextModelWithProjection as
// text_encoder_2, fused to OpenCLIP naming).
func sfTinyCases(t *testing.T) []*sfTiny {
	t.Helper()
	vaes := fixtures.Cases(t, "vae")
	clips := fixtures.Cases(t, "clip_text")
	pickClip := func(withProjection bool) string {
		for _, d := range clips {
			var c struct {
				Architectures []string `json:"architectures"`
			}
			require.NoError(t, json.Unmarshal(sfReadConfig(t, d), &c))
			if slices.Contains(c.Architectures, "CLIPTextModelWithProjection") == withProjection {
				return d
			}
		}
		return clips[0]
	}
	var out []*sfTiny
	for i, unetDir := range fixtures.Cases(t, "unet") {
		var u struct {
			AdditionEmbedType *string `json:"addition_embed_type"`
		}
		require.NoError(t, json.Unmarshal(sfReadConfig(t, unetDir), &u))
		tc := &sfTiny{kind: KindSD15, dirs: map[string]string{
			"unet": unetDir, "vae": vaes[i%len(vaes)], "text_encoder": pickClip(false)}}
		if u.AdditionEmbedType != nil && *u.AdditionEmbedType == "text_time" {
			tc.kind = KindSDXLBase
			tc.dirs["text_encoder_2"] = pickClip(true)
		}
		var te2 []byte
		if d, ok := tc.dirs["text_encoder_2"]; ok {
			te2 = sfReadConfig(t, d)
		}
		var err error
		tc.layout, err = LayoutFromConfigs(tc.kind, sfReadConfig(t, unetDir), sfReadConfig(t, tc.dirs["vae"]),
			sfReadConfig(t, tc.dirs["text_encoder"]), te2)
		require.NoError(t, err)
		tc.tensors = map[string]map[string]*tensors.Tensor{}
		tc.declared = map[string]map[string]shapes.Shape{}
		for comp, dir := range tc.dirs {
			ts, err := safetensors.ReadTensors(filepath.Join(dir, "model.safetensors"), dtypes.InvalidDType)
			require.NoError(t, err)
			tc.tensors[comp] = ts
			tc.declared[comp] = map[string]shapes.Shape{}
			for k, v := range ts {
				require.Equal(t, dtypes.Float32, v.DType(), "%s %s", dir, k)
				tc.declared[comp][k] = v.Shape()
			}
		}
		out = append(out, tc)
	}
	return out
}

func (tc *sfTiny) name() string {
	return tc.kind + "/" + filepath.Base(tc.dirs["unet"])
}

// sfExtras are keys real single files hold that the tables skip on purpose.
func (tc *sfTiny) extras() []safetensors.Entry {
	f32 := func(name string, dims ...int) safetensors.Entry {
		n := 1
		for _, d := range dims {
			n *= d
		}
		return safetensors.Entry{Name: name, DType: safetensors.F32, Shape: dims, Data: make([]byte, 4*n)}
	}
	out := []safetensors.Entry{f32("betas", 4), f32("alphas_cumprod", 4), f32("model_ema.decay"),
		{Name: "model_ema.num_updates", DType: safetensors.I32, Shape: []int{}, Data: make([]byte, 4)}}
	for _, te := range tc.layout.Text {
		if te.OpenCLIP {
			out = append(out, f32(te.Prefix+"logit_scale"))
		} else {
			out = append(out, safetensors.Entry{Name: te.Prefix + "text_model.embeddings.position_ids", DType: safetensors.I64,
				Shape: []int{1, 3}, Data: make([]byte, 24)})
		}
	}
	if tc.kind == KindSDXLBase {
		out = append(out, f32("denoiser.sigmas", 4))
	}
	return out
}

// sfEdit rewrites a safetensors file through edit (name → entry).
func sfEdit(t *testing.T, path string, edit func(entries map[string]safetensors.Entry)) {
	t.Helper()
	f, err := safetensors.Open(path)
	require.NoError(t, err)
	entries := map[string]safetensors.Entry{}
	for _, ti := range f.Infos() {
		b, err := f.Bytes(ti.Name)
		require.NoError(t, err)
		entries[ti.Name] = safetensors.Entry{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: append([]byte(nil), b...)}
	}
	md := f.Metadata()
	require.NoError(t, f.Close())
	edit(entries)
	list := make([]safetensors.Entry, 0, len(entries))
	for _, e := range entries {
		list = append(list, e)
	}
	require.NoError(t, safetensors.WriteEntries(path, list, md))
}

// write saves the tiny single file (tensors converted to storage dtype) with the extra keys.
func (tc *sfTiny) write(t *testing.T, path string, storage dtypes.DType) {
	t.Helper()
	comps := tc.tensors
	if storage != dtypes.Float32 {
		comps = map[string]map[string]*tensors.Tensor{}
		for comp, dir := range tc.dirs {
			ts, err := safetensors.ReadTensors(filepath.Join(dir, "model.safetensors"), storage)
			require.NoError(t, err)
			comps[comp] = ts
		}
	}
	require.NoError(t, Save(path, tc.layout, comps, map[string]string{"format": "pt"}))
	sfEdit(t, path, func(entries map[string]safetensors.Entry) {
		for _, e := range tc.extras() {
			entries[e.Name] = e
		}
	})
}

func sfBytes(t *testing.T, tt *tensors.Tensor) []byte {
	t.Helper()
	var b []byte
	require.NoError(t, tt.ConstBytes(func(data []byte) { b = append([]byte(nil), data...) }))
	return b
}

func sfFloats(t *testing.T, tt *tensors.Tensor) []float32 {
	t.Helper()
	out, err := tensors.CopyFlatData[float32](tt)
	require.NoError(t, err)
	return out
}

// TestSaveSingleFileLayout checks the single file written from the fixtures against the table's
// operations, with index arithmetic independent of ConvertTensor: renamed copies, 1×1
// kernels, the transposed OpenCLIP projection and the q/k/v rows stacked in in_proj.
func TestSaveSingleFileLayout(t *testing.T) {
	for _, tc := range sfTinyCases(t) {
		t.Run(tc.name(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tiny.safetensors")
			tc.write(t, path, dtypes.Float32)
			f, err := safetensors.Open(path)
			require.NoError(t, err)
			defer f.Close()
			table, err := tc.layout.Table()
			require.NoError(t, err)
			ops := map[Op]int{}
			for _, row := range table.Keys {
				want := sfFloats(t, tc.tensors[row.Component][row.To])
				wdims := tc.declared[row.Component][row.To].Dimensions
				got, gdims, err := f.Float32s(row.From)
				require.NoError(t, err, row.String())
				ops[row.Op]++
				switch row.Op {
				case OpCopy:
					require.Equal(t, wdims, gdims, row.String())
					require.Equal(t, want, got, row.String())
				case OpSqueeze1x1:
					require.Equal(t, []int{wdims[0], wdims[1], 1, 1}, gdims, row.String())
					require.Equal(t, want, got, row.String())
				case OpTranspose:
					require.Equal(t, []int{wdims[1], wdims[0]}, gdims, row.String())
					for r := range wdims[0] {
						for c := range wdims[1] {
							require.Equal(t, want[r*wdims[1]+c], got[c*wdims[0]+r], row.String())
						}
					}
				case OpSplitQKV:
					require.Equal(t, 3*wdims[0], gdims[0], row.String())
					require.Equal(t, want, got[row.Part*len(want):(row.Part+1)*len(want)], row.String())
				}
			}
			require.Positive(t, ops[OpSqueeze1x1], "the VAE mid-block attention has 1×1 rows")
			if tc.kind == KindSDXLBase {
				require.Positive(t, ops[OpSplitQKV])
				require.Positive(t, ops[OpTranspose])
			}
			for _, e := range tc.extras() {
				_, ok := f.Info(e.Name)
				require.True(t, ok, e.Name)
			}
			require.Equal(t, len(table.Keys)-2*ops[OpSplitQKV]/3+len(tc.extras()), f.Len())
		})
	}
}

// TestLoadSingleFile round-trips the fixtures through an LDM/SGM-named single file: every loaded
// tensor equals the fixture's diffusers tensor bit for bit, keys of components not asked for and
// the ignored keys are skipped, and an F16 file loads as the F16 rounding of the fixture values.
func TestLoadSingleFile(t *testing.T) {
	for _, tc := range sfTinyCases(t) {
		t.Run(tc.name(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "tiny.safetensors")
			tc.write(t, path, dtypes.Float32)

			kind, err := DetectPath(path)
			require.NoError(t, err)
			require.Equal(t, tc.kind, kind)

			opts := Options{Layout: tc.layout}
			plan, err := Check(path, tc.declared, opts)
			require.NoError(t, err)
			require.Equal(t, tc.kind, plan.Kind)
			for _, e := range tc.extras() {
				require.Contains(t, plan.Skipped, e.Name)
			}
			require.Len(t, plan.Skipped, len(tc.extras()))

			got, err := Load(path, tc.declared, opts)
			require.NoError(t, err)
			require.Len(t, got, len(tc.tensors))
			for comp, ts := range tc.tensors {
				require.Equal(t, weights.SortedKeys(ts), weights.SortedKeys(got[comp]), comp)
				for key, want := range ts {
					g := got[comp][key]
					require.Equal(t, want.Shape(), g.Shape(), "%s/%s", comp, key)
					require.Equal(t, sfBytes(t, want), sfBytes(t, g), "%s/%s", comp, key)
				}
			}

			// Into per-component contexts: frozen variables under the diffusers key's scope.
			ctxs := map[string]*model.Scope{}
			root := model.NewStore().RootScope()
			for comp := range tc.declared {
				ctxs[comp] = root.At("%s", comp)
			}
			require.NoError(t, LoadInto(ctxs, path, tc.declared, opts))
			n := 0
			for v := range root.IterVariables() {
				comp, rest, _ := strings.Cut(strings.TrimPrefix(v.Scope(), "/"), "/")
				key := strings.ReplaceAll(rest, "/", ".") + "." + v.Name()
				want, ok := tc.tensors[comp][key]
				require.True(t, ok, "unexpected variable %s/%s", v.Scope(), v.Name())
				require.False(t, v.Trainable, key)
				require.Equal(t, sfBytes(t, want), sfBytes(t, v.MustValue()), key)
				n++
			}
			total := 0
			for _, ts := range tc.tensors {
				total += len(ts)
			}
			require.Equal(t, total, n)

			// Only the UNet: the other components' keys are skipped, not unexpected.
			unetOnly, err := Load(path, map[string]map[string]shapes.Shape{"unet": tc.declared["unet"]}, opts)
			require.NoError(t, err)
			require.Equal(t, []string{"unet"}, weights.SortedKeys(unetOnly))
			plan, err = Check(path, map[string]map[string]shapes.Shape{"unet": tc.declared["unet"]}, opts)
			require.NoError(t, err)
			require.Contains(t, plan.Skipped[tc.layout.VAEPrefix+"encoder.conv_in.weight"], "not asked for")

			// F16 storage (as sd_xl_base_1.0.safetensors) into float32.
			half := filepath.Join(dir, "tiny_f16.safetensors")
			tc.write(t, half, dtypes.Float16)
			got, err = Load(half, tc.declared, opts)
			require.NoError(t, err)
			for comp, ts := range tc.tensors {
				for key, want := range ts {
					g := sfFloats(t, got[comp][key])
					w := sfFloats(t, want)
					wantBits, gotBits := make([]uint32, len(w)), make([]uint32, len(g))
					for i := range w {
						wantBits[i] = math.Float32bits(float16.FromFloat32(w[i]).Float32())
					}
					for i := range g {
						gotBits[i] = math.Float32bits(g[i])
					}
					require.Equal(t, wantBits, gotBits, "%s/%s", comp, key)
				}
			}
		})
	}
}

// TestLoadSingleFileProblems: a missing key, an unexpected key, wrong shapes and a wrong dtype are
// all reported together, naming the file, attributed to their components, and nothing is set.
func TestLoadSingleFileProblems(t *testing.T) {
	for _, tc := range sfTinyCases(t) {
		t.Run(tc.name(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.safetensors")
			tc.write(t, path, dtypes.Float32)
			table, err := tc.layout.Table()
			require.NoError(t, err)
			unetRows := table.Component("unet")
			vaeRows := table.Component("vae")
			missing := unetRows[0].From
			var squeeze, bias string
			for _, r := range vaeRows {
				if r.Op == OpSqueeze1x1 && squeeze == "" {
					squeeze = r.From
				}
			}
			bias = vaeRows[len(vaeRows)-1].From // decoder.conv_out.bias
			require.True(t, strings.HasSuffix(bias, ".bias"), bias)
			teRow := table.Component("text_encoder")[0]
			var fused string
			for _, r := range table.Keys {
				if r.Op == OpSplitQKV {
					fused = r.From
					break
				}
			}
			sfEdit(t, path, func(e map[string]safetensors.Entry) {
				delete(e, missing)
				if fused != "" {
					delete(e, fused)
				}
				e[tc.layout.UNetPrefix+"extra_block.weight"] = safetensors.Entry{Name: tc.layout.UNetPrefix + "extra_block.weight",
					DType: safetensors.F32, Shape: []int{2}, Data: make([]byte, 8)}
				e["lonely.weight"] = safetensors.Entry{Name: "lonely.weight", DType: safetensors.F32, Shape: []int{1}, Data: make([]byte, 4)}
				b := e[bias]
				b.Shape = []int{b.Shape[0] + 1}
				b.Data = append(b.Data, 0, 0, 0, 0)
				e[bias] = b
				s := e[squeeze] // a 3×3 kernel where a 1×1 is expected
				s.Shape = []int{s.Shape[0], s.Shape[1], 3, 3}
				s.Data = make([]byte, len(s.Data)*9)
				e[squeeze] = s
				w := e[teRow.From] // integer tensor for a float weight
				w.DType = safetensors.I32
				e[teRow.From] = w
			})

			ctxs := map[string]*model.Scope{}
			root := model.NewStore().RootScope()
			for comp := range tc.declared {
				ctxs[comp] = root.At("%s", comp)
			}
			err = LoadInto(ctxs, path, tc.declared, Options{Layout: tc.layout})
			require.Error(t, err)
			for range root.IterVariables() {
				t.Fatal("a variable was set although the file does not fit")
			}
			var probs *weights.Problems
			require.True(t, errors.As(err, &probs), "%v", err)
			msg := err.Error()
			require.Contains(t, msg, path)
			require.Contains(t, msg, missing)
			require.Contains(t, msg, "extra_block.weight")
			require.Contains(t, msg, "lonely.weight")
			require.Contains(t, msg, bias)
			require.Contains(t, msg, squeeze)
			require.Contains(t, msg, "dtype I32")
			wantMissing := 1
			if fused != "" {
				require.Contains(t, msg, fused)
				require.Contains(t, msg, "q_proj.weight")
				wantMissing++
			}
			require.Len(t, probs.Missing, wantMissing, msg)
			require.Len(t, probs.Extra, 2, msg)
			require.Len(t, probs.Mismatch, 3, msg)

			_, err2 := Load(path, tc.declared, Options{Layout: tc.layout})
			require.Equal(t, msg, err2.Error())

			plan, err := Check(path, tc.declared, Options{Layout: tc.layout})
			require.Equal(t, msg, err.Error())
			require.Len(t, plan.Problems["unet"].Missing, 1)
			require.Len(t, plan.Problems["unet"].Extra, 1)
			require.Len(t, plan.Problems["vae"].Mismatch, 2)
			require.Len(t, plan.Problems["text_encoder"].Mismatch, 1)
			require.Len(t, plan.Problems[""].Extra, 1)
			require.NoError(t, plan.ComponentErr("does_not_exist"))
		})
	}
}

// TestLoadSingleFileErrors: bad inputs give errors naming the file, never a panic.
func TestLoadSingleFileErrors(t *testing.T) {
	tc := sfTinyCases(t)[0]
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	tc.write(t, good, dtypes.Float32)
	opts := Options{Layout: tc.layout}
	data, err := os.ReadFile(good)
	require.NoError(t, err)

	for _, n := range []int{len(data) - 1, len(data) / 2, 9, 4, 0} {
		p := filepath.Join(dir, "truncated.safetensors")
		require.NoError(t, os.WriteFile(p, data[:n], 0o644))
		_, err := Load(p, tc.declared, opts)
		require.ErrorContains(t, err, p, "truncated to %d bytes", n)
		_, err = Check(p, tc.declared, opts)
		require.ErrorContains(t, err, p)
	}

	ckpt := filepath.Join(dir, "v1-5-pruned-emaonly.ckpt")
	require.NoError(t, os.WriteFile(ckpt, []byte("PK\x03\x04 not loaded"), 0o644))
	_, err = Load(ckpt, tc.declared, opts)
	require.ErrorContains(t, err, "pickle")
	require.ErrorContains(t, err, ckpt)
	_, err = DetectPath(ckpt)
	require.ErrorContains(t, err, "pickle")

	_, err = Load(filepath.Join(dir, "absent.safetensors"), tc.declared, opts)
	require.ErrorContains(t, err, "absent.safetensors")
	_, err = Load(dir, tc.declared, opts)
	require.ErrorContains(t, err, "folder")

	// A diffusers component file is not a single file.
	unetFile := filepath.Join(tc.dirs["unet"], "model.safetensors")
	_, err = Load(unetFile, tc.declared, Options{})
	require.ErrorContains(t, err, "component file")
	require.ErrorContains(t, err, unetFile)

	// Detected kind, real hub layout: the tiny weights do not fit it, and that is reported.
	_, err = Load(good, tc.declared, Options{})
	var probs *weights.Problems
	require.True(t, errors.As(err, &probs), "%v", err)
	require.NotEmpty(t, probs.Missing)
	require.NotEmpty(t, probs.Other) // real-layout rows the tiny models do not declare

	// Components the layout does not have, none at all, no context.
	_, err = Load(good, map[string]map[string]shapes.Shape{"safety_checker": {}}, opts)
	require.ErrorContains(t, err, `no component "safety_checker"`)
	_, err = Load(good, nil, opts)
	require.ErrorContains(t, err, "no component")
	err = LoadInto(map[string]*model.Scope{}, good, tc.declared, opts)
	require.ErrorContains(t, err, "no context")

	// A model that declares a key the layout does not produce, and misses one it does.
	decl := map[string]map[string]shapes.Shape{"unet": {}}
	for k, s := range tc.declared["unet"] {
		decl["unet"][k] = s
	}
	decl["unet"]["new_module.weight"] = shapes.Make(dtypes.Float32, 3)
	delete(decl["unet"], "conv_in.weight")
	_, err = Load(good, decl, opts)
	require.ErrorContains(t, err, "unet/new_module.weight [3]: no key of the")
	require.ErrorContains(t, err, "unet/conv_in.weight (from "+tc.layout.UNetPrefix+"input_blocks.0.0.weight): the model does not declare it")

	// A hand-built layout with inconsistent fields is an error, not a panic.
	broken := *tc.layout
	broken.VAE = &vae.Config{}
	_, err = Load(good, tc.declared, Options{Layout: &broken})
	require.ErrorContains(t, err, good)
	require.ErrorContains(t, err, "single-file layout")
	require.Error(t, Save(filepath.Join(dir, "out.safetensors"), &broken, tc.tensors, nil))

	// SaveSingleFile reports every key that does not fit the layout.
	bad := map[string]map[string]*tensors.Tensor{"unet": {}, "controlnet": {}}
	for k, v := range tc.tensors["unet"] {
		bad["unet"][k] = v
	}
	delete(bad["unet"], "conv_out.weight")
	bad["unet"]["bogus.weight"] = tensors.FromValue([]float32{1})
	err = Save(filepath.Join(dir, "out.safetensors"), tc.layout, bad, nil)
	require.ErrorContains(t, err, "unet/conv_out.weight")
	require.ErrorContains(t, err, "unet/bogus.weight")
	require.ErrorContains(t, err, `no component "controlnet"`)
	_, err = os.Stat(filepath.Join(dir, "out.safetensors"))
	require.True(t, os.IsNotExist(err))
}

// TestPlanSingleFileRealManifests plans the REAL single files (their key/shape/dtype manifests)
// against the diffusers manifests with the detected kind and the built-in hub layout: every weight
// is found with its diffusers shape, only the ignored keys are skipped.
func TestPlanSingleFileRealManifests(t *testing.T) {
	real := filepath.Join(fixtures.Root(t), "real", "manifests")
	for _, kind := range []string{KindSD15, KindSDXLBase} {
		t.Run(kind, func(t *testing.T) {
			single := sfManifest(t, filepath.Join(real, "single_file", kind+".json"))
			var infos []safetensors.TensorInfo
			for _, k := range weights.SortedKeys(single) {
				infos = append(infos, safetensors.TensorInfo{Name: k, DType: safetensors.DType(single[k].DType), Shape: single[k].Shape})
			}
			declared := map[string]map[string]shapes.Shape{}
			entries, err := os.ReadDir(filepath.Join(real, "diffusers", kind))
			require.NoError(t, err)
			for _, e := range entries {
				comp, ok := strings.CutSuffix(e.Name(), ".json")
				if !ok || strings.Contains(comp, ".") {
					continue
				}
				declared[comp] = map[string]shapes.Shape{}
				for key, m := range sfManifest(t, filepath.Join(real, "diffusers", kind, e.Name())) {
					if _, opt := sfDiffusersOptional[comp+"/"+key]; !opt {
						declared[comp][key] = shapes.Make(dtypes.Float32, m.Shape...)
					}
				}
			}
			plan, err := PlanFile(kind+".safetensors", infos, declared, nil)
			require.NoError(t, err)
			require.NoError(t, plan.Err())
			require.Equal(t, kind, plan.Kind)
			for comp, decl := range declared {
				require.Len(t, plan.Sources[comp], len(decl), comp)
				for key, src := range plan.Sources[comp] {
					require.Equal(t, single[src.Row.From].DType, string(src.Info.DType), key)
				}
			}
			for key := range plan.Skipped {
				_, ok := plan.Table.Ignored(key)
				require.True(t, ok, key)
			}

			// A real file with one tensor of another size is reported, naming the file.
			bad := append([]safetensors.TensorInfo(nil), infos...)
			for i := range bad {
				if bad[i].Name == "model.diffusion_model.out.2.weight" {
					bad[i].Shape = []int{8, 320, 3, 3}
				}
			}
			plan, err = PlanFile(kind+".safetensors", bad, declared, nil)
			require.NoError(t, err)
			require.ErrorContains(t, plan.Err(), "unet/conv_out.weight: "+kind+".safetensors key model.diffusion_model.out.2.weight has shape [8 320 3 3]")
		})
	}
}

func TestSingleFileConfig(t *testing.T) {
	b, err := BuiltinConfig(KindSDXLBase, "text_encoder_2")
	require.NoError(t, err)
	require.Contains(t, string(b), "CLIPTextModelWithProjection")
	_, err = BuiltinConfig(KindSD15, "text_encoder_2")
	require.ErrorContains(t, err, "sd15/text_encoder")
}
