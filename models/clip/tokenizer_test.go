package clip

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/stretchr/testify/require"
)

// tokenizerCases is the layout of fixtures/tokenizer/cases.json.
type tokenizerCases struct {
	VocabFile struct {
		Name string `json:"name"`
	} `json:"vocab_file"`
	Cases []struct {
		Prompt          string  `json:"prompt"`
		Tokens          []int   `json:"tokens"`
		InputIDsPadEOS  []int   `json:"input_ids_pad_eos"`
		InputIDsPadZero []int   `json:"input_ids_pad_zero"`
		Decoded         *string `json:"decoded"`
	} `json:"cases"`
}

func readTokenizerCases(t *testing.T) (string, *tokenizerCases) {
	dir := filepath.Join(fixtures.Root(t), "tokenizer")
	raw, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	require.NoError(t, err)
	var tc tokenizerCases
	require.NoError(t, json.Unmarshal(raw, &tc))
	require.NotEmpty(t, tc.Cases)
	return dir, &tc
}

// mergesPath is the openai BPE merges file named by cases.json, else the only *.gz of the folder,
// else "" (a folder that ships only vocab.json + merges.txt).
func mergesPath(t *testing.T, dir string, tc *tokenizerCases) string {
	if tc.VocabFile.Name != "" {
		return filepath.Join(dir, tc.VocabFile.Name)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.gz"))
	require.LessOrEqual(t, len(files), 1, "several BPE merges files in %s", dir)
	if len(files) == 0 {
		return ""
	}
	return files[0]
}

// writeHFTokenizer lays out, in dir, the vocab.json and merges.txt that transformers'
// CLIPTokenizer folders hold for the given openai merges file (the layout of
// openai/clip-vit-large-patch14: vocab.json = {token: id} in id order, merges.txt = a "#version"
// line then the 48894 merges), built here independently of LoadBPE.
func writeHFTokenizer(t *testing.T, gzPath, dir string) {
	raw, err := os.ReadFile(gzPath)
	require.NoError(t, err)
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	require.NoError(t, err)
	text, err := io.ReadAll(zr)
	require.NoError(t, err)
	lines := strings.Split(string(text), "\n")
	lines = lines[1:min(len(lines), 49152-256-2+1)]

	// bytes_to_unicode, in dict order.
	var bs []int
	for b := 0; b < 256; b++ {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE {
			bs = append(bs, b)
		}
	}
	chars := map[int]string{}
	for _, b := range bs {
		chars[b] = string(rune(b))
	}
	n := 0
	for b := 0; b < 256; b++ {
		if _, ok := chars[b]; !ok {
			bs = append(bs, b)
			chars[b] = string(rune(256 + n))
			n++
		}
	}
	var vocab []string
	for _, b := range bs {
		vocab = append(vocab, chars[b])
	}
	for _, b := range bs {
		vocab = append(vocab, chars[b]+"</w>")
	}
	for _, l := range lines {
		vocab = append(vocab, strings.ReplaceAll(l, " ", ""))
	}
	vocab = append(vocab, "<|startoftext|>", "<|endoftext|>")

	var js bytes.Buffer
	js.WriteString("{")
	for id, tok := range vocab {
		k, err := json.Marshal(tok)
		require.NoError(t, err)
		if id > 0 {
			js.WriteString(",")
		}
		fmt.Fprintf(&js, "%s:%d", k, id)
	}
	js.WriteString("}")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vocab.json"), js.Bytes(), 0o644))
	merges := "#version: 0.2\n" + strings.Join(lines, "\n") + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "merges.txt"), []byte(merges), 0o644))
	// tokenizer_2 of SDXL: pad_token "!" (id 0).
	require.NoError(t, os.WriteFile(filepath.Join(dir, "special_tokens_map.json"), []byte(`{"pad_token": "!"}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"model_max_length": 77, "pad_token": "<|endoftext|>"}`), 0o644))
}

// TestTokenizerCases checks every prompt of cases.json (tokens, both 77-id framings, decode)
// with the tokenizer loaded from the openai merges file and from HF-layout vocab.json/merges.txt.
func TestTokenizerCases(t *testing.T) {
	dir, tc := readTokenizerCases(t)
	type named struct {
		name string
		tok  *Tokenizer
	}
	var tokenizers []named
	if gzPath := mergesPath(t, dir, tc); gzPath != "" {
		fromGz, err := LoadBPE(gzPath)
		require.NoError(t, err)
		require.Equal(t, fromGz.EOS, fromGz.Pad)
		hfDir := t.TempDir()
		writeHFTokenizer(t, gzPath, hfDir)
		fromHF, err := LoadTokenizer(hfDir)
		require.NoError(t, err)
		require.Equal(t, 0, fromHF.Pad, "pad_token \"!\" of special_tokens_map.json")
		tokenizers = append(tokenizers, named{"bpe_gz", fromGz}, named{"vocab_merges", fromHF})
	}
	if _, err := os.Stat(filepath.Join(dir, "vocab.json")); err == nil { // a fixture may ship HF files too
		fixtureHF, err := LoadTokenizer(dir)
		require.NoError(t, err)
		tokenizers = append(tokenizers, named{"fixture_vocab_merges", fixtureHF})
	}
	require.NotEmpty(t, tokenizers, "no tokenizer files in %s", dir)
	for _, tk := range tokenizers {
		t.Run(tk.name, func(t *testing.T) {
			tok := tk.tok
			require.Equal(t, StartOfText, tok.tokens[tok.BOS])
			require.Equal(t, EndOfText, tok.tokens[tok.EOS])
			for i, c := range tc.Cases {
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					got, err := tok.Encode(c.Prompt)
					require.NoError(t, err)
					require.Equal(t, c.Tokens, got, "tokens of %q (cleaned %q)", c.Prompt, CleanText(c.Prompt))

					maxLen := len(c.InputIDsPadEOS)
					padEOS, err := tok.EncodeFixed(c.Prompt, maxLen, tok.EOS)
					require.NoError(t, err)
					require.Equal(t, c.InputIDsPadEOS, padEOS, "input_ids_pad_eos of %q", c.Prompt)
					padZero, err := tok.EncodeFixed(c.Prompt, len(c.InputIDsPadZero), 0)
					require.NoError(t, err)
					require.Equal(t, c.InputIDsPadZero, padZero, "input_ids_pad_zero of %q", c.Prompt)

					chunks, err := tok.EncodeChunks(c.Prompt, maxLen, tok.EOS)
					require.NoError(t, err)
					require.Equal(t, c.InputIDsPadEOS, chunks[0])
					window := maxLen - 2
					require.Len(t, chunks, max(1, (len(c.Tokens)+window-1)/window))
					for k, ch := range chunks {
						want := append([]int{tok.BOS}, c.Tokens[k*window:min(len(c.Tokens), (k+1)*window)]...)
						want = append(want, tok.EOS)
						for len(want) < maxLen {
							want = append(want, tok.EOS)
						}
						require.Equal(t, want, ch, "chunk %d of %q", k, c.Prompt)
					}

					if c.Decoded != nil {
						dec, err := tok.Decode(c.Tokens)
						require.NoError(t, err)
						require.Equal(t, *c.Decoded, dec)
					}
				})
			}
		})
	}
}
