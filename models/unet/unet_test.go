package unet

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/weights"
)

const parityTol = 1e-4

// testBackend is the tests' simplego backend (configured by models/backend).
func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	return testutil.Backend(t)
}

// readIO reads every tensor of a case's io.safetensors: floats as float32, integers as stored.
func readIO(t testing.TB, dir string) map[string]*tensors.Tensor {
	t.Helper()
	ts, err := safetensors.ReadTensors(filepath.Join(dir, "io.safetensors"), dtypes.Float32)
	require.NoError(t, err)
	return ts
}

func flat32(t testing.TB, x *tensors.Tensor) []float32 {
	t.Helper()
	if x.DType() != dtypes.Float32 {
		t.Fatalf("want a float32 tensor, got %s", x.Shape())
	}
	return tensors.MustCopyFlatData[float32](x)
}

// TestParity runs every unet fixture case: out.sample and every dbg.* intermediate the case records
// must match diffusers to a relative L2 error < 1e-4.
func TestParity(t *testing.T) {
	backend := testBackend(t)
	for _, dir := range fixtures.Cases(t, "unet") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m, ctx, err := Load(dir)
			require.NoError(t, err)
			io := readIO(t, dir)
			inputs := []any{io["in.sample"], io["in.timestep"], io["in.encoder_hidden_states"]}
			for _, k := range []string{"in.sample", "in.timestep", "in.encoder_hidden_states"} {
				require.Contains(t, io, k)
			}
			_, hasText := io["in.text_embeds"]
			_, hasIDs := io["in.time_ids"]
			require.Equal(t, m.Config.IsSDXL(), hasText && hasIDs, "in.text_embeds/in.time_ids present iff addition_embed_type is text_time")
			if hasText {
				inputs = append(inputs, io["in.text_embeds"], io["in.time_ids"])
			}
			var dbgNames []string
			for k := range io {
				if strings.HasPrefix(k, "dbg.") {
					dbgNames = append(dbgNames, strings.TrimPrefix(k, "dbg."))
				}
			}
			sort.Strings(dbgNames)

			start := time.Now()
			exec := model.MustNewExec(backend, ctx.Store(), func(_ *model.Scope, in []*Node) []*Node {
				cond := Conditioning[*Node]{Hidden: in[2]}
				if len(in) == 5 {
					cond.TextEmbeds, cond.TimeIDs = in[3], in[4]
				}
				out, dbg := m.ForwardDebug(ctx, in[0], in[1], cond)
				outs := []*Node{out}
				for _, name := range dbgNames {
					x, ok := dbg[name]
					if !ok {
						t.Errorf("the fixture records dbg.%s, ForwardDebug does not produce it", name)
						x = ZerosLike(out)
					}
					outs = append(outs, x)
				}
				return outs
			})
			outs, err := exec.Exec(inputs...)
			require.NoError(t, err)
			t.Logf("forward in %s", time.Since(start))

			check := func(name string, got *tensors.Tensor) {
				want := io[name]
				require.Equal(t, want.Shape().Dimensions, got.Shape().Dimensions, name)
				rel := testutil.RelErr(flat32(t, got), flat32(t, want))
				t.Logf("%-24s rel L2 %.3g", name, rel)
				if !(rel < parityTol) {
					t.Errorf("%s: relative L2 error %.3g >= %g", name, rel, parityTol)
				}
			}
			check("out.sample", outs[0])
			for i, name := range dbgNames {
				check("dbg."+name, outs[i+1])
			}
		})
	}
}

func realDir(t *testing.T, parts ...string) string {
	return filepath.Join(append([]string{fixtures.Root(t), "real"}, parts...)...)
}

// TestRealConfigs checks that the real SD1.5 and SDXL-base UNet configs validate, that the presets
// equal them, and that the declared weights are exactly the keys and shapes of the real checkpoints.
func TestRealConfigs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		preset *Config
	}{{"sd15", SD15()}, {"sdxl_base", SDXLBase()}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoadConfig(realDir(t, "configs", tc.name, "unet", "config.json"))
			require.NoError(t, err)
			preset := *tc.preset
			preset.DiffusersVersion = cfg.DiffusersVersion
			require.Equal(t, &preset, cfg, "preset %s differs from the real config", tc.name)

			m, err := New(cfg)
			require.NoError(t, err)
			start := time.Now()
			declared, err := weights.Declared(m.Declare)
			require.NoError(t, err)
			t.Logf("shape-only build of %d weights (%d parameters) in %s", len(declared), weights.ParamCount(declared), time.Since(start))

			data, err := os.ReadFile(realDir(t, "manifests", "diffusers", tc.name, "unet.json"))
			require.NoError(t, err)
			var manifest map[string]struct {
				Shape []int `json:"shape"`
			}
			require.NoError(t, json.Unmarshal(data, &manifest))
			var missing, extra, wrong []string
			for k, e := range manifest {
				s, ok := declared[k]
				if !ok {
					missing = append(missing, k)
				} else if !equalInts(s.Dimensions, e.Shape) {
					wrong = append(wrong, k)
				}
			}
			for k := range declared {
				if _, ok := manifest[k]; !ok {
					extra = append(extra, k)
				}
			}
			sort.Strings(missing)
			sort.Strings(extra)
			sort.Strings(wrong)
			require.Empty(t, missing, "checkpoint keys the model does not declare")
			require.Empty(t, extra, "declared keys not in the checkpoint")
			require.Empty(t, wrong, "keys with the wrong shape")
			require.Len(t, declared, len(manifest))
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFixtureConfigs checks that every fixture config parses, and that unknown keys are accepted.
func TestFixtureConfigs(t *testing.T) {
	for _, dir := range fixtures.Cases(t, "unet") {
		data, err := os.ReadFile(filepath.Join(dir, "config.json"))
		require.NoError(t, err)
		_, err = ParseConfig(data)
		require.NoError(t, err, dir)
		var raw map[string]any
		require.NoError(t, json.Unmarshal(data, &raw))
		raw["some_future_key"] = []int{1, 2}
		more, _ := json.Marshal(raw)
		_, err = ParseConfig(more)
		require.NoError(t, err, "unknown keys must be accepted")
	}
}

// TestValidateRejects checks that unsupported values fail with an error naming the key, the value
// and a valid value.
func TestValidateRejects(t *testing.T) {
	base := filepath.Join(fixtures.Cases(t, "unet")[0], "config.json")
	data, err := os.ReadFile(base)
	require.NoError(t, err)
	for _, tc := range []struct {
		key   string
		value any
		want  []string
	}{
		{"down_block_types", []string{"AttnDownBlock2D", "DownBlock2D"}, []string{"down_block_types[0]", `"AttnDownBlock2D"`, `"CrossAttnDownBlock2D"`}},
		{"down_block_types", []string{"CrossAttnDownBlock2D", "Foo"}, []string{"down_block_types[1]", `"Foo"`, `"DownBlock2D"`}},
		{"up_block_types", []string{"UpBlock2D", "AttnUpBlock2D"}, []string{"up_block_types[1]", `"AttnUpBlock2D"`, `"CrossAttnUpBlock2D"`}},
		{"mid_block_type", "UNetMidBlock2DSimpleCrossAttn", []string{"mid_block_type", `"UNetMidBlock2DSimpleCrossAttn"`, `"UNetMidBlock2DCrossAttn"`}},
		{"class_embed_type", "timestep", []string{"class_embed_type", `"timestep"`, "null"}},
		{"addition_embed_type", "text", []string{"addition_embed_type", `"text"`, `"text_time"`}},
		{"resnet_time_scale_shift", "scale_shift", []string{"resnet_time_scale_shift", `"scale_shift"`, `"default"`}},
		{"time_embedding_type", "fourier", []string{"time_embedding_type", `"fourier"`, `"positional"`}},
		{"only_cross_attention", true, []string{"only_cross_attention", "true", "false"}},
		{"act_fn", "mish", []string{"act_fn", `"mish"`, `"silu"`}},
		{"encoder_hid_dim_type", "text_proj", []string{"encoder_hid_dim_type", `"text_proj"`, "null"}},
		{"attention_type", "gated", []string{"attention_type", `"gated"`, `"default"`}},
		{"time_cond_proj_dim", 256, []string{"time_cond_proj_dim", "256", "null"}},
		{"block_out_channels", []int{32, 64, 64}, []string{"block_out_channels", "3 entries"}},
		{"attention_head_dim", []int{4, 4, 4}, []string{"attention_head_dim", "[4,4,4]", "3 entries"}},
	} {
		var raw map[string]any
		require.NoError(t, json.Unmarshal(data, &raw))
		raw[tc.key] = tc.value
		b, _ := json.Marshal(raw)
		_, err := ParseConfig(b)
		require.Error(t, err, "%s = %v must be rejected", tc.key, tc.value)
		for _, w := range tc.want {
			require.Contains(t, err.Error(), w, "error for %s = %v", tc.key, tc.value)
		}
		_, err = New(func() *Config { c := DefaultConfig(); _ = json.Unmarshal(b, c); return c }())
		require.Error(t, err, "New must validate too")
	}
}

// TestNearestResize checks the nearest upsampling against torch's index rule: dst>>1 for 2x,
// min(floor(dst·in/out), in-1) otherwise.
func TestNearestResize(t *testing.T) {
	backend := testBackend(t)
	h, w := 3, 4
	vals := make([]float32, h*w)
	for i := range vals {
		vals[i] = float32(i + 1)
	}
	x := tensors.FromFlatDataAndDimensions(vals, 1, 1, h, w)
	for _, size := range [][2]int{{6, 8}, {7, 8}, {6, 9}, {5, 7}} {
		out := MustExecOnce(backend, func(x *Node) *Node { return nearestResize(x, size[0], size[1]) }, x)
		got := tensors.MustCopyFlatData[float32](out)
		src := func(dst, in, out int) int {
			if out == 2*in {
				return dst >> 1
			}
			return min(int(float32(dst)*(float32(in)/float32(out))), in-1)
		}
		for i := 0; i < size[0]; i++ {
			for j := 0; j < size[1]; j++ {
				want := vals[src(i, h, size[0])*w+src(j, w, size[1])]
				require.Equal(t, want, got[i*size[1]+j], "size %v at (%d, %d)", size, i, j)
			}
		}
	}
}

// TestOddSizes runs the sd15_tiny weights on a sample whose size is not a multiple of 2^(levels-1)
// (diffusers then forwards the skip sizes to the upsamplers): the output keeps the input size.
func TestOddSizes(t *testing.T) {
	backend := testBackend(t)
	dir := filepath.Join(fixtures.Root(t), "unet", "sd15_tiny")
	m, ctx, err := Load(dir)
	require.NoError(t, err)
	io := readIO(t, dir)
	enc := io["in.encoder_hidden_states"]
	b := enc.Shape().Dim(0)
	dims := []int{b, m.Config.InChannels, 9, 7}
	s := tensors.FromFlatDataAndDimensions(make([]float32, dims[0]*dims[1]*dims[2]*dims[3]), dims...)
	out, err := m.Predict(backend, ctx, s, tensors.FromValue(float32(10)), Conditioning[*tensors.Tensor]{Hidden: enc})
	require.NoError(t, err)
	require.Equal(t, []int{b, m.Config.OutChannels, 9, 7}, out.Shape().Dimensions)
}

// TestTimestepForms checks that float32 timesteps give the same prediction as the int64 ones of the
// fixture, and that a scalar timestep is broadcast to the batch.
func TestTimestepForms(t *testing.T) {
	backend := testBackend(t)
	dir := filepath.Join(fixtures.Root(t), "unet", "sd15_tiny")
	m, ctx, err := Load(dir)
	require.NoError(t, err)
	io := readIO(t, dir)
	sample, enc := io["in.sample"], io["in.encoder_hidden_states"]
	ids := tensors.MustCopyFlatData[int64](io["in.timestep"])
	f32 := make([]float32, len(ids))
	for i, v := range ids {
		f32[i] = float32(v)
	}
	ref, err := m.Predict(backend, ctx, sample, io["in.timestep"], Conditioning[*tensors.Tensor]{Hidden: enc})
	require.NoError(t, err)
	got, err := m.Predict(backend, ctx, sample, tensors.FromValue(f32), Conditioning[*tensors.Tensor]{Hidden: enc})
	require.NoError(t, err)
	require.Less(t, testutil.RelErr(flat32(t, got), flat32(t, ref)), 1e-6, "float32 vs int64 timesteps")

	// Scalar timestep ids[0] for the whole batch == [ids[0], ids[0], ...].
	same := make([]int64, len(ids))
	for i := range same {
		same[i] = ids[0]
	}
	ref, err = m.Predict(backend, ctx, sample, tensors.FromValue(same), Conditioning[*tensors.Tensor]{Hidden: enc})
	require.NoError(t, err)
	got, err = m.Predict(backend, ctx, sample, tensors.FromValue(ids[0]), Conditioning[*tensors.Tensor]{Hidden: enc})
	require.NoError(t, err)
	require.Equal(t, flat32(t, ref), flat32(t, got), "scalar timestep broadcast")

	// A wrong batch is an error, not a panic.
	_, err = m.Predict(backend, ctx, sample, tensors.FromValue([]int64{1, 2, 3}), Conditioning[*tensors.Tensor]{Hidden: enc})
	require.ErrorContains(t, err, "timestep")
}

// TestLoadLayouts checks the diffusers folder layouts Load accepts, and that weights which do not fit
// the config are reported together, naming the file.
func TestLoadLayouts(t *testing.T) {
	cases := fixtures.Cases(t, "unet")
	src := cases[0]
	link := func(dst, name, target string) {
		require.NoError(t, os.Symlink(target, filepath.Join(dst, name)))
	}
	for _, name := range []string{"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"} {
		dir := t.TempDir()
		link(dir, "config.json", filepath.Join(src, "config.json"))
		link(dir, name, filepath.Join(src, "model.safetensors"))
		m, ctx, err := Load(dir)
		require.NoError(t, err, name)
		require.NotNil(t, m)
		n := 0
		for range ctx.IterVariables() {
			n++
		}
		require.Greater(t, n, 0)
	}

	// Weights of another config: one error listing the problems and naming the file.
	dir := t.TempDir()
	cfg := DefaultConfig()
	data, err := os.ReadFile(filepath.Join(src, "config.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, cfg))
	cfg.LayersPerBlock = Int(cfg.LayersPerBlock.At(0) + 1)
	out, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), out, 0o644))
	link(dir, "model.safetensors", filepath.Join(src, "model.safetensors"))
	_, _, err = Load(dir)
	require.Error(t, err)
	require.Contains(t, err.Error(), "model.safetensors")
	require.Contains(t, err.Error(), "missing")

	_, _, err = Load(t.TempDir())
	require.ErrorContains(t, err, "config.json")
}
