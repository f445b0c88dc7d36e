package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// lockPoll is how often a download waiting for another one's lock looks again.
const lockPoll = 200 * time.Millisecond

// download brings m's content into repoDir/blobs/<etag>, as huggingface_hub's http_get does:
// under the blob's lock (.locks/<repo folder>/<etag>.lock, shared with Python), into
// blobs/<etag>.incomplete, resuming what an earlier try left there, with retries (see
// fetchRetrying); then the size and, for LFS files, the sha256 are checked and the file is
// renamed into place. A failed download keeps its partial file for the next call to resume,
// except after a sha256 mismatch.
func (c *client) download(ctx context.Context, m *fileMeta, repoDir, label string) error {
	blobs := filepath.Join(repoDir, "blobs")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return fmt.Errorf("hub: creating %s: %w", blobs, err)
	}
	release, err := c.lockBlob(ctx, repoDir, m.etag, label)
	if err != nil {
		return err
	}
	defer release()
	blob := filepath.Join(blobs, m.etag)
	if st, err := os.Stat(blob); err == nil && (m.size < 0 || st.Size() == m.size) {
		return nil // another download brought it while this one waited for the lock
	}
	removeOldTemps(blob)
	p, err := openPartial(blob, m, c.progress)
	if err != nil {
		return err
	}
	defer p.close()
	if p.size > 0 {
		c.note("hub: resuming %s at %s", label, humanBytes(p.size))
	}
	if err := c.fetchRetrying(ctx, m, p, label); err != nil {
		if p.size == 0 { // nothing to resume
			p.close()
			_ = os.Remove(p.path)
		}
		return err
	}
	return p.commit(blob, m.etag, label)
}

// fetchRetrying runs fetchOnce until the partial file is complete, retrying transient failures
// (each retry resumes where the last stopped).
func (c *client) fetchRetrying(ctx context.Context, m *fileMeta, p *partial, label string) error {
	for attempt := 1; ; attempt++ {
		err := c.fetchOnce(ctx, m, p, label)
		var te *transientError
		switch {
		case err == nil:
			return nil
		case !errors.As(err, &te):
			return err
		case attempt >= maxAttempts:
			return gaveUp(te, attempt)
		}
		if err := c.backoff(ctx, label, attempt, te); err != nil {
			return fmt.Errorf("hub: downloading %s: %w (%s is kept: the next try resumes it)", label, err, filepath.Base(p.path))
		}
	}
}

// fetchOnce makes one GET, from the partial file's end when it has bytes ("Range: bytes=N-",
// with If-Range on the Hub's own host, whose ETag names the content; CDN URLs are
// content-addressed), and appends the answer: a 206 continues the file, a 200 restarts it, a
// 416 empties it for the next attempt.
func (c *client) fetchOnce(ctx context.Context, m *fileMeta, p *partial, label string) error {
	if p.complete() {
		return nil
	}
	if err := p.prepare(); err != nil {
		return err
	}
	hdr := http.Header{}
	if p.size > 0 {
		hdr.Set("Range", fmt.Sprintf("bytes=%d-", p.size))
		if c.sameHost(m.downloadURL) {
			hdr.Set("If-Range", `"`+m.etag+`"`)
		}
	}
	resp, err := c.send(ctx, c.http, http.MethodGet, m.downloadURL, c.sameHost(m.downloadURL), hdr, c.downloadTimeout)
	if err != nil {
		return relabel("hub: downloading "+label, err)
	}
	defer resp.Body.Close()
	if err := c.acceptAnswer(resp, p, label, m.downloadURL); err != nil {
		return err
	}
	_, err = io.Copy(p, resp.Body)
	return copyError(ctx, err, p, label)
}

// acceptAnswer checks a download answer's status and prepares the partial file for its body.
func (c *client) acceptAnswer(resp *http.Response, p *partial, label, u string) error {
	code := resp.StatusCode
	switch {
	case code == http.StatusPartialContent:
		cr := resp.Header.Get("Content-Range")
		start, total, ok := parseContentRange(cr)
		if asked := p.size; !ok || start != asked {
			if err := p.reset(); err != nil {
				return err
			}
			return &transientError{err: fmt.Errorf("hub: downloading %s: asked for bytes=%d- and got Content-Range %q", label, asked, cr),
				reason: "unexpected Content-Range, restarting from 0"}
		}
		p.setWant(total)
	case code == http.StatusOK:
		if p.size > 0 {
			c.note("hub: %s: the server does not resume this download; restarting from 0", label)
			if err := p.reset(); err != nil {
				return err
			}
		}
		p.setWant(resp.ContentLength)
	case code == http.StatusRequestedRangeNotSatisfiable:
		if err := p.reset(); err != nil {
			return err
		}
		return &transientError{err: fmt.Errorf("hub: downloading %s: HTTP %s from %s", label, resp.Status, redactURL(u)),
			reason: resp.Status + ", restarting from 0"}
	case retryableStatus(code):
		return &transientError{err: fmt.Errorf("hub: downloading %s: HTTP %s from %s", label, resp.Status, redactURL(u)),
			reason: resp.Status, after: parseRetryAfter(resp.Header)}
	default:
		return fmt.Errorf("hub: downloading %s: HTTP %s from %s", label, resp.Status, redactURL(u))
	}
	return nil
}

// copyError classifies the end of a body copy: a write failure or a cancelled context is final,
// any read failure (reset, early EOF, stall) is worth a retry, and so is a body that ended
// cleanly before the blob's size.
func copyError(ctx context.Context, err error, p *partial, label string) error {
	var we *writeError
	switch {
	case err == nil && p.want >= 0 && p.size < p.want:
		return &transientError{err: fmt.Errorf("hub: downloading %s: the answer ended at byte %d of %d", label, p.size, p.want),
			reason: "the answer ended early"}
	case err == nil:
		return nil
	case errors.As(err, &we):
		return fmt.Errorf("hub: downloading %s: %w", label, err)
	case ctx.Err() != nil:
		return fmt.Errorf("hub: downloading %s: %w (%s is kept: the next try resumes it)", label, ctx.Err(), filepath.Base(p.path))
	}
	return &transientError{err: &netError{fmt.Errorf("hub: downloading %s: interrupted at byte %d: %w", label, p.size, err)},
		reason: fmt.Sprintf("interrupted at byte %d: %v", p.size, err)}
}

// parseContentRange reads "bytes START-END/TOTAL" (TOTAL may be "*": -1).
func parseContentRange(v string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	first, _, found2 := strings.Cut(rng, "-")
	if !found || !found2 {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}

// relabel prefixes err's message, keeping it a *transientError when it was one.
func relabel(prefix string, err error) error {
	var te *transientError
	if errors.As(err, &te) {
		return &transientError{err: fmt.Errorf("%s: %w", prefix, te.err), reason: te.reason, after: te.after}
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// lockBlob takes the blob's download lock, waiting (and saying so) while another download of it,
// in this process or another, holds it.
func (c *client) lockBlob(ctx context.Context, repoDir, etag, label string) (release func(), err error) {
	dir := filepath.Join(c.cacheDir, ".locks", filepath.Base(repoDir))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("hub: creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, etag+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("hub: opening the lock %s: %w", path, err)
	}
	for waited := false; ; waited = true {
		ok, err := tryLock(f)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("hub: locking %s: %w", path, err)
		}
		if ok {
			return func() { unlock(f); _ = f.Close() }, nil
		}
		if !waited {
			c.note("hub: %s: waiting for another download of it to finish (lock %s)", label, path)
		}
		if err := sleepCtx(ctx, lockPoll); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("hub: downloading %s: waiting for the lock %s: %w", label, path, err)
		}
	}
}

// removeOldTemps deletes "<blob>.*.incomplete" files, the temporary names of earlier LOBA
// versions (not resumable), left by a killed process.
func removeOldTemps(blob string) {
	entries, err := os.ReadDir(filepath.Dir(blob))
	if err != nil {
		return
	}
	prefix := filepath.Base(blob) + "."
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, prefix) && strings.HasSuffix(n, ".incomplete") && n != prefix+"incomplete" {
			_ = os.Remove(filepath.Join(filepath.Dir(blob), n))
		}
	}
}
