package clip

// Ports openai/CLIP clip/simple_tokenizer.py SimpleTokenizer (encode, decode), the vocabulary
// layouts of its bpe_simple_vocab_16e6.txt.gz and of transformers' CLIPTokenizer folders
// (vocab.json + merges.txt), and the fixed-length framing SD pipelines use.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// DefaultMaxLength is model_max_length of the SD1.x / SDXL CLIP tokenizers (BOS + 75 + EOS).
const DefaultMaxLength = 77

// maxMerges is how many merges SimpleTokenizer and transformers' CLIPTokenizer read:
// merges[1 : 49152-256-2+1].
const maxMerges = 49152 - 256 - 2

// Tokenizer is the CLIP byte-level BPE tokenizer.
type Tokenizer struct {
	vocab  map[string]int
	tokens map[int]string
	ranks  map[symbolPair]int

	// BOS and EOS are the ids of <|startoftext|> and <|endoftext|> in the vocabulary.
	BOS, EOS int
	// Pad is the default padding id: EOS (SD1.x tokenizer) unless a tokenizer folder names another
	// pad_token ("!" = 0 for SDXL's tokenizer_2).
	Pad int
	// MaxLength is the default fixed length: model_max_length of a tokenizer folder, else 77.
	MaxLength int

	mu    sync.Mutex
	cache map[string][]int
}

// NewTokenizer builds a tokenizer from a vocabulary (token → id) and the ranked merges.
func NewTokenizer(vocab map[string]int, merges [][2]string) (*Tokenizer, error) {
	t := &Tokenizer{vocab: vocab, tokens: make(map[int]string, len(vocab)), ranks: make(map[symbolPair]int, len(merges)),
		MaxLength: DefaultMaxLength, cache: map[string][]int{}}
	for tok, id := range vocab {
		if prev, dup := t.tokens[id]; dup {
			return nil, fmt.Errorf("clip: tokenizer vocabulary maps both %q and %q to id %d", prev, tok, id)
		}
		t.tokens[id] = tok
	}
	for i, m := range merges {
		t.ranks[symbolPair{m[0], m[1]}] = i // dict(zip(merges, range)): a repeated merge keeps its last rank
	}
	var ok bool
	if t.BOS, ok = vocab[StartOfText]; !ok {
		return nil, fmt.Errorf("clip: tokenizer vocabulary has no %s token", StartOfText)
	}
	if t.EOS, ok = vocab[EndOfText]; !ok {
		return nil, fmt.Errorf("clip: tokenizer vocabulary has no %s token", EndOfText)
	}
	t.Pad = t.EOS
	return t, nil
}

// LoadBPE reads openai/CLIP's merges file (bpe_simple_vocab_16e6.txt.gz, gzip or plain text) and
// builds the vocabulary exactly as SimpleTokenizer does: the 256 byte characters in
// bytes_to_unicode order, the same with "</w>", one token per merge (merges are lines
// 1..48894 after the version header) and <|startoftext|>, <|endoftext|> (49406, 49407 for the
// official file).
func LoadBPE(path string) (*Tokenizer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clip: reading BPE merges: %w", err)
	}
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("clip: reading BPE merges %s: %w", path, err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("clip: reading BPE merges %s: %w", path, err)
		}
	}
	lines := strings.Split(string(raw), "\n")
	lines = lines[1:min(len(lines), maxMerges+1)]
	vocabList := make([]string, 0, 512+len(lines)+2)
	for _, b := range byteOrder {
		vocabList = append(vocabList, string(byteEncoder[b]))
	}
	for _, b := range byteOrder {
		vocabList = append(vocabList, string(byteEncoder[b])+endOfWord)
	}
	var merges [][2]string
	for i, line := range lines {
		f := strings.Fields(line)
		vocabList = append(vocabList, strings.Join(f, ""))
		if len(f) == 2 {
			merges = append(merges, [2]string{f[0], f[1]})
		} else {
			// SimpleTokenizer keeps a malformed (e.g. empty last) line as a vocabulary entry that no
			// pair ever matches; keep the rank count aligned with a placeholder.
			merges = append(merges, [2]string{"\x00invalid", fmt.Sprint(i)})
		}
	}
	vocabList = append(vocabList, StartOfText, EndOfText)
	vocab := make(map[string]int, len(vocabList))
	for i, tok := range vocabList {
		vocab[tok] = i // dict(zip(vocab, range)): a repeated token keeps its last id
	}
	t, err := NewTokenizer(vocab, merges)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return t, nil
}

// LoadVocabMerges reads transformers' CLIPTokenizer files: vocab.json (token → id) and
// merges.txt (a "#version" line, then one "first second" merge per line; at most 48894 are read,
// as CLIPTokenizer does).
func LoadVocabMerges(vocabPath, mergesPath string) (*Tokenizer, error) {
	raw, err := os.ReadFile(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("clip: reading tokenizer vocabulary: %w", err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(raw, &vocab); err != nil {
		return nil, fmt.Errorf("clip: parsing tokenizer vocabulary %s: %w", vocabPath, err)
	}
	data, err := os.ReadFile(mergesPath)
	if err != nil {
		return nil, fmt.Errorf("clip: reading tokenizer merges: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	lines = lines[1:min(len(lines), maxMerges+1)]
	merges := make([][2]string, 0, len(lines))
	for i, line := range lines {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("clip: merges file %s line %d: want two symbols, got %q", mergesPath, i+2, line)
		}
		merges = append(merges, [2]string{fields[0], fields[1]})
	}
	t, err := NewTokenizer(vocab, merges)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, vocabPath)
	}
	return t, nil
}

// LoadTokenizer reads a transformers tokenizer folder (diffusers' tokenizer/ and tokenizer_2/):
// vocab.json and merges.txt, plus, when present, pad_token from special_tokens_map.json or
// tokenizer_config.json (Pad) and model_max_length from tokenizer_config.json (MaxLength).
func LoadTokenizer(dir string) (*Tokenizer, error) {
	t, err := LoadVocabMerges(filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt"))
	if err != nil {
		return nil, err
	}
	var cfg struct {
		PadToken       json.RawMessage `json:"pad_token"`
		ModelMaxLength *float64        `json:"model_max_length"`
	}
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json"} { // the map wins
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
		cfg.PadToken = nil
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, fmt.Errorf("clip: parsing %s: %w", filepath.Join(dir, name), err)
		}
		if cfg.PadToken != nil {
			pad, err := addedTokenContent(cfg.PadToken)
			if err != nil {
				return nil, fmt.Errorf("clip: %s pad_token: %w", filepath.Join(dir, name), err)
			}
			id, ok := t.vocab[pad]
			if !ok {
				return nil, fmt.Errorf("clip: %s: pad_token %q is not in the vocabulary", filepath.Join(dir, name), pad)
			}
			t.Pad = id
		}
	}
	if m := cfg.ModelMaxLength; m != nil && *m >= 2 && *m < 1e9 {
		t.MaxLength = int(*m)
	}
	return t, nil
}

// addedTokenContent reads a token given as a string or as an AddedToken object {"content": …}.
func addedTokenContent(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Content == nil {
		return "", fmt.Errorf("want a string or an object with \"content\", got %s", raw)
	}
	return *obj.Content, nil
}

// VocabSize is the number of tokens in the vocabulary.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// TokenID is the id of a vocabulary token.
func (t *Tokenizer) TokenID(token string) (int, bool) {
	id, ok := t.vocab[token]
	return id, ok
}

// Encode ports SimpleTokenizer.encode: the BPE ids of prompt, without BOS/EOS and not truncated.
// The prompt is cleaned (CleanText), split with SimpleTokenizer's pattern, each piece's UTF-8
// bytes are mapped to printable characters and merged by BPE. A literal "<|startoftext|>" or
// "<|endoftext|>" in the prompt gives the special id.
func (t *Tokenizer) Encode(prompt string) ([]int, error) {
	ids := []int{}
	for _, piece := range pretokenize(CleanText(prompt)) {
		if piece == StartOfText || piece == EndOfText {
			ids = append(ids, t.vocab[piece])
			continue
		}
		pieceIDs, err := t.encodePiece(byteEncode(piece))
		if err != nil {
			return nil, err
		}
		ids = append(ids, pieceIDs...)
	}
	return ids, nil
}

func (t *Tokenizer) encodePiece(token string) ([]int, error) {
	t.mu.Lock()
	ids, ok := t.cache[token]
	t.mu.Unlock()
	if ok {
		return ids, nil
	}
	for _, sym := range bpe(t.ranks, token) {
		id, ok := t.vocab[sym]
		if !ok {
			return nil, fmt.Errorf("clip: BPE symbol %q (of %q) is not in the vocabulary", sym, token)
		}
		ids = append(ids, id)
	}
	t.mu.Lock()
	if len(t.cache) > 1<<16 {
		clear(t.cache)
	}
	t.cache[token] = ids
	t.mu.Unlock()
	return ids, nil
}

// EncodeFixed is the fixed-length encoding of SD pipelines (CLIPTokenizer with
// padding="max_length", truncation=True): [BOS] + tokens[:maxLen-2] + [EOS], then padID up to
// maxLen. SD1.x pads with EOS (49407), SDXL's second tokenizer with 0 ("!").
func (t *Tokenizer) EncodeFixed(prompt string, maxLen, padID int) ([]int, error) {
	if maxLen < 2 {
		return nil, fmt.Errorf("clip: EncodeFixed: maxLen %d leaves no room for BOS and EOS", maxLen)
	}
	tokens, err := t.Encode(prompt)
	if err != nil {
		return nil, err
	}
	return t.frame(tokens[:min(len(tokens), maxLen-2)], maxLen, padID), nil
}

// EncodeChunks is the long-prompt encoding of A1111 / ComfyUI: the tokens are cut into windows of
// maxLen-2 and each window becomes [BOS] + window + [EOS] + padding to maxLen. An empty prompt
// gives one chunk. The text encoder runs on each chunk and the hidden states are concatenated
// along the sequence axis. (A1111's optional back-tracking to the last comma is not done.)
func (t *Tokenizer) EncodeChunks(prompt string, maxLen, padID int) ([][]int, error) {
	if maxLen < 3 {
		return nil, fmt.Errorf("clip: EncodeChunks: maxLen %d leaves no room for tokens", maxLen)
	}
	tokens, err := t.Encode(prompt)
	if err != nil {
		return nil, err
	}
	window := maxLen - 2
	chunks := [][]int{}
	for start := 0; start == 0 || start < len(tokens); start += window {
		chunks = append(chunks, t.frame(tokens[start:min(len(tokens), start+window)], maxLen, padID))
	}
	return chunks, nil
}

func (t *Tokenizer) frame(tokens []int, maxLen, padID int) []int {
	ids := make([]int, 0, maxLen)
	ids = append(ids, t.BOS)
	ids = append(ids, tokens...)
	ids = append(ids, t.EOS)
	for len(ids) < maxLen {
		ids = append(ids, padID)
	}
	return ids
}

// Decode ports SimpleTokenizer.decode: the tokens' characters are mapped back to bytes, decoded
// as UTF-8 (ill-formed parts become U+FFFD) and "</w>" becomes a space.
func (t *Tokenizer) Decode(ids []int) (string, error) {
	var raw []byte
	for _, id := range ids {
		tok, ok := t.tokens[id]
		if !ok {
			return "", fmt.Errorf("clip: Decode: id %d is not in the vocabulary", id)
		}
		for _, r := range tok {
			b, ok := byteDecoder[r]
			if !ok {
				return "", fmt.Errorf("clip: Decode: token %q (id %d) has a character outside the byte alphabet", tok, id)
			}
			raw = append(raw, b)
		}
	}
	return strings.ReplaceAll(pyDecodeUTF8Replace(raw), endOfWord, " "), nil
}
