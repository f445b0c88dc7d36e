package train

// The text-conditioning cache: every prompt's E[p] (docs/ALGORITHMS.md notation) on disk in the run folder,
// so that a later cell, or a resumed run, skips loading and running the text encoders. Each notebook
// cell is a process of its own (GoNB), so state that should outlive a cell lives on disk; this is the
// "cache latents / text encoder outputs to disk" of kohya sd-scripts, for prompts.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/sd"
)

// condCacheVersion is part of the key: bump it when the encoding itself changes (a fix in the text
// encoders or the tokenizer), so that caches written before are not used.
const condCacheVersion = "1"

const (
	condCacheKeyMeta     = "loba.cache_key"
	condCachePromptsMeta = "loba.prompts"
)

// condCacheKey identifies what the conditionings depend on: the model (folder or single file), the
// text encoders' and tokenizers' files (path, size, modification time), and the encode settings. A
// change to any of them makes the cache miss.
func condCacheKey(modelDir string, settings map[string]string) (string, error) {
	abs, err := filepath.Abs(modelDir)
	if err != nil {
		return "", err
	}
	var files, sources []string
	if sd.IsSingleFile(modelDir) {
		files, sources, err = singleFileCondFiles(modelDir)
	} else {
		files, err = folderCondFiles(modelDir)
	}
	if err != nil {
		return "", err
	}
	type stamp struct {
		Path        string
		Size, MTime int64
	}
	stamps := make([]stamp, 0, len(files))
	for _, path := range files {
		info, err := os.Stat(path) // the file itself: hub snapshots link to blobs
		if err != nil {
			return "", err
		}
		stamps = append(stamps, stamp{Path: path, Size: info.Size(), MTime: info.ModTime().UnixNano()})
	}
	sort.Slice(stamps, func(i, j int) bool { return stamps[i].Path < stamps[j].Path })
	data, err := json.Marshal(struct {
		Version  string
		Model    string
		Settings map[string]string
		Files    []stamp
		Sources  []string `json:",omitempty"`
	}{condCacheVersion, abs, settings, stamps, sources})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// folderCondFiles lists the files of a diffusers folder's text_encoder(_2)/ and tokenizer(_2)/.
func folderCondFiles(modelDir string) ([]string, error) {
	comps, err := sd.ReadComponents(modelDir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, c := range comps {
		switch c.Name {
		case "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2":
		default:
			continue
		}
		if c.Dir == "" {
			continue
		}
		root, err := filepath.EvalSymlinks(c.Dir) // composed folders link their components
		if err != nil {
			return nil, err
		}
		err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, path)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// singleFileCondFiles lists what the conditioning of a single-file checkpoint depends on
// (sd.SingleFileSource.ConditioningFiles), and names each tokenizer the config folder lacks by the
// hub folder LoadPipeline fetches it from (a tokenizer override is in the settings).
func singleFileCondFiles(path string) (files, sources []string, err error) {
	src, err := sd.ResolveSingleFile(path, sd.SingleFileOptions{})
	if err != nil {
		return nil, nil, err
	}
	for i, dir := range src.Tokenizers {
		if dir == "" {
			sources = append(sources, fmt.Sprintf("hub %s tokenizer %d", src.HubRepo, i+1))
		}
	}
	return src.ConditioningFiles(), sources, nil
}

// loadCondCache returns the cached conditioning of every prompt in want, or ok false when the file
// is absent, was made for another key, lacks a prompt, or cannot be read (a cache: the caller then
// encodes again and overwrites it). why says which of the last three, for the log ("" when absent).
func loadCondCache(path, key string, want []string) (conds map[string]sd.Conditioning, ok bool, why string) {
	if _, err := os.Stat(path); err != nil {
		return nil, false, ""
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, false, err.Error()
	}
	defer f.Close()
	meta := f.Metadata()
	if meta[condCacheKeyMeta] != key {
		return nil, false, "made for another model or settings"
	}
	var prompts []string
	if err := json.Unmarshal([]byte(meta[condCachePromptsMeta]), &prompts); err != nil {
		return nil, false, fmt.Sprintf("metadata %s: %v", condCachePromptsMeta, err)
	}
	index := make(map[string]int, len(prompts))
	for i, p := range prompts {
		index[p] = i
	}
	conds = make(map[string]sd.Conditioning, len(want))
	for _, p := range want {
		i, found := index[p]
		if !found {
			return nil, false, fmt.Sprintf("prompt %q is not cached", p)
		}
		var c sd.Conditioning
		if c.Hidden, err = f.FiniteTensor(condCacheName("hidden", i), dtypes.Float32); err != nil {
			return nil, false, err.Error()
		}
		if d := c.Hidden.Shape().Dimensions; len(d) != 3 || d[0] != 1 {
			return nil, false, fmt.Sprintf("%s has shape %v, want [1, tokens, hidden]", condCacheName("hidden", i), d)
		}
		if _, has := f.Info(condCacheName("pooled", i)); has {
			if c.TextEmbeds, err = f.FiniteTensor(condCacheName("pooled", i), dtypes.Float32); err != nil {
				return nil, false, err.Error()
			}
		}
		conds[p] = c
	}
	return conds, true, ""
}

func condCacheName(kind string, i int) string { return kind + "." + strconv.Itoa(i) }

// saveCondCache writes the conditionings (batch-1 rows, float32) atomically.
func saveCondCache(path, key string, conds map[string]sd.Conditioning) error {
	prompts := make([]string, 0, len(conds))
	for p := range conds {
		prompts = append(prompts, p)
	}
	sort.Strings(prompts)
	ts := make(map[string]*tensors.Tensor, 2*len(prompts))
	for i, p := range prompts {
		ts[condCacheName("hidden", i)] = conds[p].Hidden
		if conds[p].TextEmbeds != nil {
			ts[condCacheName("pooled", i)] = conds[p].TextEmbeds
		}
	}
	names, err := json.Marshal(prompts)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return safetensors.Write(path, ts, map[string]string{condCacheKeyMeta: key, condCachePromptsMeta: string(names)})
}
