package toyworld

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/loba-dev/loba/internal/atomicfile"
)

// EnvModel overrides the default toy model folder.
const EnvModel = "LOBA_TOY_MODEL"

// BaseDir is the toy base model folder a preset without model.name_or_path trains on: $LOBA_TOY_MODEL
// when set, else the model embedded in the binary (BaseFS), extracted once into the user cache
// (<cache>/loba/toybase-<content hash>).
func BaseDir() (string, error) {
	if dir := os.Getenv(EnvModel); dir != "" {
		return dir, nil
	}
	if !HasBase() {
		return "", fmt.Errorf("this build embeds no trained toy model yet (models/toyworld/base): set model.name_or_path, " +
			"or train one with `loba toyworld train --out DIR` and set " + EnvModel + "=DIR")
	}
	return extract(BaseFS())
}

// extract copies fsys into the cache under a name derived from its content, unless already there.
func extract(fsys fs.FS) (string, error) {
	var files []string
	if err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	}); err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(data))
		h.Write(data)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "loba", "toybase-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dir, "model_index.json")); err == nil {
		return dir, nil
	}
	// model_index.json last: an interrupted extraction is not mistaken for a complete one.
	ordered := make([]string, 0, len(files))
	for _, f := range files {
		if f != "model_index.json" {
			ordered = append(ordered, f)
		}
	}
	files = append(ordered, "model_index.json")
	for _, f := range files {
		dst := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", err
		}
		src, err := fsys.Open(f)
		if err != nil {
			return "", err
		}
		err = atomicfile.Write(dst, func(w io.Writer) error { _, err := io.Copy(w, src); return err })
		src.Close()
		if err != nil {
			return "", err
		}
	}
	return dir, nil
}
