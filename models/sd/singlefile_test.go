package sd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/singlefile"
)

// tinySingleFile is a single-file checkpoint written from golden fixture components, with a
// config folder (unet/, vae/, text_encoder[_2]/config.json) describing them.
type tinySingleFile struct {
	kind      string
	dirs      map[string]string // component → fixture case folder
	configDir string
	layout    *singlefile.Layout
}

func readJSON(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, into), path)
}

// tinySingleFiles assembles one per UNet fixture case: SDXL base when the UNet has
// addition_embed_type "text_time" (a CLIPTextModel as text_encoder, a
// CLIPTextModelWithProjection as text_encoder_2), SD1.5 otherwise.
func tinySingleFiles(t *testing.T) []*tinySingleFile {
	t.Helper()
	vaes := fixtures.Cases(t, "vae")
	clips := fixtures.Cases(t, "clip_text")
	pickClip := func(withProjection bool) string {
		for _, d := range clips {
			var c struct {
				Architectures []string `json:"architectures"`
			}
			readJSON(t, filepath.Join(d, "config.json"), &c)
			has := len(c.Architectures) > 0 && c.Architectures[0] == "CLIPTextModelWithProjection"
			if has == withProjection {
				return d
			}
		}
		return clips[0]
	}
	var out []*tinySingleFile
	for i, unetDir := range fixtures.Cases(t, "unet") {
		var u struct {
			AdditionEmbedType *string `json:"addition_embed_type"`
		}
		readJSON(t, filepath.Join(unetDir, "config.json"), &u)
		tc := &tinySingleFile{kind: singlefile.KindSD15, configDir: t.TempDir(),
			dirs: map[string]string{"unet": unetDir, "vae": vaes[i%len(vaes)], "text_encoder": pickClip(false)}}
		if u.AdditionEmbedType != nil && *u.AdditionEmbedType == "text_time" {
			tc.kind = singlefile.KindSDXLBase
			tc.dirs["text_encoder_2"] = pickClip(true)
		}
		for comp, d := range tc.dirs {
			b, err := os.ReadFile(filepath.Join(d, "config.json"))
			require.NoError(t, err)
			require.NoError(t, os.MkdirAll(filepath.Join(tc.configDir, comp), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(tc.configDir, comp, "config.json"), b, 0o644))
		}
		var err error
		tc.layout, err = singlefile.LayoutFromDir(tc.kind, tc.configDir)
		require.NoError(t, err)
		out = append(out, tc)
	}
	return out
}

// write saves the fixtures' weights, stored as dtype, under LDM/SGM names at path.
func (tc *tinySingleFile) write(t *testing.T, path string, dtype dtypes.DType) {
	t.Helper()
	comps := map[string]map[string]*tensors.Tensor{}
	for comp, d := range tc.dirs {
		ts, err := safetensors.ReadTensors(filepath.Join(d, "model.safetensors"), dtype)
		require.NoError(t, err)
		comps[comp] = ts
	}
	require.NoError(t, singlefile.Save(path, tc.layout, comps, map[string]string{"format": "pt"}))
}

// fixtureManifest is the diffusers key → {shape, dtype} of a fixture's model.safetensors.
func fixtureManifest(t *testing.T, dir string) map[string]TensorEntry {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	require.NoError(t, err)
	defer f.Close()
	out := map[string]TensorEntry{}
	for _, ti := range f.Infos() {
		out[ti.Name] = TensorEntry{Shape: ti.Shape, DType: string(ti.DType)}
	}
	return out
}

func componentNames(rep *Report) []string {
	var names []string
	for _, c := range rep.Components {
		names = append(names, c.Name)
	}
	return names
}

func TestInspectSingleFile(t *testing.T) {
	for _, tc := range tinySingleFiles(t) {
		t.Run(tc.kind+"/"+filepath.Base(tc.dirs["unet"]), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "tiny.safetensors")
			tc.write(t, path, dtypes.InvalidDType)
			rep, err := InspectSingleFile(path, SingleFileOptions{ConfigDir: tc.configDir})
			require.NoError(t, err)
			require.NoError(t, rep.Err())
			require.Equal(t, path, rep.Dir)
			wantNames := make([]string, 0, len(tc.dirs))
			for comp := range tc.dirs {
				wantNames = append(wantNames, comp)
			}
			sort.Strings(wantNames)
			require.Equal(t, wantNames, componentNames(rep))
			for _, c := range rep.Components {
				want := fixtureManifest(t, tc.dirs[c.Name])
				require.Equal(t, want, c.Tensors, c.Name)
				var params int64
				for _, e := range want {
					n := int64(1)
					for _, d := range e.Shape {
						n *= int64(d)
					}
					params += n
				}
				require.Equal(t, params, c.Params, c.Name)
				require.Equal(t, []string{path}, c.Files)
				require.Equal(t, filepath.Join(tc.configDir, c.Name), c.Dir)
				switch c.Name {
				case "unet":
					require.Equal(t, "UNet2DConditionModel", c.Class)
				case "vae":
					require.Equal(t, "AutoencoderKL", c.Class)
				default:
					require.Contains(t, c.Class, "CLIPTextModel")
					require.Equal(t, "transformers", c.Library)
				}
			}

			// Stored F16: reported as such.
			half := filepath.Join(dir, "tiny_f16.safetensors")
			tc.write(t, half, dtypes.Float16)
			rep, err = InspectSingleFile(half, SingleFileOptions{ConfigDir: tc.configDir})
			require.NoError(t, err)
			require.NoError(t, rep.Err())
			for _, c := range rep.Components {
				for key, e := range c.Tensors {
					require.Equal(t, "F16", e.DType, "%s/%s", c.Name, key)
				}
			}

			// Inspect(path) dispatches to the single-file inspection with the built-in hub configs:
			// the tiny weights do not fit the real networks, and the report says so.
			rep, err = Inspect(path, InspectOptions{})
			require.NoError(t, err)
			require.Equal(t, wantNames, componentNames(rep))
			require.ErrorContains(t, rep.Err(), path)
		})
	}
}

// TestInspectSingleFileProblems: a missing key, unexpected keys and a wrong shape are reported in
// the components they belong to, naming the file.
func TestInspectSingleFileProblems(t *testing.T) {
	tc := tinySingleFiles(t)[0]
	path := filepath.Join(t.TempDir(), "bad.safetensors")
	tc.write(t, path, dtypes.InvalidDType)
	table, err := tc.layout.Table()
	require.NoError(t, err)
	missing := table.Component("unet")[0].From
	vaeRows := table.Component("vae")
	bias := vaeRows[len(vaeRows)-1].From

	f, err := safetensors.Open(path)
	require.NoError(t, err)
	var entries []safetensors.Entry
	for _, ti := range f.Infos() {
		if ti.Name == missing {
			continue
		}
		b, err := f.Bytes(ti.Name)
		require.NoError(t, err)
		e := safetensors.Entry{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: append([]byte(nil), b...)}
		if ti.Name == bias {
			e.Shape = []int{ti.Shape[0] + 1}
			e.Data = append(e.Data, 0, 0, 0, 0)
		}
		entries = append(entries, e)
	}
	require.NoError(t, f.Close())
	entries = append(entries,
		safetensors.Entry{Name: tc.layout.UNetPrefix + "extra.weight", DType: safetensors.F32, Shape: []int{1}, Data: make([]byte, 4)},
		safetensors.Entry{Name: "lonely.weight", DType: safetensors.F32, Shape: []int{1}, Data: make([]byte, 4)})
	require.NoError(t, safetensors.WriteEntries(path, entries, nil))

	rep, err := InspectSingleFile(path, SingleFileOptions{ConfigDir: tc.configDir})
	require.NoError(t, err)
	all := rep.Err()
	require.Error(t, all)
	for _, s := range []string{path, missing, "extra.weight", "lonely.weight", bias} {
		require.ErrorContains(t, all, s)
	}
	for _, c := range rep.Components {
		switch c.Name {
		case "unet":
			require.ErrorContains(t, c.Problem, missing)
			require.ErrorContains(t, c.Problem, "extra.weight")
			require.ErrorContains(t, c.Problem, "lonely.weight")
		case "vae":
			require.ErrorContains(t, c.Problem, bias)
			require.NotContains(t, c.Problem.Error(), "lonely")
		default:
			require.NoError(t, c.Problem, c.Name)
		}
	}
	var text strings.Builder
	rep.WriteText(&text)
	require.Contains(t, text.String(), "WEIGHTS DO NOT FIT")
}

func TestInspectSingleFileErrors(t *testing.T) {
	tc := tinySingleFiles(t)[0]
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	tc.write(t, good, dtypes.InvalidDType)
	data, err := os.ReadFile(good)
	require.NoError(t, err)
	trunc := filepath.Join(dir, "truncated.safetensors")
	require.NoError(t, os.WriteFile(trunc, data[:len(data)/2], 0o644))
	_, err = InspectSingleFile(trunc, SingleFileOptions{ConfigDir: tc.configDir})
	require.ErrorContains(t, err, trunc)
	_, err = Inspect(trunc, InspectOptions{})
	require.ErrorContains(t, err, trunc)

	ckpt := filepath.Join(dir, "model.ckpt")
	require.NoError(t, os.WriteFile(ckpt, []byte("PK\x03\x04"), 0o644))
	_, err = InspectSingleFile(ckpt, SingleFileOptions{})
	require.ErrorContains(t, err, "pickle")
	_, err = Inspect(ckpt, InspectOptions{})
	require.ErrorContains(t, err, "pickle")

	unetFile := filepath.Join(tc.dirs["unet"], "model.safetensors")
	_, err = Inspect(unetFile, InspectOptions{})
	require.ErrorContains(t, err, "component file")
	require.ErrorContains(t, err, unetFile)

	_, err = InspectSingleFile(good, SingleFileOptions{ConfigDir: t.TempDir()})
	require.ErrorContains(t, err, "config.json")
}

// TestInspectSingleFileRealManifests inspects the REAL single files (their key/shape/dtype
// manifests) with the built-in hub configs: the UNet, VAE and CLIP networks LOBA builds at full
// scale take every weight of the file, with the diffusers manifests' keys and shapes.
func TestInspectSingleFileRealManifests(t *testing.T) {
	real := filepath.Join(fixtures.Root(t), "real", "manifests")
	for _, kind := range []string{singlefile.KindSD15, singlefile.KindSDXLBase} {
		t.Run(kind, func(t *testing.T) {
			single := map[string]TensorEntry{}
			readJSON(t, filepath.Join(real, "single_file", kind+".json"), &single)
			var infos []safetensors.TensorInfo
			for name, e := range single {
				infos = append(infos, safetensors.TensorInfo{Name: name, DType: safetensors.DType(e.DType), Shape: e.Shape})
			}
			rep, err := inspectSingleFile(kind+".safetensors", infos, nil, SingleFileOptions{})
			require.NoError(t, err)
			require.NoError(t, rep.Err())
			for _, c := range rep.Components {
				want := map[string]TensorEntry{}
				readJSON(t, filepath.Join(real, "diffusers", kind, c.Name+".json"), &want)
				delete(want, "text_model.embeddings.position_ids") // int64 buffer current CLIP models do not have
				require.Equal(t, len(want), len(c.Tensors), c.Name)
				for key, e := range want {
					got, ok := c.Tensors[key]
					require.True(t, ok, "%s/%s", c.Name, key)
					require.Equal(t, e.Shape, got.Shape, "%s/%s", c.Name, key)
				}
			}
		})
	}
}
