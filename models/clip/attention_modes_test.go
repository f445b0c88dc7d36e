package clip

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/safetensors"
)

// TestTextModelParityChunkedAttention runs every clip_text fixture case with the causal
// self-attention chunked (24 query rows: 77 tokens are 4 chunks, the last of 5 rows, each with its
// own slice of the causal mask) and compares every hidden state, the last hidden state and the
// text embeddings with transformers (relative L2 < textParityTol, as TestTextModelParity).
func TestTextModelParityChunkedAttention(t *testing.T) {
	backend := testutil.Backend(t)
	for _, dir := range fixtures.Cases(t, "clip_text") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m, ctx, err := Load(dir)
			require.NoError(t, err)
			io, err := safetensors.Open(filepath.Join(dir, "io.safetensors"))
			require.NoError(t, err)
			defer io.Close()
			ids, idsShape, err := io.Int64s("in.input_ids")
			require.NoError(t, err)
			barriers := 0
			exec, err := model.NewExec(backend, ctx.Store(), func(_ *model.Scope, ids *graph.Node) []*graph.Node {
				nn.UseMemoryOptions(ids.Graph(), nn.MemoryOptions{Attention: nn.AttentionChunked, AttentionChunk: 24})
				o := m.Forward(ctx, ids)
				for _, n := range ids.Graph().Nodes() {
					if n.Type() == graph.NodeTypeSchedulingBarrier {
						barriers++
					}
				}
				outs := append([]*graph.Node{o.LastHiddenState}, o.HiddenStates...)
				if o.TextEmbeds != nil {
					// Also needed because the Go backend fails to run a graph whose last
					// parameter (here text_projection's weight) goes unused.
					outs = append(outs, o.TextEmbeds)
				}
				return outs
			})
			require.NoError(t, err)
			got, err := exec.Exec(tensors.FromFlatDataAndDimensions(ids, idsShape...))
			require.NoError(t, err)
			require.Equal(t, 3*m.Config.NumHiddenLayers, barriers, "4 chunks per layer")
			names := []string{"out.last_hidden_state"}
			for i := range m.Config.NumHiddenLayers + 1 {
				names = append(names, "out.hidden_states."+strconv.Itoa(i))
			}
			if len(got) > len(names) {
				names = append(names, "out.text_embeds")
			}
			for i, name := range names {
				want, wantShape, err := io.Float32s(name)
				require.NoError(t, err)
				require.Equal(t, wantShape, got[i].Shape().Dimensions, name)
				rel := testutil.RelErr(tensors.MustCopyFlatData[float32](got[i]), want)
				t.Logf("%-24s rel L2 %.3g", name, rel)
				require.Less(t, rel, textParityTol, name)
			}
		})
	}
}
