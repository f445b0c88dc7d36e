package clip

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTrainBPE: a BPE learned on a small corpus encodes each corpus word as one token, other text
// byte by byte, and round-trips through the transformers folder layout.
func TestTrainBPE(t *testing.T) {
	corpus := []string{"a large red circle on a white background", "a small blue square", "a big green triangle, black background", "yellow"}
	tok, err := TrainBPE(corpus, 10000)
	require.NoError(t, err)
	for _, w := range []string{"large", "red", "circle", "white", "background", "triangle", "yellow", ","} {
		ids, err := tok.Encode(w)
		require.NoError(t, err)
		require.Len(t, ids, 1, "%q should be one token, got %v", w, ids)
	}
	ids, err := tok.Encode("zebra")
	require.NoError(t, err)
	require.Greater(t, len(ids), 1, "an unseen word falls back to smaller pieces")
	text, err := tok.Decode(ids)
	require.NoError(t, err)
	require.Equal(t, "zebra ", text)
	require.Less(t, tok.VocabSize(), 700)
	require.Equal(t, tok.VocabSize()-2, tok.BOS)
	require.Equal(t, tok.VocabSize()-1, tok.EOS)

	dir := t.TempDir()
	require.NoError(t, tok.SaveTokenizer(dir))
	back, err := LoadTokenizer(dir)
	require.NoError(t, err)
	for _, c := range corpus {
		a, err := tok.EncodeFixed(c, 16, tok.EOS)
		require.NoError(t, err)
		b, err := back.EncodeFixed(c, 16, back.EOS)
		require.NoError(t, err)
		require.Equal(t, a, b)
	}
}
