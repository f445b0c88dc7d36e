package hub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The resolution logic over the client: snapshots of pipelines, single files, the cache paths
// (huggingface_hub's snapshot_download and hf_hub_download).

// snapshot resolves a pipeline (or single-component) repository; see Resolve.
func (c *client) snapshot(ctx context.Context, repo, rev string) (string, error) {
	sel := selectionOf(c.opts)
	if c.offline {
		dir, err := c.cachedSnapshot(repo, rev, sel)
		if err != nil {
			return "", err
		}
		return dir, nil
	}
	if isCommit(rev) && sel.variant == "" {
		if dir, err := c.cachedSnapshot(repo, rev, sel); err == nil {
			return dir, nil
		}
	}
	info, err := c.revisionInfo(ctx, repo, rev)
	if err != nil {
		var ne *netError
		if errors.As(err, &ne) {
			if dir, cerr := c.cachedSnapshot(repo, rev, sel); cerr == nil {
				c.note("%v; using the cached snapshot %s", err, dir)
				return dir, nil
			}
		}
		return "", err
	}
	repoDir := RepoFolder(c.cacheDir, repo)
	if err := writeRef(repoDir, rev, info.SHA); err != nil {
		return "", err
	}
	where := repo + "@" + rev
	names := make([]string, 0, len(info.Siblings))
	for _, s := range info.Siblings {
		if _, err := cleanRepoPath(s.Name); err != nil {
			return "", fmt.Errorf("hub: %s lists an invalid file name: %w", where, err)
		}
		names = append(names, s.Name)
	}
	snapDir := SnapshotDir(c.cacheDir, repo, info.SHA)
	var files []string
	if contains(names, modelIndexFile) {
		if err := c.ensure(ctx, repo, info.SHA, modelIndexFile); err != nil {
			return "", err
		}
		idx, err := os.ReadFile(filepath.Join(snapDir, modelIndexFile))
		if err != nil {
			return "", fmt.Errorf("hub: %s: reading %s: %w", where, modelIndexFile, err)
		}
		if files, err = selectPipelineFiles(where, names, idx, sel); err != nil {
			return "", err
		}
	} else {
		if files, err = selectSingleComponent(where, names, sel); err != nil {
			return "", err
		}
	}
	if err := c.ensureAll(ctx, repo, info.SHA, files); err != nil {
		return "", err
	}
	return snapDir, nil
}

// cachedSnapshot resolves repo@rev from the cache only: the commit (rev itself or refs/<rev>), its
// snapshot folder, and a complete selection of pipeline files in it.
func (c *client) cachedSnapshot(repo, rev string, sel selection) (string, error) {
	where := repo + "@" + rev
	mode := ""
	if c.offline {
		mode = " (offline mode: " + EnvHubOffline + " or Options.Offline)"
	}
	commit, err := c.cachedCommit(repo, rev)
	if err != nil {
		return "", err
	}
	dir := SnapshotDir(c.cacheDir, repo, commit)
	if !exists(dir) {
		return "", fmt.Errorf("hub: %s%s: no snapshot %s: %w; run once online or unset %s",
			where, mode, dir, ErrNotCached, EnvHubOffline)
	}
	files, err := listTree(dir)
	if err != nil {
		return "", err
	}
	if contains(files, modelIndexFile) {
		idx, rerr := os.ReadFile(filepath.Join(dir, modelIndexFile))
		if rerr != nil {
			return "", fmt.Errorf("hub: %s: reading %s: %w", where, modelIndexFile, rerr)
		}
		_, err = selectPipelineFiles(where, files, idx, sel)
	} else {
		_, err = selectSingleComponent(where, files, sel)
	}
	if err != nil {
		if errors.Is(err, ErrPickle) {
			return "", err
		}
		return "", fmt.Errorf("hub: %s%s: the cached snapshot %s is incomplete: %w (%v)", where, mode, dir, ErrNotCached, err)
	}
	return dir, nil
}

// cachedCommit returns rev when it is a commit, else the commit in refs/<rev>.
func (c *client) cachedCommit(repo, rev string) (string, error) {
	if isCommit(rev) {
		return rev, nil
	}
	repoDir := RepoFolder(c.cacheDir, repo)
	commit, err := readRef(repoDir, rev)
	if err != nil {
		return "", err
	}
	if commit == "" {
		mode := ""
		if c.offline {
			mode = " (offline mode: " + EnvHubOffline + " or Options.Offline)"
		}
		return "", fmt.Errorf("hub: %s@%s%s: not in the cache %s (no %s): %w; run once online or unset %s",
			repo, rev, mode, c.cacheDir, filepath.Join(repoDir, "refs", rev), ErrNotCached, EnvHubOffline)
	}
	return commit, nil
}

// singleFile resolves one file; see ResolveFile.
func (c *client) singleFile(ctx context.Context, repo, rev, file string) (string, error) {
	fromCache := func() (string, error) {
		commit, err := c.cachedCommit(repo, rev)
		if err != nil {
			return "", err
		}
		p := filepath.Join(SnapshotDir(c.cacheDir, repo, commit), filepath.FromSlash(file))
		if !exists(p) {
			return "", fmt.Errorf("hub: %s@%s: file %q is not in the cache (%s): %w", repo, rev, file, p, ErrNotCached)
		}
		return p, nil
	}
	if c.offline {
		return fromCache()
	}
	if isCommit(rev) {
		if p, err := fromCache(); err == nil {
			return p, nil
		}
	}
	m, err := c.head(ctx, repo, rev, file)
	if err != nil {
		var ne *netError
		if errors.As(err, &ne) {
			if p, cerr := fromCache(); cerr == nil {
				c.note("%v; using the cached file %s", err, p)
				return p, nil
			}
		}
		return "", err
	}
	commit := m.commit
	if commit == "" && isCommit(rev) {
		commit = rev
	}
	if !isCommit(commit) {
		return "", fmt.Errorf("hub: %s@%s: file %q: the Hub sent no X-Repo-Commit header (got %q)", repo, rev, file, commit)
	}
	repoDir := RepoFolder(c.cacheDir, repo)
	if err := writeRef(repoDir, rev, commit); err != nil {
		return "", err
	}
	snap := filepath.Join(repoDir, "snapshots", commit, filepath.FromSlash(file))
	if exists(snap) {
		return snap, nil
	}
	if !blobPresent(repoDir, m) {
		c.progress.start(m.size)
	}
	err = c.fetchAndLink(ctx, repoDir, snap, m, fmt.Sprintf("%s@%s %s", repo, short(commit), file))
	c.progress.finish(err == nil)
	if err != nil {
		return "", err
	}
	return snap, nil
}
