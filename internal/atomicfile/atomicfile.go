// Package atomicfile writes files so that a reader never sees a half-written one: the content
// goes to a temporary file in the same folder, is synced, and is renamed over the target. On any
// error the temporary file is removed and the target is left as it was.
package atomicfile

import (
	"bufio"
	"io"
	"os"
	"path/filepath"

	"github.com/loba-dev/loba/internal/killpoint"
)

// Write writes the content produced by fill to path atomically (mode 0644).
func Write(path string, fill func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = fill(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	killpoint.Here("write:" + filepath.Base(path)) // the crash tests: the temporary file written, not renamed
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmpName, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil { // best effort: persist the rename
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// WriteFile writes data to path atomically (mode 0644).
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
