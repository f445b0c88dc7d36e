package clip

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/safetensors"
)

const textParityTol = 1e-4

var hiddenStateKey = regexp.MustCompile(`^out\.hidden_states\.(\d+)$`)

// TestTextModelParity runs every clip_text fixture case: the model from config.json +
// model.safetensors on in.input_ids, compared with every out.* tensor the case provides.
func TestTextModelParity(t *testing.T) {
	backend := testutil.Backend(t)
	for _, dir := range fixtures.Cases(t, "clip_text") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			model, ctx, err := Load(dir)
			require.NoError(t, err)
			io, err := safetensors.Open(filepath.Join(dir, "io.safetensors"))
			require.NoError(t, err)
			defer io.Close()

			ids, idsShape, err := io.Int64s("in.input_ids")
			require.NoError(t, err)
			require.Len(t, idsShape, 2, "in.input_ids must be [batch, seq]")
			out, err := model.Exec(backend, ctx, tensors.FromFlatDataAndDimensions(ids, idsShape...))
			require.NoError(t, err)
			require.Len(t, out.HiddenStates, model.Config.NumHiddenLayers+1)

			checkFloat := func(key string, got *tensors.Tensor) {
				want, wantShape, err := io.Float32s(key)
				require.NoError(t, err)
				require.Equal(t, wantShape, got.Shape().Dimensions, "%s shape", key)
				rel := testutil.RelErr(tensors.MustCopyFlatData[float32](got), want)
				t.Logf("%-32s rel L2 %.3g", key, rel)
				require.Less(t, rel, textParityTol, "%s: relative L2 error", key)
			}
			checked := 0
			for _, key := range io.Names() {
				if !strings.HasPrefix(key, "out.") {
					continue
				}
				checked++
				switch {
				case key == "out.last_hidden_state":
					checkFloat(key, out.LastHiddenState)
				case key == "out.hidden_states_penultimate":
					checkFloat(key, out.HiddenStates[len(out.HiddenStates)-2])
				case hiddenStateKey.MatchString(key):
					i, _ := strconv.Atoi(hiddenStateKey.FindStringSubmatch(key)[1])
					require.Less(t, i, len(out.HiddenStates), "%s: the model has %d hidden states", key, len(out.HiddenStates))
					checkFloat(key, out.HiddenStates[i])
				case key == "out.pooler_output":
					checkFloat(key, out.PooledOutput)
				case key == "out.text_embeds":
					require.NotNil(t, out.TextEmbeds, "%s given but the config has no text_projection (architectures %v)", key, model.Config.Architectures)
					checkFloat(key, out.TextEmbeds)
				case key == "out.pool_index":
					want, _, err := io.Int64s(key)
					require.NoError(t, err)
					got := tensors.MustCopyFlatData[int32](out.PoolIndex)
					gotI64 := make([]int64, len(got))
					for i, v := range got {
						gotI64[i] = int64(v)
					}
					require.Equal(t, want, gotI64, "pool_index")
				default:
					t.Fatalf("unrecognised output %q in %s", key, dir)
				}
			}
			require.Positive(t, checked, "no out.* tensors in %s", dir)
		})
	}
}

// TestPoolIndexRule checks both branches of the pooling rule on hand-made ids: real CLIP ids
// (argmax = first 49407) and a toy vocabulary where the first config EOS differs from argmax.
func TestPoolIndexRule(t *testing.T) {
	backend := testutil.Backend(t)
	cases := []struct {
		ids  [][]int64
		eos  int
		want []int32
	}{
		{[][]int64{{49406, 320, 49407, 49407}, {49406, 49407, 0, 0}}, 2, []int32{2, 1}},
		{[][]int64{{0, 40, 2, 7, 2}, {0, 2, 99, 1, 1}}, 2, []int32{2, 1}}, // argmax would give 1 and 2
		{[][]int64{{49406, 5, 49407}, {0, 7, 2}}, 2, []int32{0, 2}},       // not every row has 49407 → first eos; none → 0
		{[][]int64{{49406, 320, 49407, 0}, {49406, 49407, 0, 0}}, 49407, []int32{2, 1}},
	}
	for i, c := range cases {
		got := graph.MustExecOnce(backend, func(ids *graph.Node) *graph.Node { return PoolIndex(ids, c.eos) }, c.ids)
		require.Equal(t, c.want, tensors.MustCopyFlatData[int32](got), "case %d", i)
	}
}

// TestRealConfigsDeclareManifestKeys builds the real SD1.5 and SDXL text encoders shape-only and
// compares their weights with the fixtures/real manifests (position_ids ignored).
func TestRealConfigsDeclareManifestKeys(t *testing.T) {
	real := filepath.Join(fixtures.Root(t), "real")
	for _, c := range []struct{ config, manifest string }{
		{"configs/sd15/text_encoder", "manifests/diffusers/sd15/text_encoder.json"},
		{"configs/sdxl_base/text_encoder", "manifests/diffusers/sdxl_base/text_encoder.json"},
		{"configs/sdxl_base/text_encoder_2", "manifests/diffusers/sdxl_base/text_encoder_2.json"},
	} {
		t.Run(c.config, func(t *testing.T) {
			cfg, err := LoadConfig(filepath.Join(real, c.config, "config.json"))
			require.NoError(t, err)
			model, err := New(cfg)
			require.NoError(t, err)
			decl, err := model.Declared()
			require.NoError(t, err)
			raw, err := os.ReadFile(filepath.Join(real, c.manifest))
			require.NoError(t, err)
			var manifest map[string]struct {
				Shape []int `json:"shape"`
			}
			require.NoError(t, json.Unmarshal(raw, &manifest))
			want := map[string]string{}
			for k, v := range manifest {
				if !IgnoredKey(k) {
					want[k] = fmt.Sprint(v.Shape)
				}
			}
			got := map[string]string{}
			for k, s := range decl {
				got[k] = fmt.Sprint(s.Dimensions)
			}
			require.Equal(t, want, got)
			_, hasProjection := decl["text_projection.weight"]
			require.Equal(t, cfg.WithProjection(), hasProjection)
		})
	}
}
