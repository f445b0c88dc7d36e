// Package hub resolves a model reference, either "org/repo[@revision]" on the Hugging Face Hub or
// a local path, to a local folder. Downloads go into the standard Hugging Face cache layout
// (`$HF_HUB_CACHE` = `$HF_HOME/hub` = `~/.cache/huggingface/hub` by default):
//
//	models--org--repo/
//	  blobs/<etag>                       file contents (sha256 for LFS files, git blob sha1 otherwise)
//	  refs/<revision>                    the commit a branch or tag pointed to when last resolved
//	  snapshots/<commit>/<path>          relative symlinks into blobs/
//
// so the cache is shared with Python's huggingface_hub/diffusers. It ports the parts of
// huggingface_hub's snapshot_download/hf_hub_download (file_download.py, constants.py) that LOBA
// needs: HF_TOKEN, HF_HOME/HF_HUB_CACHE, HF_ENDPOINT, offline mode (HF_HUB_OFFLINE=1), the
// selection of a diffusers pipeline's files (model_index.json, component configs, tokenizer files
// and .safetensors weights, optionally of a variant such as "fp16"), atomic and resumable
// downloads (blobs/<etag>.incomplete, HTTP Range, size and sha256 checks, then rename), timeouts
// (HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT), retries with backoff on 5xx, 429 and broken
// connections, and clear errors for 401/403/404. No message shows a URL's query string (a
// signed CDN URL), a password in HF_ENDPOINT or the token.
//
// Pickle weights (.bin, .ckpt, .pt, .pth, .pkl) are never downloaded nor accepted: they can run
// arbitrary code when loaded. A repository or component that only has pickle weights is refused
// with ErrPickle.
//
// It uses its own small HTTP client instead of github.com/gomlx/go-huggingface v0.3.1, whose hub
// package does not write refs/ (so Python and offline lookups cannot find its snapshots), keeps
// a non-standard info/ folder, re-downloads the repository info on every use, has no offline mode,
// ignores the caller's context and does not detect a truncated download.
package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// DefaultEndpoint is the Hub used when neither Options.Endpoint nor $HF_ENDPOINT is set.
const DefaultEndpoint = "https://huggingface.co"

// DefaultComponents are the pipeline components fetched when Options.Components is nil (those of
// them that model_index.json lists): what LOBA's SD1.5/SDXL pipelines use. safety_checker and
// feature_extractor are left out.
var DefaultComponents = []string{"unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"}

// Options configures Resolve and ResolveFile. The zero value is usable: revision "main", token,
// endpoint, cache folder and offline mode taken from the environment.
type Options struct {
	// Revision is a branch, tag or commit. It may also be given in the reference ("org/repo@rev");
	// giving both with different values is an error. Default "main".
	Revision string
	// Variant selects weight files such as "diffusion_pytorch_model.fp16.safetensors" for
	// Variant "fp16". A component without that variant falls back to its plain weights.
	Variant string
	// Components lists the pipeline components (folders named in model_index.json) to fetch.
	// nil means DefaultComponents.
	Components []string
	// Token is the Hub access token, sent as "Authorization: Bearer <token>". "" means $HF_TOKEN
	// (or the legacy $HUGGING_FACE_HUB_TOKEN), then the token file ($HF_TOKEN_PATH, default
	// $HF_HOME/token).
	Token string
	// Endpoint is the Hub's base URL. "" means $HF_ENDPOINT, else DefaultEndpoint.
	Endpoint string
	// CacheDir is the hub cache folder. "" means CacheDir().
	CacheDir string
	// Offline resolves only from the cache, with no network access. It is also on when
	// $HF_HUB_OFFLINE is 1/true/yes/on.
	Offline bool
	// HTTPClient is used for every request; nil means a default client. Whichever client, each
	// request is bounded by MetadataTimeout or DownloadTimeout, and the call by the context.
	HTTPClient *http.Client
	// MetadataTimeout bounds each metadata request (the repository's file list, each file's
	// HEAD): connecting and waiting for the answer, and every pause while reading it. 0 means
	// $HF_HUB_ETAG_TIMEOUT (seconds), else DefaultTimeout, as in huggingface_hub. A server that
	// does not answer in time fails the call with ErrTimeout at once (no retry); a cached
	// snapshot, when complete, is used instead.
	MetadataTimeout time.Duration
	// DownloadTimeout is the longest a download may wait for its answer or for its next bytes:
	// an idle timeout, never a total deadline, so a slow but moving download of many GB is never
	// cut. 0 means $HF_HUB_DOWNLOAD_TIMEOUT (seconds), else DefaultTimeout. A stalled download is
	// retried from where it stopped.
	DownloadTimeout time.Duration
	// Logf receives messages: downloads started or resumed, retries ("retrying in 2s (attempt
	// 2/5): 503 Service Unavailable"), a cached copy used when the Hub cannot be reached. nil
	// means they go to Progress, else nowhere.
	Logf func(format string, args ...any)
	// Progress receives a progress bar of the downloads (bytes done of the total, rate); nil
	// means no bar.
	Progress io.Writer

	// sleep waits between retries (nil: sleepCtx); tests replace it to record the waits.
	sleep func(ctx context.Context, d time.Duration) error
}

var (
	// ErrNotFound is wrapped by errors for HTTP 404: unknown repository, revision or file.
	ErrNotFound = errors.New("not found on the hub")
	// ErrUnauthorized is wrapped by errors for HTTP 401/403: private or gated repository, bad or
	// missing token. The Hub also answers 401 for a repository that does not exist.
	ErrUnauthorized = errors.New("access denied by the hub")
	// ErrNotCached is wrapped by offline-mode errors when what is asked for is not in the cache.
	ErrNotCached = errors.New("not in the local cache")
	// ErrPickle is wrapped by errors refusing pickle weights (.bin, .ckpt, .pt, .pth, .pkl).
	ErrPickle = errors.New("pickle weights refused")
)

// Resolve returns the local folder holding the model named by ref:
//   - a local path (see IsLocal) is returned as an absolute path after checking it exists (a
//     local diffusers folder where a selected component has only pickle weights, or a pickle
//     file, is refused with ErrPickle);
//   - "org/repo[@revision]" is resolved on the Hub, the diffusers pipeline files are downloaded
//     into the cache when missing, and the snapshot folder snapshots/<commit> is returned. A repo
//     without model_index.json but with a root config.json is treated as a single component
//     (e.g. a standalone VAE repo) and its root files are fetched.
//
// With a branch or tag revision it makes one API request to learn the current commit, then
// downloads only the files missing from the snapshot. With a commit revision whose snapshot is
// complete (and no Variant, since only the Hub knows whether a variant exists), it makes no
// request at all. Offline (Options.Offline or $HF_HUB_OFFLINE) it never
// touches the network and fails with ErrNotCached when the snapshot is missing or incomplete. If
// the Hub cannot be reached (a network error, not an HTTP error) a complete cached snapshot of
// the revision is used instead.
func Resolve(ctx context.Context, ref string, opts Options) (dir string, err error) {
	if IsLocal(ref) {
		return resolveLocal(ref, opts)
	}
	repo, rev, err := splitRef(ref, opts.Revision)
	if err != nil {
		return "", err
	}
	c, err := newClient(opts)
	if err != nil {
		return "", err
	}
	c.progress.desc = repo
	dir, err = c.snapshot(ctx, repo, rev)
	c.progress.finish(err == nil)
	return dir, c.scrubError(err)
}

// ResolveFile returns the local path of one file of a Hub repository (downloaded into the cache
// when missing), e.g. a single-file checkpoint:
//
//	ResolveFile(ctx, "stabilityai/stable-diffusion-xl-base-1.0", "sd_xl_base_1.0.safetensors", opts)
//
// If ref is a local folder, the file inside it is returned. Pickle files are refused with
// ErrPickle before any request.
func ResolveFile(ctx context.Context, ref, file string, opts Options) (path string, err error) {
	if isPickleName(file) {
		return "", pickleError(ref, []string{file})
	}
	clean, err := cleanRepoPath(file)
	if err != nil {
		return "", err
	}
	if IsLocal(ref) {
		dir, err := resolveLocal(ref, opts)
		if err != nil {
			return "", err
		}
		p := filepath.Join(dir, filepath.FromSlash(clean))
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("hub: file %q not found in local folder %q: %w", file, dir, err)
		}
		return p, nil
	}
	repo, rev, err := splitRef(ref, opts.Revision)
	if err != nil {
		return "", err
	}
	c, err := newClient(opts)
	if err != nil {
		return "", err
	}
	c.progress.desc = repo + " " + clean
	path, err = c.singleFile(ctx, repo, rev, clean)
	c.progress.finish(err == nil)
	return path, c.scrubError(err)
}

var repoNameRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,96}$`)

// ParseRef splits "org/repo[@revision]" into the repository id and the revision ("" when not
// given). It checks the id the way huggingface_hub's validate_repo_id does: one or two
// "/"-separated names of letters, digits, '_', '-', '.', without "--" or "..", not ending in ".git".
func ParseRef(ref string) (repo, revision string, err error) {
	repo = ref
	if i := strings.Index(ref, "@"); i >= 0 {
		repo, revision = ref[:i], ref[i+1:]
		if revision == "" {
			return "", "", fmt.Errorf("hub: reference %q has an empty revision after '@'", ref)
		}
	}
	parts := strings.Split(repo, "/")
	if len(parts) > 2 {
		return "", "", fmt.Errorf("hub: %q is not a repository id (want \"org/repo\" or \"repo\")", repo)
	}
	for _, p := range parts {
		if !repoNameRE.MatchString(p) || strings.HasPrefix(p, ".") || strings.HasPrefix(p, "-") ||
			strings.HasSuffix(p, ".") || strings.HasSuffix(p, "-") {
			return "", "", fmt.Errorf("hub: %q is not a repository id: name %q must be 1-96 letters, digits, '_', '-' or '.'", repo, p)
		}
	}
	if strings.Contains(repo, "--") || strings.Contains(repo, "..") || strings.HasSuffix(repo, ".git") {
		return "", "", fmt.Errorf("hub: %q is not a repository id (no \"--\", \"..\" or trailing \".git\")", repo)
	}
	return repo, revision, nil
}

// IsLocal reports whether ref names a local path rather than a Hub repository: it exists on disk,
// or it is absolute or starts with "./", "../" or "~", or it ends with a weight file extension
// (.safetensors, .ckpt, …), or it is not a valid repository id (see ParseRef). "org/repo" is local only when such a folder exists in the working directory,
// as in diffusers' from_pretrained.
func IsLocal(ref string) bool {
	if ref == "" {
		return false
	}
	if _, err := os.Stat(ref); err == nil {
		return true
	}
	if filepath.IsAbs(ref) || ref == "." || ref == ".." || ref == "~" ||
		strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../") || strings.HasPrefix(ref, "~/") ||
		strings.HasPrefix(ref, `.\`) || strings.HasPrefix(ref, `..\`) {
		return true
	}
	switch strings.ToLower(filepath.Ext(ref)) {
	case ".safetensors", ".ckpt", ".bin", ".pt", ".pth", ".pkl":
		return true // a weight file name, never a repository id
	}
	_, _, err := ParseRef(ref)
	return err != nil
}

// splitRef parses ref and merges its revision with optRev (default "main").
func splitRef(ref, optRev string) (repo, rev string, err error) {
	repo, rev, err = ParseRef(ref)
	if err != nil {
		return "", "", err
	}
	switch {
	case rev == "":
		rev = optRev
	case optRev != "" && optRev != rev:
		return "", "", fmt.Errorf("hub: reference %q names revision %q but Options.Revision is %q", ref, rev, optRev)
	}
	if rev == "" {
		rev = "main"
	}
	if strings.Contains(rev, "..") || strings.HasPrefix(rev, "/") {
		return "", "", fmt.Errorf("hub: invalid revision %q", rev)
	}
	return repo, rev, nil
}

// resolveLocal checks a local reference and returns its absolute path.
func resolveLocal(ref string, opts Options) (string, error) {
	p := ref
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("hub: expanding %q: %w", ref, err)
		}
		p = filepath.Join(home, strings.TrimPrefix(p, "~"))
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("hub: local path %q: %w", ref, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("hub: local path %q does not exist (and it is not a Hub repository id \"org/repo\"): %w", ref, err)
	}
	if !st.IsDir() {
		if isPickleName(abs) {
			return "", pickleError(ref, []string{filepath.Base(abs)})
		}
		return abs, nil
	}
	// A local diffusers folder: refuse selected components that only have pickle weights. Other
	// gaps (a component folder left out on purpose) are left to the loaders.
	if _, err := os.Stat(filepath.Join(abs, modelIndexFile)); err == nil {
		files, err := listTree(abs)
		if err != nil {
			return "", err
		}
		idx, err := os.ReadFile(filepath.Join(abs, modelIndexFile))
		if err != nil {
			return "", fmt.Errorf("hub: reading %s: %w", filepath.Join(abs, modelIndexFile), err)
		}
		if _, err := selectPipelineFiles(abs, files, idx, selectionOf(opts)); errors.Is(err, ErrPickle) {
			return "", err
		}
	}
	return abs, nil
}

// pickleError builds the ErrPickle error for where (a repo, folder or component).
func pickleError(where string, files []string) error {
	return fmt.Errorf("hub: %s: only pickle weights found (%s): %w; LOBA loads only .safetensors, because "+
		"unpickling can run arbitrary code. Use a revision or repository that has .safetensors files "+
		"(many Hub repos have a safetensors conversion PR, e.g. revision \"refs/pr/N\"), or convert the "+
		"weights to .safetensors first", where, strings.Join(files, ", "), ErrPickle)
}
