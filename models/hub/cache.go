package hub

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/loba-dev/loba/internal/atomicfile"
)

// Cache layout helpers (huggingface_hub file_download.py: repo_folder_name, _create_symlink,
// refs/ and snapshots/ handling).

var commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// isCommit reports whether rev is a full 40-hex commit hash.
func isCommit(rev string) bool { return commitRE.MatchString(rev) }

// RepoFolder is the cache folder of a model repository: <cacheDir>/models--org--repo.
func RepoFolder(cacheDir, repo string) string {
	return filepath.Join(cacheDir, "models--"+strings.ReplaceAll(repo, "/", "--"))
}

// SnapshotDir is <cacheDir>/models--org--repo/snapshots/<commit>.
func SnapshotDir(cacheDir, repo, commit string) string {
	return filepath.Join(RepoFolder(cacheDir, repo), "snapshots", commit)
}

// readRef returns the commit stored in refs/<rev> ("" when absent).
func readRef(repoDir, rev string) (string, error) {
	b, err := os.ReadFile(filepath.Join(repoDir, "refs", filepath.FromSlash(rev)))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("hub: reading ref %q: %w", rev, err)
	}
	c := strings.TrimSpace(string(b))
	if !isCommit(c) {
		return "", fmt.Errorf("hub: ref file %s holds %q, not a commit hash", filepath.Join(repoDir, "refs", rev), c)
	}
	return c, nil
}

// writeRef stores commit in refs/<rev> atomically (as huggingface_hub does, without a newline).
// Nothing is written when rev is the commit itself.
func writeRef(repoDir, rev, commit string) error {
	if rev == commit {
		return nil
	}
	path := filepath.Join(repoDir, "refs", filepath.FromSlash(rev))
	if old, err := os.ReadFile(path); err == nil && string(old) == commit {
		return nil
	}
	return writeFileAtomic(path, []byte(commit))
}

// writeFileAtomic writes data to path atomically, creating its folder.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("hub: creating %s: %w", dir, err)
	}
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("hub: writing %s: %w", path, err)
	}
	return nil
}

// linkSnapshot makes snapshotPath a relative symlink to blobPath, replacing any previous entry
// atomically (symlink at a temporary name, then rename). Where symlinks are not supported, the
// blob is copied instead.
func linkSnapshot(snapshotPath, blobPath string) error {
	dir := filepath.Dir(snapshotPath)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("hub: creating %s: %w", dir, err)
	}
	rel, err := filepath.Rel(dir, blobPath)
	if err != nil {
		rel = blobPath
	}
	tmp := fmt.Sprintf("%s.%d.link.incomplete", snapshotPath, os.Getpid())
	_ = os.Remove(tmp)
	if err := os.Symlink(rel, tmp); err != nil {
		return copyFileAtomic(blobPath, snapshotPath)
	}
	if err := os.Rename(tmp, snapshotPath); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("hub: linking %s -> %s: %w", snapshotPath, rel, err)
	}
	return nil
}

// copyFileAtomic copies src to dst through a temporary file and a rename.
func copyFileAtomic(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("hub: copying %s: %w", src, err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.incomplete")
	if err != nil {
		return fmt.Errorf("hub: copying to %s: %w", dst, err)
	}
	_, werr := io.Copy(tmp, in)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), dst)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("hub: copying %s to %s: %w", src, dst, werr)
	}
	return nil
}

// exists reports whether path exists, following symlinks (a dangling link does not count).
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// listTree lists the regular files under root (following symlinks to files), as sorted
// "/"-separated relative paths. Temporary ".incomplete" files are skipped.
func listTree(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasSuffix(p, ".incomplete") {
			return nil
		}
		if !exists(p) { // dangling symlink
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hub: listing %s: %w", root, err)
	}
	sort.Strings(files)
	return files, nil
}

// cleanRepoPath checks a repository file path: relative, "/"-separated, no "." or ".." segments.
func cleanRepoPath(p string) (string, error) {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, `\`) {
		return "", fmt.Errorf("hub: invalid repository file path %q", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("hub: invalid repository file path %q", p)
		}
	}
	return p, nil
}
