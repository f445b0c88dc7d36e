package clip

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
)

// TestSaveTokenizer: a tokenizer saved as a transformers folder loads back with the same ids for
// every prompt of the tokenizer cases, and keeps its padding id and max length.
func TestSaveTokenizer(t *testing.T) {
	dir := filepath.Join(fixtures.Root(t), "tokenizer")
	gz, err := filepath.Glob(filepath.Join(dir, "*.gz"))
	require.NoError(t, err)
	require.NotEmpty(t, gz)
	orig, err := LoadBPE(gz[0])
	require.NoError(t, err)
	orig.Pad, orig.MaxLength = 0, 33
	out := t.TempDir()
	require.NoError(t, orig.SaveTokenizer(out))
	back, err := LoadTokenizer(out)
	require.NoError(t, err)
	require.Equal(t, orig.VocabSize(), back.VocabSize())
	require.Equal(t, 0, back.Pad)
	require.Equal(t, 33, back.MaxLength)

	var cases struct {
		Cases []struct {
			Prompt string `json:"prompt"`
		} `json:"cases"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &cases))
	require.NotEmpty(t, cases.Cases)
	for _, c := range cases.Cases {
		want, err := orig.Encode(c.Prompt)
		require.NoError(t, err)
		got, err := back.Encode(c.Prompt)
		require.NoError(t, err)
		require.Equal(t, want, got, c.Prompt)
	}
}
