package hub

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
)

// partial is a download in progress: blobs/<etag>.incomplete, the name huggingface_hub uses, so
// that either can resume what the other left. It survives failures and process restarts; the
// next download appends to it (an HTTP Range request). Writes through it are hashed when the
// blob is named by its sha256 (LFS files), and counted on the progress bar.
type partial struct {
	f      *os.File
	path   string
	size   int64 // bytes in the file
	want   int64 // the blob's size, -1 until known
	h      hash.Hash
	hashed int64 // bytes of the file fed to h
	prog   *progress
}

// writeError marks a failure to write the partial file (not worth a retry).
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// openPartial opens (or creates) blob's partial file. A partial larger than the blob is dropped.
func openPartial(blob string, m *fileMeta, prog *progress) (*partial, error) {
	path := blob + ".incomplete"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("hub: opening %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("hub: opening %s: %w", path, err)
	}
	p := &partial{f: f, path: path, size: st.Size(), want: m.size, prog: prog}
	if sha256RE.MatchString(m.etag) {
		p.h = sha256.New()
	}
	prog.add(p.size)
	if p.want >= 0 && p.size > p.want {
		if err := p.reset(); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	return p, nil
}

// setWant records the blob's size once an answer tells it.
func (p *partial) setWant(n int64) {
	if p.want < 0 && n >= 0 {
		p.want = n
		p.prog.grow(n)
	}
}

// reset empties the file: the download restarts from 0.
func (p *partial) reset() error {
	if err := p.f.Truncate(0); err != nil {
		return &writeError{fmt.Errorf("hub: truncating %s: %w", p.path, err)}
	}
	if _, err := p.f.Seek(0, io.SeekStart); err != nil {
		return &writeError{fmt.Errorf("hub: seeking in %s: %w", p.path, err)}
	}
	p.prog.add(-p.size)
	p.size, p.hashed = 0, 0
	if p.h != nil {
		p.h.Reset()
	}
	return nil
}

// prepare positions the file at its end for appending, hashing what is already there (the part
// an earlier attempt or process wrote) when that is not hashed yet.
func (p *partial) prepare() error {
	if p.h != nil && p.hashed != p.size {
		p.h.Reset()
		if _, err := io.Copy(p.h, io.NewSectionReader(p.f, 0, p.size)); err != nil {
			return &writeError{fmt.Errorf("hub: reading %s: %w", p.path, err)}
		}
		p.hashed = p.size
	}
	if _, err := p.f.Seek(p.size, io.SeekStart); err != nil {
		return &writeError{fmt.Errorf("hub: seeking in %s: %w", p.path, err)}
	}
	return nil
}

// Write appends b to the file (and the hash, and the progress bar).
func (p *partial) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	if p.h != nil {
		p.h.Write(b[:n])
		p.hashed += int64(n)
	}
	p.size += int64(n)
	p.prog.add(int64(n))
	if err != nil {
		return n, &writeError{fmt.Errorf("hub: writing %s: %w", p.path, err)}
	}
	return n, nil
}

// complete reports whether the whole blob is on disk.
func (p *partial) complete() bool { return p.want >= 0 && p.size == p.want }

// commit checks the finished file against the Hub's size and sha256 and renames it to blob. On
// a sha256 mismatch the partial file is deleted (its bytes cannot be trusted); a short file is
// kept, for the next call to resume.
func (p *partial) commit(blob, etag, label string) error {
	st, err := p.f.Stat()
	if err != nil {
		return fmt.Errorf("hub: downloading %s: %w", label, err)
	}
	if st.Size() != p.size {
		p.close()
		_ = os.Remove(p.path)
		return fmt.Errorf("hub: downloading %s: %s holds %d bytes, not the %d written to it; it was deleted, run again",
			label, p.path, st.Size(), p.size)
	}
	if p.want >= 0 && p.size > p.want {
		p.close()
		_ = os.Remove(p.path)
		return fmt.Errorf("hub: downloading %s: got %d bytes, more than the %d the Hub announced; the partial file was deleted, run again",
			label, p.size, p.want)
	}
	if p.want >= 0 && p.size != p.want {
		return fmt.Errorf("hub: downloading %s: got %d bytes, want %d (truncated download; %s is kept and the next try resumes it)",
			label, p.size, p.want, filepath.Base(p.path))
	}
	if p.h != nil {
		if err := p.prepare(); err != nil {
			return err
		}
		if got := hex.EncodeToString(p.h.Sum(nil)); got != etag {
			p.close()
			_ = os.Remove(p.path)
			return fmt.Errorf("hub: downloading %s: sha256 %s does not match the Hub's %s (corrupted download; the partial file was deleted, run again to download it afresh)",
				label, got, etag)
		}
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("hub: downloading %s: syncing %s: %w", label, p.path, err)
	}
	p.close()
	if err := os.Chmod(p.path, 0o644); err != nil {
		return fmt.Errorf("hub: downloading %s: %w", label, err)
	}
	if err := os.Rename(p.path, blob); err != nil {
		return fmt.Errorf("hub: downloading %s: %w", label, err)
	}
	return nil
}

// close closes the file (again is a no-op).
func (p *partial) close() {
	if p.f != nil {
		_ = p.f.Close()
		p.f = nil
	}
}
