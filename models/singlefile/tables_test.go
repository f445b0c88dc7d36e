package singlefile

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/unet"
	"github.com/loba-dev/loba/models/vae"
	"github.com/loba-dev/loba/models/weights"
)

type sfManifestEntry struct {
	Shape []int  `json:"shape"`
	DType string `json:"dtype"`
}

func sfReadJSON(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, into), path)
}

func sfManifest(t *testing.T, path string) map[string]sfManifestEntry {
	m := map[string]sfManifestEntry{}
	sfReadJSON(t, path, &m)
	require.NotEmpty(t, m, path)
	return m
}

func sfLayout(t *testing.T, kind string) *Layout {
	l, err := LayoutFor(kind)
	require.NoError(t, err)
	return l
}

// sfDiffusersOptional are diffusers-manifest keys that no single-file key needs to produce.
var sfDiffusersOptional = map[string]string{
	"text_encoder/text_model.embeddings.position_ids": "int64 arange buffer kept by the SD1.5 hub text_encoder " +
		"file (transformers < 4.31); current CLIP text models neither declare nor load it",
}

// TestSingleFileEmbeddedConfigs checks the embedded configs against fixtures/real/configs.
func TestSingleFileEmbeddedConfigs(t *testing.T) {
	root := filepath.Join(fixtures.Root(t), "real", "configs")
	configs, err := builtinConfigs()
	require.NoError(t, err)
	require.Len(t, configs, 7)
	for key, s := range configs {
		kind, comp, _ := strings.Cut(key, "/")
		b, err := os.ReadFile(filepath.Join(root, kind, comp, "config.json"))
		require.NoError(t, err)
		require.Equal(t, string(b), s, "embedded %s differs from fixtures/real/configs", key)
	}
	for _, kind := range []string{KindSD15, KindSDXLBase} {
		fromDir, err := LayoutFromDir(kind, filepath.Join(root, kind))
		require.NoError(t, err)
		require.Equal(t, sfLayout(t, kind), fromDir, kind)
	}
}

// TestSingleFileManifests is the full-scale check: EVERY key of the real single files
// (fixtures/real/manifests/single_file/*.json) maps through the tables to a diffusers key whose
// shape after the operation equals the diffusers manifest's, or is an explicitly ignored key; the
// mapping is a bijection onto the diffusers manifests (less sfDiffusersOptional); and every row
// agrees with the mapping diffusers' own converters produced (*.ldm_to_diffusers.json).
func TestSingleFileManifests(t *testing.T) {
	real := filepath.Join(fixtures.Root(t), "real", "manifests")
	for _, kind := range []string{KindSD15, KindSDXLBase} {
		t.Run(kind, func(t *testing.T) {
			table, err := sfLayout(t, kind).Table()
			require.NoError(t, err)
			single := sfManifest(t, filepath.Join(real, "single_file", kind+".json"))

			// The diffusers manifests present are exactly the table's components.
			diffusers := map[string]map[string]sfManifestEntry{}
			entries, err := os.ReadDir(filepath.Join(real, "diffusers", kind))
			require.NoError(t, err)
			for _, e := range entries {
				comp, ok := strings.CutSuffix(e.Name(), ".json")
				if !ok || strings.Contains(comp, ".") { // vae.hub_fp32_file_legacy_names.json: a file layout, not a model
					continue
				}
				diffusers[comp] = sfManifest(t, filepath.Join(real, "diffusers", kind, e.Name()))
			}
			comps := weights.SortedKeys(diffusers)
			require.Equal(t, comps, table.Components())

			// Every single-file key: mapped (shape-checked) or ignored with a reason.
			produced := map[string]int{}
			ignored := 0
			for _, key := range weights.SortedKeys(single) {
				rows := table.Lookup(key)
				reason, isIgnored := table.Ignored(key)
				if len(rows) == 0 {
					require.True(t, isIgnored, "single-file key %s %v is neither mapped nor ignored", key, single[key].Shape)
					require.NotEmpty(t, reason)
					ignored++
					continue
				}
				require.False(t, isIgnored, "%s is both mapped and ignored", key)
				for _, row := range rows {
					shape, err := row.ConvertShape(single[key].Shape)
					require.NoError(t, err, row.String())
					want, ok := diffusers[row.Component][row.To]
					require.True(t, ok, "%s: target not in the diffusers %s manifest", row, row.Component)
					require.Equal(t, want.Shape, shape, "%s: shape %v after %s", row, single[key].Shape, row.Op)
					produced[row.Component+"/"+row.To]++
				}
			}
			// Bijection onto the diffusers manifests.
			for _, comp := range comps {
				for key := range diffusers[comp] {
					full := comp + "/" + key
					if _, opt := sfDiffusersOptional[full]; opt {
						require.Zero(t, produced[full], full)
						continue
					}
					require.Equal(t, 1, produced[full], "diffusers key %s produced %d times", full, produced[full])
				}
			}
			require.Len(t, table.Keys, len(produced))
			missing, unexpected := table.Match(weights.SortedKeys(single))
			require.Empty(t, missing, "table rows whose single-file key the real file lacks")
			require.Empty(t, unexpected)
			t.Logf("%s: %d single-file keys, %d table rows, %d ignored", kind, len(single), len(table.Keys), ignored)

			// Agreement with diffusers' converters, row by row.
			var rows []struct {
				LDM       string  `json:"ldm"`
				Component string  `json:"component"`
				Diffusers *string `json:"diffusers"`
				Op        string  `json:"op"`
			}
			sfReadJSON(t, filepath.Join(real, "single_file", kind+".ldm_to_diffusers.json"), &rows)
			require.NotEmpty(t, rows)
			for _, r := range rows {
				if r.Diffusers == nil || strings.HasPrefix(r.Op, "drop") {
					_, ok := table.Ignored(r.LDM)
					require.True(t, ok, "diffusers drops %s (%s) but the table does not ignore it", r.LDM, r.Op)
					continue
				}
				if _, opt := sfDiffusersOptional[r.Component+"/"+*r.Diffusers]; opt {
					_, ok := table.Ignored(r.LDM)
					require.True(t, ok, r.LDM)
					continue
				}
				got, ok := table.Target(r.Component, *r.Diffusers)
				require.True(t, ok, "no row for %s/%s", r.Component, *r.Diffusers)
				want := Key{From: r.LDM, Component: r.Component, To: *r.Diffusers}
				switch op, rest, _ := strings.Cut(r.Op, ":"); op {
				case "copy":
					want.Op = OpCopy
				case "squeeze_1x1":
					want.Op = OpSqueeze1x1
				case "transpose":
					want.Op = OpTranspose
				case "split_qkv": // "split_qkv:i:rows[a:b]"
					want.Op = OpSplitQKV
					idx, _, _ := strings.Cut(rest, ":")
					want.Part, err = strconv.Atoi(idx)
					require.NoError(t, err, r.Op)
				default:
					t.Fatalf("unknown op %q in the reference mapping", r.Op)
				}
				require.Equal(t, want, got)
			}

			// The SDXL keys whose presence is not proven are all optional (ignored).
			if kind == KindSDXLBase {
				uncertain := map[string]json.RawMessage{}
				sfReadJSON(t, filepath.Join(real, "single_file", "sdxl_base.uncertain_keys.json"), &uncertain)
				require.Len(t, uncertain, 3)
				for k := range uncertain {
					_, ok := table.Ignored(k)
					require.True(t, ok, k)
				}
			}
		})
	}
}

// sfSafetensorsKeys reads the tensor names of a safetensors header.
func sfSafetensorsKeys(t *testing.T, path string) []string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var n uint64
	require.NoError(t, binary.Read(f, binary.LittleEndian, &n))
	hdr := make([]byte, n)
	_, err = f.Read(hdr)
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(hdr, &m))
	delete(m, "__metadata__")
	return weights.SortedKeys(m)
}

// TestSingleFileTablesOnFixtureConfigs generates the diffusers side of the tables from every
// golden fixture's config (other levels, layers_per_block, transformer depths, text layers) and
// checks it against the keys of that fixture's model.safetensors.
func TestSingleFileTablesOnFixtureConfigs(t *testing.T) {
	collect := func() (func(from, to string, op Op), *[]string) {
		var keys []string
		return func(_, to string, _ Op) { keys = append(keys, to) }, &keys
	}
	check := func(t *testing.T, dir string, got []string) {
		sort.Strings(got)
		require.Equal(t, sfSafetensorsKeys(t, filepath.Join(dir, "model.safetensors")), got)
	}
	read := func(t *testing.T, dir string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "config.json"))
		require.NoError(t, err)
		return b
	}
	for _, dir := range fixtures.Cases(t, "unet") {
		t.Run("unet/"+filepath.Base(dir), func(t *testing.T) {
			u, err := unet.ParseConfig(read(t, dir))
			require.NoError(t, err)
			add, keys := collect()
			require.NoError(t, UNetRows(u, "model.diffusion_model.", add))
			check(t, dir, *keys)
		})
	}
	for _, dir := range fixtures.Cases(t, "vae") {
		t.Run("vae/"+filepath.Base(dir), func(t *testing.T) {
			v, err := vae.ParseConfig(read(t, dir))
			require.NoError(t, err)
			add, keys := collect()
			vaeRows(v, "first_stage_model.", add)
			check(t, dir, *keys)
		})
	}
	for _, dir := range fixtures.Cases(t, "clip_text") {
		for _, openCLIP := range []bool{false, true} {
			t.Run(fmt.Sprintf("clip_text/%s/openclip=%v", filepath.Base(dir), openCLIP), func(t *testing.T) {
				c, err := clip.ParseConfig(read(t, dir))
				require.NoError(t, err)
				te := TextEncoder{Component: "text_encoder", Prefix: "prefix.", OpenCLIP: openCLIP, Config: c}
				var keys []string
				te.rows(func(from, to string, op Op, part int) {
					require.True(t, strings.HasPrefix(from, "prefix."), from)
					keys = append(keys, to)
				})
				check(t, dir, keys)
			})
		}
	}
}

func TestConvertSingleFileTensor(t *testing.T) {
	m := []float32{0, 1, 2, 3, 4, 5} // [2, 3]
	got, shape, err := ConvertTensor(Key{From: "p", Op: OpTranspose}, m, []int{2, 3})
	require.NoError(t, err)
	require.Equal(t, []int{3, 2}, shape)
	require.Equal(t, []float32{0, 3, 1, 4, 2, 5}, got)

	w := make([]uint16, 12) // fused [6, 2] of raw F16 bits: q rows 0-1, k rows 2-3, v rows 4-5
	for i := range w {
		w[i] = uint16(i)
	}
	for part := range 3 {
		got, shape, err := ConvertTensor(Key{From: "in_proj_weight", Op: OpSplitQKV, Part: part}, w, []int{6, 2})
		require.NoError(t, err)
		require.Equal(t, []int{2, 2}, shape)
		require.Equal(t, w[4*part:4*part+4], got)
		b, shape, err := ConvertTensor(Key{From: "in_proj_bias", Op: OpSplitQKV, Part: part}, w[:6], []int{6})
		require.NoError(t, err)
		require.Equal(t, []int{2}, shape)
		require.Equal(t, w[2*part:2*part+2], b)
	}

	got, shape, err = ConvertTensor(Key{From: "q.weight", Op: OpSqueeze1x1}, m, []int{2, 3, 1, 1})
	require.NoError(t, err)
	require.Equal(t, []int{2, 3}, shape)
	require.Equal(t, m, got)

	for _, tc := range []struct {
		k     Key
		shape []int
	}{
		{Key{From: "x", Op: OpSqueeze1x1}, []int{2, 3, 3, 3}},
		{Key{From: "x", Op: OpTranspose}, []int{6}},
		{Key{From: "x", Op: OpSplitQKV}, []int{5, 1}},
		{Key{From: "x", Op: OpSplitQKV, Part: 3}, []int{6}},
	} {
		_, err := tc.k.ConvertShape(tc.shape)
		require.Error(t, err, "%v %v", tc.k, tc.shape)
		require.ErrorContains(t, err, "x")
	}
	_, _, err = ConvertTensor(Key{From: "x"}, m, []int{4})
	require.ErrorContains(t, err, "6 values for shape [4]")
}

func TestDetectSingleFile(t *testing.T) {
	real := filepath.Join(fixtures.Root(t), "real", "manifests")
	keysOf := func(path string) []string { return weights.SortedKeys(sfManifest(t, filepath.Join(real, path))) }
	filter := func(keys []string, prefix string) []string {
		var out []string
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) {
				out = append(out, k)
			}
		}
		return out
	}
	sd15, sdxl := keysOf("single_file/sd15.json"), keysOf("single_file/sdxl_base.json")
	unetSD15, unetSDXL := filter(sd15, "model.diffusion_model."), filter(sdxl, "model.diffusion_model.")
	var loraKeys []string
	loraManifest := map[string]json.RawMessage{}
	sfReadJSON(t, filepath.Join(fixtures.Root(t), "real", "lora", "sdxl_base_unet.json"), &loraManifest)
	for k := range loraManifest {
		loraKeys = append(loraKeys, "lora_unet_"+strings.ReplaceAll(k, ".", "_")+".lora_down.weight")
	}
	rename := func(keys []string, from, to string) []string {
		var out []string
		for _, k := range keys {
			out = append(out, strings.Replace(k, from, to, 1))
		}
		return out
	}
	for _, tc := range []struct {
		name, want, err string
		keys            []string
	}{
		{name: "sd15 single file", keys: sd15, want: KindSD15},
		{name: "sdxl single file", keys: sdxl, want: KindSDXLBase},
		{name: "sd15 unet only", keys: unetSD15, want: KindSD15},
		{name: "sdxl unet only", keys: unetSDXL, want: KindSDXLBase},
		{name: "sdxl refiner", keys: append(append([]string{}, unetSDXL...), "conditioner.embedders.0.model.transformer.resblocks.0.ln_1.weight"),
			err: "refiner"},
		{name: "sd2", keys: append(append([]string{}, unetSD15...), "cond_stage_model.model.transformer.resblocks.0.ln_1.weight"),
			err: "SD 2.x"},
		{name: "sgm bigG only", keys: append(append([]string{}, unetSDXL...), filter(sdxl, "conditioner.embedders.1.")...),
			err: "not an SDXL base layout"},
		{name: "unknown ldm text encoder", keys: append(append([]string{}, unetSD15...),
			rename(filter(sd15, "cond_stage_model."), "cond_stage_model.transformer.text_model.", "cond_stage_model.transformer.")...),
			err: "unknown text encoder layout"},
		{name: "diffusers unet", keys: keysOf("diffusers/sd15/unet.json"), err: "diffusers/transformers component file"},
		{name: "diffusers clip", keys: keysOf("diffusers/sdxl_base/text_encoder_2.json"), err: "component file"},
		{name: "lora", keys: loraKeys, err: "LoRA"},
		{name: "vae only", keys: filter(sd15, "first_stage_model."), err: "only an LDM VAE"},
		{name: "empty", err: "no tensors"},
		{name: "other", keys: []string{"foo.weight"}, err: "no model.diffusion_model.* keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, err := Detect(tc.keys)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, kind)
		})
	}
}

func TestSingleFileLayoutErrors(t *testing.T) {
	configs, err := builtinConfigs()
	require.NoError(t, err)
	unet := configs["sdxl_base/unet"]
	vae := []byte(configs["sd15/vae"])
	te := []byte(configs["sd15/text_encoder"])
	for _, tc := range []struct{ old, new, err string }{
		{`"DownBlock2D",`, `"SimpleDownBlock2D",`, `down_block_types[0] = "SimpleDownBlock2D" is not supported`},
		{`"UpBlock2D"`, `"AttnUpBlock2D"`, `up_block_types[2] = "AttnUpBlock2D"`},
		{`"layers_per_block": 2`, `"layers_per_block": [2, 2]`, "layers_per_block = [2,2] has 2 entries, down_block_types 3"},
		{`"transformer_layers_per_block": [`, `"transformer_layers_per_block": [0, `, "transformer_layers_per_block = [0, 1, 2, 10] has 4 entries"},
		{`"mid_block_type": "UNetMidBlock2DCrossAttn"`, `"mid_block_type": "UNetMidBlock2DSimpleCrossAttn"`,
			`mid_block_type = "UNetMidBlock2DSimpleCrossAttn" is not supported`},
		{`"class_embed_type": null`, `"class_embed_type": "projection"`, `class_embed_type = "projection" is not supported`},
		{`"addition_embed_type": "text_time"`, `"addition_embed_type": "text"`, `addition_embed_type = "text"`},
	} {
		bad := strings.Replace(unet, tc.old, tc.new, 1)
		require.NotEqual(t, unet, bad, tc.old)
		_, err := LayoutFromConfigs(KindSD15, []byte(bad), vae, te, nil)
		require.ErrorContains(t, err, "unet/config.json")
		require.ErrorContains(t, err, tc.err)
	}
	_, err = LayoutFromConfigs(KindSD15, []byte(unet), []byte(strings.Replace(string(vae), `"DownEncoderBlock2D"`, `"DownBlock2D"`, 1)), te, nil)
	require.ErrorContains(t, err, `vae/config.json: vae config: down_block_types[0] = "DownBlock2D"`)
	_, err = LayoutFromConfigs(KindSD15, []byte(unet), vae, []byte(strings.Replace(string(te), `"CLIPTextModel"`, `"T5EncoderModel"`, 1)), nil)
	require.ErrorContains(t, err, "architectures")
	_, err = LayoutFromConfigs(KindSDXLBase, []byte(unet), vae, te, nil)
	require.ErrorContains(t, err, "text_encoder_2/config.json")
	_, err = LayoutFromConfigs("sd3", []byte(unet), vae, te, nil)
	require.ErrorContains(t, err, `unknown single-file kind "sd3"`)
	_, err = LayoutFor("sd21")
	require.ErrorContains(t, err, "sd21")
	_, err = LayoutFromDir(KindSD15, t.TempDir())
	require.ErrorContains(t, err, "config.json")
}

// TestSingleFileUNetVariants: UNet configs that models/unet accepts have tables whose diffusers side
// is exactly what the UNet declares — mid_block_type UNetMidBlock2D (middle_block.0 only, by
// diffusers' converter numbering) and null (no middle_block), "UNetRes"-prefixed block types, and
// per-attention transformer depths with reverse_transformer_layers_per_block.
func TestSingleFileUNetVariants(t *testing.T) {
	dir := filepath.Join(fixtures.Root(t), "unet", "sd15_tiny")
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		edits  map[string]any
		middle []string // the middle_block.N of the LDM keys
	}{
		{"real", nil, []string{"middle_block.0", "middle_block.1", "middle_block.2"}},
		{"UNetMidBlock2D", map[string]any{"mid_block_type": "UNetMidBlock2D"}, []string{"middle_block.0"}},
		{"no mid block", map[string]any{"mid_block_type": nil}, []string{}},
		{"UNetRes prefix", map[string]any{"down_block_types": []string{"UNetResCrossAttnDownBlock2D", "UNetResDownBlock2D"},
			"up_block_types": []string{"UNetResUpBlock2D", "UNetResCrossAttnUpBlock2D"}}, []string{"middle_block.0", "middle_block.1", "middle_block.2"}},
		{"per-attention depths", map[string]any{"transformer_layers_per_block": []any{[]int{1, 2}, []int{2, 1}},
			"reverse_transformer_layers_per_block": []any{[]int{1, 1, 1}, []int{2, 1, 2}}}, []string{"middle_block.0", "middle_block.1", "middle_block.2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var raw map[string]any
			require.NoError(t, json.Unmarshal(data, &raw))
			for k, v := range tc.edits {
				raw[k] = v
			}
			b, err := json.Marshal(raw)
			require.NoError(t, err)
			cfg, err := unet.ParseConfig(b)
			require.NoError(t, err)
			m, err := unet.New(cfg)
			require.NoError(t, err)
			declared, err := weights.Declared(m.Declare)
			require.NoError(t, err)
			var to []string
			middle := map[string]bool{}
			require.NoError(t, UNetRows(cfg, "", func(from, key string, _ Op) {
				to = append(to, key)
				if rest, ok := strings.CutPrefix(from, "middle_block."); ok {
					middle["middle_block."+strings.SplitN(rest, ".", 2)[0]] = true
				}
			}))
			sort.Strings(to)
			require.Equal(t, weights.SortedKeys(declared), to)
			require.Equal(t, tc.middle, weights.SortedKeys(middle))
		})
	}
	// UNetRows checks the structure with models/unet's messages.
	noRows := func(string, string, Op) { t.Fatal("no row expected") }
	require.ErrorContains(t, UNetRows(nil, "", noRows), "no UNet config")
	bad := unet.SD15()
	bad.LayersPerBlock = unet.IntList(2, 2)
	require.ErrorContains(t, UNetRows(bad, "", noRows), "layers_per_block = [2,2] has 2 entries, down_block_types 4")
}
