package hub

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// The downloads of a snapshot: each file's HEAD, then its blob unless already there, then the
// snapshot link (huggingface_hub's snapshot_download over hf_hub_download).

// ensure makes snapshots/<commit>/<file> present: nothing to do when it is, else HEAD, download
// the blob unless another revision already brought it, and link it. It draws no progress bar
// (model_index.json, fetched before the rest is known).
func (c *client) ensure(ctx context.Context, repo, commit, file string) error {
	repoDir := RepoFolder(c.cacheDir, repo)
	snap := filepath.Join(repoDir, "snapshots", commit, filepath.FromSlash(file))
	if exists(snap) {
		return nil
	}
	m, err := c.head(ctx, repo, commit, file)
	if err != nil {
		return err
	}
	return c.fetchAndLink(ctx, repoDir, snap, m, fileLabel(repo, commit, file))
}

// fetchAndLink downloads m's blob unless it is there, and links snap to it.
func (c *client) fetchAndLink(ctx context.Context, repoDir, snap string, m *fileMeta, label string) error {
	if !blobPresent(repoDir, m) {
		if m.size >= 0 {
			c.note("hub: downloading %s (%s)", label, humanBytes(m.size))
		} else {
			c.note("hub: downloading %s", label)
		}
		if err := c.download(ctx, m, repoDir, label); err != nil {
			return err
		}
	}
	return linkSnapshot(snap, filepath.Join(repoDir, "blobs", m.etag))
}

// ensureAll makes every file present in snapshots/<commit>: first the HEADs of the missing ones,
// so that the progress bar knows the bytes to download, then the downloads; each phase runs a
// few at a time, and its first error cancels the rest.
func (c *client) ensureAll(ctx context.Context, repo, commit string, files []string) error {
	repoDir := RepoFolder(c.cacheDir, repo)
	snaps := make([]string, len(files))
	metas := make([]*fileMeta, len(files))
	err := parallel(ctx, len(files), func(ctx context.Context, i int) error {
		snaps[i] = filepath.Join(repoDir, "snapshots", commit, filepath.FromSlash(files[i]))
		if exists(snaps[i]) {
			return nil
		}
		m, err := c.head(ctx, repo, commit, files[i])
		metas[i] = m
		return err
	})
	if err != nil {
		return err
	}
	c.progress.start(bytesToFetch(repoDir, metas))
	err = parallel(ctx, len(files), func(ctx context.Context, i int) error {
		if metas[i] == nil {
			return nil
		}
		return c.fetchAndLink(ctx, repoDir, snaps[i], metas[i], fileLabel(repo, commit, files[i]))
	})
	c.progress.finish(err == nil)
	return err
}

// parallel runs f(0..n-1), maxParallelDownloads at a time; the first error cancels the context
// of the others and is returned.
func parallel(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, maxParallelDownloads)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			if err := f(ctx, i); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// blobPresent reports whether m's blob is in blobs/ with the Hub's size.
func blobPresent(repoDir string, m *fileMeta) bool {
	st, err := os.Stat(filepath.Join(repoDir, "blobs", m.etag))
	return err == nil && (m.size < 0 || st.Size() == m.size)
}

// bytesToFetch sums the known sizes of the blobs not yet in blobs/, each blob once.
func bytesToFetch(repoDir string, metas []*fileMeta) int64 {
	seen := map[string]bool{}
	var n int64
	for _, m := range metas {
		if m == nil || m.size < 0 || seen[m.etag] || blobPresent(repoDir, m) {
			continue
		}
		seen[m.etag] = true
		n += m.size
	}
	return n
}

// fileLabel names one file of a repository commit in messages: "org/repo@1234567890 path".
func fileLabel(repo, commit, file string) string {
	return fmt.Sprintf("%s@%s %s", repo, short(commit), file)
}
