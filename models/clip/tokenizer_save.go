package clip

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/loba-dev/loba/internal/atomicfile"
)

// SaveTokenizer writes t as a transformers tokenizer folder, the layout LoadTokenizer reads and
// diffusers' tokenizer/ holds: vocab.json ({token: id} in id order), merges.txt ("#version: 0.2"
// then one merge per line, by rank), special_tokens_map.json (pad_token) and tokenizer_config.json
// (model_max_length). It turns openai's BPE file (LoadBPE) into the folder a pipeline expects.
func (t *Tokenizer) SaveTokenizer(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	ids := make([]int, 0, len(t.tokens))
	for id := range t.tokens {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	var vocab bytes.Buffer
	vocab.WriteString("{")
	for i, id := range ids {
		k, err := json.Marshal(t.tokens[id])
		if err != nil {
			return fmt.Errorf("clip: %w", err)
		}
		if i > 0 {
			vocab.WriteString(",")
		}
		fmt.Fprintf(&vocab, "%s:%d", k, id)
	}
	vocab.WriteString("}")

	pairs := make([]symbolPair, 0, len(t.ranks))
	for p := range t.ranks {
		pairs = append(pairs, p)
	}
	sort.Slice(pairs, func(i, j int) bool { return t.ranks[pairs[i]] < t.ranks[pairs[j]] })
	var merges bytes.Buffer
	merges.WriteString("#version: 0.2\n")
	for _, p := range pairs {
		fmt.Fprintf(&merges, "%s %s\n", p.first, p.second)
	}

	special, err := json.MarshalIndent(map[string]string{
		"bos_token": StartOfText, "eos_token": EndOfText, "unk_token": EndOfText, "pad_token": t.tokens[t.Pad],
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	config, err := json.MarshalIndent(map[string]any{
		"model_max_length": t.MaxLength, "tokenizer_class": "CLIPTokenizer",
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	for name, data := range map[string][]byte{
		"vocab.json": vocab.Bytes(), "merges.txt": merges.Bytes(),
		"special_tokens_map.json": special, "tokenizer_config.json": config,
	} {
		if err := atomicfile.WriteFile(filepath.Join(dir, name), data); err != nil {
			return fmt.Errorf("clip: %w", err)
		}
	}
	return nil
}
