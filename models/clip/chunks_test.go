package clip

import (
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
)

// TestLongPromptChunks: a prompt longer than 75 tokens is encoded window by window and the hidden
// states concatenated; each window's slice equals that window encoded on its own, and the first
// window equals the plain (truncated) encoding of the prompt.
func TestLongPromptChunks(t *testing.T) {
	backend := testutil.Backend(t)
	tok, err := LoadBPE(fixtures.BPEPath(fixtures.Root(t)))
	require.NoError(t, err)
	dir := fixtures.Cases(t, "clip_text")[0]
	model, ctx, err := Load(dir)
	require.NoError(t, err)
	maxLen := model.Config.MaxPositionEmbeddings
	prompt := strings.Repeat("a photo of a red cube on a blue floor, ", 12) // > 75 tokens
	chunks, err := tok.EncodeChunks(prompt, maxLen, tok.EOS)
	require.NoError(t, err)
	require.Greater(t, len(chunks), 1)
	ids := make([][]int64, len(chunks))
	for i, c := range chunks {
		for _, id := range c {
			ids[i] = append(ids[i], int64(id%model.Config.VocabSize))
		}
	}
	joined := gmodel.MustExecOnce(backend, ctx.Store(), func(_ *gmodel.Scope, ids *Node) *Node {
		return JoinChunks(model.Forward(ctx, ids).LastHiddenState, len(chunks))
	}, ids)
	require.Equal(t, []int{1, len(chunks) * maxLen, model.Config.HiddenSize}, joined.Shape().Dimensions)
	got := tensors.MustCopyFlatData[float32](joined)
	per := maxLen * model.Config.HiddenSize
	for i := range chunks {
		one, err := model.Exec(backend, ctx, tensors.FromValue([][]int64{ids[i]}))
		require.NoError(t, err)
		want := tensors.MustCopyFlatData[float32](one.LastHiddenState)
		require.Less(t, testutil.RelErr(got[i*per:(i+1)*per], want), 1e-6, "chunk %d", i)
	}
	plain, err := tok.EncodeFixed(prompt, maxLen, tok.EOS)
	require.NoError(t, err)
	require.Equal(t, chunks[0], plain)
}

func TestFirstChunk(t *testing.T) {
	backend := testutil.Backend(t)
	out := MustExecOnce(backend, func(x *Node) *Node { return FirstChunk(x, 3) },
		[][]float32{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}, {10, 11}}) // 2 prompts × 3 chunks
	require.Equal(t, [][]float32{{0, 1}, {6, 7}}, out.Value())
}
