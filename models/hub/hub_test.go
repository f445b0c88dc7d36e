package hub

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/loba-dev/loba/models/hub/hubtest"
	"github.com/stretchr/testify/require"
)

const (
	repoTiny   = "loba-test/tiny-sd"
	commitOld  = "1111111111111111111111111111111111111111"
	commitMain = "2222222222222222222222222222222222222222"
)

// wantDefault is what a default Resolve must fetch from tinyPipeline: model_index.json, the
// DefaultComponents' configs, tokenizer files and plain safetensors; no pickle, no variant, no
// README, no root .ckpt, no feature_extractor.
var wantDefault = []string{
	"model_index.json",
	"scheduler/scheduler_config.json",
	"text_encoder/config.json",
	"text_encoder/model.safetensors",
	"tokenizer/merges.txt",
	"tokenizer/special_tokens_map.json",
	"tokenizer/tokenizer_config.json",
	"tokenizer/vocab.json",
	"unet/config.json",
	"unet/diffusion_pytorch_model.safetensors",
	"vae/config.json",
	"vae/diffusion_pytorch_model.safetensors",
}

// setupTiny serves tinyPipeline at commitMain ("main") and an older commitOld (tag "v1.0") whose
// unet/config.json differs; everything else is shared, so blobs are shared too.
func setupTiny(t *testing.T) (*hubtest.Hub, string, map[string][]byte, map[string][]byte) {
	h := hubtest.New(t)
	cache := isolateEnv(t, h)
	main := hubtest.TinyPipeline(t)
	old := map[string][]byte{}
	for k, v := range main {
		old[k] = v
	}
	old["unet/config.json"] = bytes.Replace(main["unet/config.json"], []byte(`"sample_size"`), []byte(`"_old_marker": 1, "sample_size"`), 1)
	require.NotEqual(t, old["unet/config.json"], main["unet/config.json"])
	h.AddCommit(repoTiny, commitOld, old, "v1.0")
	h.AddCommit(repoTiny, commitMain, main, "main")
	return h, cache, main, old
}

// checkSnapshot verifies the cache layout of dir: exactly want files, each a relative symlink to
// ../blobs/<etag> with the served content, the blob of LFS files named by their sha256, and no
// leftover temporary file anywhere in the repo folder.
func checkSnapshot(t *testing.T, cache, repo, commit, dir string, want []string, content map[string][]byte) {
	t.Helper()
	require.Equal(t, SnapshotDir(cache, repo, commit), dir)
	got, err := listTree(dir)
	require.NoError(t, err)
	require.Equal(t, want, got)
	for _, f := range want {
		p := filepath.Join(dir, filepath.FromSlash(f))
		link, err := os.Readlink(p)
		require.NoError(t, err, "%s must be a symlink into blobs/", f)
		require.False(t, filepath.IsAbs(link), "symlink %s -> %s must be relative", f, link)
		blob := filepath.Clean(filepath.Join(filepath.Dir(p), link))
		require.Equal(t, filepath.Join(RepoFolder(cache, repo), "blobs"), filepath.Dir(blob))
		if hubtest.IsLFS(f) {
			require.Equal(t, hubtest.SHA256Hex(content[f]), filepath.Base(blob), "LFS blob of %s is named by its sha256", f)
		} else {
			require.Equal(t, hubtest.GitBlobSHA1(content[f]), filepath.Base(blob), "blob of %s is named by its ETag", f)
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		require.True(t, bytes.Equal(content[f], b), "content of %s", f)
	}
	requireNoTemp(t, RepoFolder(cache, repo))
}

func requireNoTemp(t *testing.T, root string) {
	t.Helper()
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		require.False(t, strings.Contains(d.Name(), ".incomplete"), "leftover temporary file %s", p)
		return nil
	})
}

func TestResolveDownloadsIntoCacheLayout(t *testing.T) {
	h, cache, main, _ := setupTiny(t)
	dir, err := Resolve(context.Background(), repoTiny, Options{})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(os.Getenv(EnvHome), "hub", "models--loba-test--tiny-sd", "snapshots", commitMain), dir)
	checkSnapshot(t, cache, repoTiny, commitMain, dir, wantDefault, main)

	ref, err := os.ReadFile(filepath.Join(RepoFolder(cache, repoTiny), "refs", "main"))
	require.NoError(t, err)
	require.Equal(t, commitMain, string(ref))

	// Never asked for: pickles, the root checkpoint, variants, unused components.
	for _, f := range []string{".bin", ".ckpt", "fp16", "non_ema", "README", "feature_extractor", "gitattributes"} {
		require.False(t, h.Requested(f), "requested a file matching %q", f)
	}
	// 1 API call, then HEAD + GET per file (LFS GETs go to the CDN).
	require.Equal(t, 1, h.Count("GET /api/"))
	require.Equal(t, len(wantDefault), h.Count("HEAD /"+repoTiny+"/resolve/"+commitMain+"/"))
	require.Equal(t, 3, h.Count("GET /cdn/"))
}

func TestResolveSecondCallHitsCache(t *testing.T) {
	h, cache, main, _ := setupTiny(t)
	first, err := Resolve(context.Background(), repoTiny, Options{})
	require.NoError(t, err)

	// A branch revision asks the API for the current commit, and downloads nothing.
	h.Reset()
	second, err := Resolve(context.Background(), repoTiny+"@main", Options{})
	require.NoError(t, err)
	require.Equal(t, first, second)
	require.Equal(t, 1, h.Count("GET /api/"))
	require.Equal(t, 1, h.Count(""), "only the API request")
	checkSnapshot(t, cache, repoTiny, commitMain, second, wantDefault, main)

	// A commit revision with a complete snapshot needs no request at all.
	h.Reset()
	third, err := Resolve(context.Background(), repoTiny+"@"+commitMain, Options{})
	require.NoError(t, err)
	require.Equal(t, first, third)
	require.Equal(t, 0, h.Count(""))
}

func TestResolveRevisionPinning(t *testing.T) {
	h, cache, main, old := setupTiny(t)
	dirMain, err := Resolve(context.Background(), repoTiny, Options{})
	require.NoError(t, err)
	checkSnapshot(t, cache, repoTiny, commitMain, dirMain, wantDefault, main)

	// Pinned by commit: its own snapshot with the old unet config; the shared LFS blobs are not
	// downloaded again (HEAD only).
	h.Reset()
	dirOld, err := Resolve(context.Background(), repoTiny+"@"+commitOld, Options{})
	require.NoError(t, err)
	checkSnapshot(t, cache, repoTiny, commitOld, dirOld, wantDefault, old)
	require.Equal(t, 0, h.Count("GET /cdn/"), "shared blobs are reused")
	require.Equal(t, 1, h.Count("GET /"+repoTiny+"/resolve/"+commitOld+"/unet/config.json"))
	require.NoFileExists(t, filepath.Join(RepoFolder(cache, repoTiny), "refs", commitOld), "no ref for a commit")

	// Pinned by tag through Options.Revision: refs/v1.0 records the commit.
	dirTag, err := Resolve(context.Background(), repoTiny, Options{Revision: "v1.0"})
	require.NoError(t, err)
	require.Equal(t, dirOld, dirTag)
	ref, err := os.ReadFile(filepath.Join(RepoFolder(cache, repoTiny), "refs", "v1.0"))
	require.NoError(t, err)
	require.Equal(t, commitOld, string(ref))

	// Conflicting revisions are refused.
	_, err = Resolve(context.Background(), repoTiny+"@main", Options{Revision: "v1.0"})
	require.ErrorContains(t, err, "Options.Revision")
}

func TestResolveVariant(t *testing.T) {
	h, cache, main, _ := setupTiny(t)
	dir, err := Resolve(context.Background(), repoTiny, Options{Variant: "fp16"})
	require.NoError(t, err)
	want := append([]string(nil), wantDefault...)
	for i, f := range want {
		if f == "unet/diffusion_pytorch_model.safetensors" {
			want[i] = "unet/diffusion_pytorch_model.fp16.safetensors" // vae and text_encoder fall back
		}
	}
	sort.Strings(want)
	checkSnapshot(t, cache, repoTiny, commitMain, dir, want, main)
	require.False(t, h.Requested("/unet/diffusion_pytorch_model.safetensors"))

	// Components restricts the fetch; unknown components are named.
	h2 := hubtest.New(t)
	cache2 := isolateEnv(t, h2)
	h2.AddCommit(repoTiny, commitMain, main, "main")
	dir, err = Resolve(context.Background(), repoTiny, Options{Components: []string{"vae"}})
	require.NoError(t, err)
	checkSnapshot(t, cache2, repoTiny, commitMain, dir,
		[]string{"model_index.json", "vae/config.json", "vae/diffusion_pytorch_model.safetensors"}, main)
	_, err = Resolve(context.Background(), repoTiny, Options{Components: []string{"text_encoder_2"}})
	require.ErrorContains(t, err, `component "text_encoder_2" is not in model_index.json`)
}

func TestResolveSendsToken(t *testing.T) {
	h, _, main, _ := setupTiny(t)
	t.Setenv(EnvToken, "hf_from_env")
	_, err := Resolve(context.Background(), repoTiny, Options{})
	require.NoError(t, err)
	require.NotEmpty(t, h.Auth)
	for i, a := range h.Auth {
		require.Equal(t, "Bearer hf_from_env", a, "request %s", h.Requests[i])
	}

	// Options.Token overrides the environment; a private repo needs the right token.
	h.AddCommit("loba-test/private", commitMain, main, "main")
	h.Mu.Lock()
	h.Repos["loba-test/private"].Private = true
	h.Mu.Unlock()
	_, err = Resolve(context.Background(), "loba-test/private", Options{})
	require.ErrorIs(t, err, ErrUnauthorized)
	require.ErrorContains(t, err, `"loba-test/private"`)
	require.ErrorContains(t, err, "401")

	t.Setenv(EnvToken, "")
	_, err = Resolve(context.Background(), "loba-test/private", Options{})
	require.ErrorIs(t, err, ErrUnauthorized)
	require.ErrorContains(t, err, "HF_TOKEN")

	h.Reset()
	_, err = Resolve(context.Background(), "loba-test/private", Options{Token: h.Token})
	require.NoError(t, err)
	for _, a := range h.Auth {
		require.Equal(t, "Bearer "+h.Token, a)
	}

	// The token file under HF_HOME is the last fallback.
	require.NoError(t, os.WriteFile(filepath.Join(os.Getenv(EnvHome), "token"), []byte(h.Token+"\n"), 0o600))
	require.Equal(t, h.Token, TokenFromEnv())
	h.Reset()
	_, err = Resolve(context.Background(), "loba-test/private@main", Options{})
	require.NoError(t, err)
	require.Equal(t, "Bearer "+h.Token, h.Auth[0])
}

func TestResolveOffline(t *testing.T) {
	h, cache, main, _ := setupTiny(t)
	dir, err := Resolve(context.Background(), repoTiny, Options{})
	require.NoError(t, err)

	h.Reset()
	t.Setenv(EnvHubOffline, "1")
	got, err := Resolve(context.Background(), repoTiny, Options{})
	require.NoError(t, err)
	require.Equal(t, dir, got)
	checkSnapshot(t, cache, repoTiny, commitMain, got, wantDefault, main)

	// Not cached: a revision never resolved, a repository never seen, a missing component.
	_, err = Resolve(context.Background(), repoTiny+"@v1.0", Options{})
	require.ErrorIs(t, err, ErrNotCached)
	require.ErrorContains(t, err, repoTiny+"@v1.0")
	require.ErrorContains(t, err, "offline")
	_, err = Resolve(context.Background(), "loba-test/never-seen", Options{})
	require.ErrorIs(t, err, ErrNotCached)
	require.ErrorContains(t, err, "loba-test/never-seen")
	_, err = Resolve(context.Background(), repoTiny, Options{Components: []string{"feature_extractor"}})
	require.ErrorIs(t, err, ErrNotCached)
	require.ErrorContains(t, err, "feature_extractor")
	_, err = ResolveFile(context.Background(), repoTiny, "README.md", Options{})
	require.ErrorIs(t, err, ErrNotCached)
	p, err := ResolveFile(context.Background(), repoTiny, "unet/config.json", Options{})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "unet", "config.json"), p)
	require.Equal(t, 0, h.Count(""), "offline mode made requests")

	// Options.Offline works without the variable; a half-removed snapshot is reported.
	t.Setenv(EnvHubOffline, "")
	require.NoError(t, os.Remove(filepath.Join(dir, "vae", "diffusion_pytorch_model.safetensors")))
	_, err = Resolve(context.Background(), repoTiny, Options{Offline: true})
	require.ErrorIs(t, err, ErrNotCached)
	require.ErrorContains(t, err, `component "vae"`)
	require.Equal(t, 0, h.Count(""))

	// Online again, the missing file is fetched back.
	_, err = Resolve(context.Background(), repoTiny, Options{})
	require.NoError(t, err)
	checkSnapshot(t, cache, repoTiny, commitMain, dir, wantDefault, main)
}

func TestResolveNetworkDownUsesCache(t *testing.T) {
	h, _, _, _ := setupTiny(t)
	dir, err := Resolve(context.Background(), repoTiny, Options{})
	require.NoError(t, err)
	h.Srv.Close()
	var w waits
	got, err := Resolve(context.Background(), repoTiny, Options{sleep: w.sleep})
	require.NoError(t, err, "a cached snapshot is used when the Hub cannot be reached")
	require.Equal(t, dir, got)
	require.Len(t, w.all(), maxAttempts-1, "a refused connection is retried before the cache is used")
	_, err = Resolve(context.Background(), repoTiny+"@v1.0", Options{sleep: noSleep})
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrNotFound)
}

func TestResolveNotFound(t *testing.T) {
	h, _, _, _ := setupTiny(t)
	_, err := Resolve(context.Background(), repoTiny+"@no-such-branch", Options{})
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, `repository "`+repoTiny+`" at revision "no-such-branch"`)
	require.ErrorContains(t, err, "404")
	require.ErrorContains(t, err, "revision does not exist")

	_, err = ResolveFile(context.Background(), repoTiny, "unet/missing.safetensors", Options{})
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, `file "unet/missing.safetensors" of repository "`+repoTiny+`"`)
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, 404, he.Status)
	require.Equal(t, "EntryNotFound", he.Code)

	// Like the real Hub, an unknown repository answers 401.
	_, err = Resolve(context.Background(), "loba-test/does-not-exist", Options{})
	require.ErrorIs(t, err, ErrUnauthorized)
	require.ErrorContains(t, err, `"loba-test/does-not-exist"`)
	require.ErrorContains(t, err, "does not exist")
	require.Equal(t, 0, h.Count("GET /cdn/"))
}

func TestResolvePickleOnlyRepo(t *testing.T) {
	h := hubtest.New(t)
	isolateEnv(t, h)
	h.AddCommit("loba-test/pickle-only", commitMain, map[string][]byte{
		"model_index.json":                 []byte(`{"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"], "scheduler": ["diffusers", "DDIMScheduler"]}`),
		"scheduler/scheduler_config.json":  []byte(`{}`),
		"unet/config.json":                 []byte(`{}`),
		"unet/diffusion_pytorch_model.bin": []byte("PK\x03\x04 pickle"),
	}, "main")
	_, err := Resolve(context.Background(), "loba-test/pickle-only", Options{})
	require.ErrorIs(t, err, ErrPickle)
	require.ErrorContains(t, err, `component "unet"`)
	require.ErrorContains(t, err, "unet/diffusion_pytorch_model.bin")
	require.ErrorContains(t, err, ".safetensors")
	require.False(t, h.Requested(".bin"), "the pickle file was requested")

	// A single-component repository with only a pickle.
	h.AddCommit("loba-test/pickle-vae", commitMain, map[string][]byte{
		"config.json":                 []byte(`{}`),
		"diffusion_pytorch_model.bin": []byte("PK\x03\x04 pickle"),
	}, "main")
	_, err = Resolve(context.Background(), "loba-test/pickle-vae", Options{})
	require.ErrorIs(t, err, ErrPickle)

	// Single pickle files are refused before any request.
	h.Reset()
	for _, f := range []string{"v1-5-pruned-emaonly.ckpt", "model.pt", "weights.pth", "pytorch_model.bin"} {
		_, err = ResolveFile(context.Background(), "loba-test/pickle-only", f, Options{})
		require.ErrorIs(t, err, ErrPickle, f)
	}
	require.Equal(t, 0, h.Count(""))
}

func TestResolveSingleComponentRepo(t *testing.T) {
	h := hubtest.New(t)
	cache := isolateEnv(t, h)
	files := map[string][]byte{
		"README.md":                              []byte("vae"),
		"config.json":                            hubtest.ReadFixture(t, "vae", "sd_vae_tiny", "config.json"),
		"diffusion_pytorch_model.safetensors":    hubtest.ReadFixture(t, "vae", "sd_vae_tiny", "model.safetensors"),
		"diffusion_pytorch_model.bin":            []byte("PK pickle"),
		"sdxl_vae.safetensors.not-a-weight.json": []byte(`{}`),
	}
	h.AddCommit("loba-test/vae-only", commitMain, files, "main")
	dir, err := Resolve(context.Background(), "loba-test/vae-only", Options{})
	require.NoError(t, err)
	checkSnapshot(t, cache, "loba-test/vae-only", commitMain, dir,
		[]string{"config.json", "diffusion_pytorch_model.safetensors", "sdxl_vae.safetensors.not-a-weight.json"}, files)

	h.AddCommit("loba-test/not-diffusers", commitMain, map[string][]byte{"README.md": []byte("x")}, "main")
	_, err = Resolve(context.Background(), "loba-test/not-diffusers", Options{})
	require.ErrorContains(t, err, "not a diffusers repository")
}

func TestResolveFile(t *testing.T) {
	h, cache, main, _ := setupTiny(t)
	p, err := ResolveFile(context.Background(), repoTiny, "unet/diffusion_pytorch_model.safetensors", Options{})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(SnapshotDir(cache, repoTiny, commitMain), "unet", "diffusion_pytorch_model.safetensors"), p)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.True(t, bytes.Equal(main["unet/diffusion_pytorch_model.safetensors"], b))
	ref, err := os.ReadFile(filepath.Join(RepoFolder(cache, repoTiny), "refs", "main"))
	require.NoError(t, err)
	require.Equal(t, commitMain, string(ref))

	// Cached: a branch revision costs one HEAD (for the commit), a commit revision nothing.
	h.Reset()
	p2, err := ResolveFile(context.Background(), repoTiny, "unet/diffusion_pytorch_model.safetensors", Options{})
	require.NoError(t, err)
	require.Equal(t, p, p2)
	require.Equal(t, 1, h.Count(""))
	h.Reset()
	_, err = ResolveFile(context.Background(), repoTiny+"@"+commitMain, "unet/diffusion_pytorch_model.safetensors", Options{})
	require.NoError(t, err)
	require.Equal(t, 0, h.Count(""))

	_, err = ResolveFile(context.Background(), repoTiny, "../etc/passwd", Options{})
	require.ErrorContains(t, err, "invalid repository file path")
}

func TestDownloadIsAtomic(t *testing.T) {
	for _, mode := range []string{"truncate", "corrupt"} {
		t.Run(mode, func(t *testing.T) {
			h, cache, main, _ := setupTiny(t)
			sum := hubtest.SHA256Hex(main["unet/diffusion_pytorch_model.safetensors"])
			h.Mu.Lock()
			if mode == "truncate" {
				h.Truncate[sum] = true
			} else {
				h.Corrupt[sum] = true
			}
			h.Mu.Unlock()
			var w waits
			_, err := Resolve(context.Background(), repoTiny, Options{sleep: w.sleep})
			require.Error(t, err)
			require.ErrorContains(t, err, "unet/diffusion_pytorch_model.safetensors")
			repoDir := RepoFolder(cache, repoTiny)
			blob := filepath.Join(repoDir, "blobs", sum)
			require.NoFileExists(t, blob, "no half blob")
			_, err2 := os.Lstat(filepath.Join(SnapshotDir(cache, repoTiny, commitMain), "unet", "diffusion_pytorch_model.safetensors"))
			require.ErrorIs(t, err2, fs.ErrNotExist, "no snapshot entry for a failed download")
			if mode == "corrupt" {
				require.ErrorContains(t, err, "sha256")
				require.ErrorContains(t, err, "partial file was deleted")
				require.NoFileExists(t, blob+".incomplete")
			} else {
				// Every attempt got half of what it asked for; the partial file is kept for a resume.
				require.ErrorContains(t, err, "gave up after 5 attempts")
				require.Len(t, w.all(), maxAttempts-1)
				st, err := os.Stat(blob + ".incomplete")
				require.NoError(t, err, "the partial download is kept")
				require.Less(t, st.Size(), int64(len(main["unet/diffusion_pytorch_model.safetensors"])))
				require.Positive(t, st.Size())
			}

			// Offline, the incomplete snapshot is not used.
			_, err = Resolve(context.Background(), repoTiny, Options{Offline: true})
			require.ErrorIs(t, err, ErrNotCached)

			// Once the server is fixed, a new Resolve completes the snapshot.
			h.Mu.Lock()
			h.Truncate, h.Corrupt = map[string]bool{}, map[string]bool{}
			h.Mu.Unlock()
			dir, err := Resolve(context.Background(), repoTiny, Options{})
			require.NoError(t, err)
			checkSnapshot(t, cache, repoTiny, commitMain, dir, wantDefault, main)
		})
	}
}

func TestEndpointOption(t *testing.T) {
	h := hubtest.New(t)
	isolateEnv(t, nil) // HF_ENDPOINT points to a closed port
	h.AddCommit(repoTiny, commitMain, hubtest.TinyPipeline(t), "main")
	_, err := Resolve(context.Background(), repoTiny, Options{sleep: noSleep})
	require.Error(t, err, "HF_ENDPOINT must be used")
	_, err = Resolve(context.Background(), repoTiny, Options{Endpoint: h.Srv.URL + "/"})
	require.NoError(t, err)
	_, err = Resolve(context.Background(), repoTiny, Options{Endpoint: "ftp://x"})
	require.ErrorContains(t, err, "invalid endpoint")
}

func TestResolveLocal(t *testing.T) {
	isolateEnv(t, nil)
	dir := t.TempDir()
	got, err := Resolve(context.Background(), dir, Options{})
	require.NoError(t, err)
	require.Equal(t, dir, got)

	file := filepath.Join(dir, "model.safetensors")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	got, err = Resolve(context.Background(), file, Options{})
	require.NoError(t, err)
	require.Equal(t, file, got)
	got, err = ResolveFile(context.Background(), dir, "model.safetensors", Options{})
	require.NoError(t, err)
	require.Equal(t, file, got)

	ckpt := filepath.Join(dir, "v1-5-pruned.ckpt")
	require.NoError(t, os.WriteFile(ckpt, []byte("PK"), 0o644))
	_, err = Resolve(context.Background(), ckpt, Options{})
	require.ErrorIs(t, err, ErrPickle)

	_, err = Resolve(context.Background(), filepath.Join(dir, "missing"), Options{})
	require.ErrorContains(t, err, "does not exist")

	// A local diffusers folder whose unet only has a pickle.
	pipe := filepath.Join(dir, "pipe")
	require.NoError(t, os.MkdirAll(filepath.Join(pipe, "unet"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(pipe, "model_index.json"), []byte(`{"unet": ["diffusers", "UNet2DConditionModel"]}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(pipe, "unet", "config.json"), []byte(`{}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(pipe, "unet", "diffusion_pytorch_model.bin"), []byte("PK"), 0o644))
	_, err = Resolve(context.Background(), pipe, Options{})
	require.ErrorIs(t, err, ErrPickle)
	require.NoError(t, os.WriteFile(filepath.Join(pipe, "unet", "diffusion_pytorch_model.safetensors"), []byte("x"), 0o644))
	got, err = Resolve(context.Background(), pipe, Options{})
	require.NoError(t, err)
	require.Equal(t, pipe, got)
	// Components not selected, or missing folders, are left to the loaders.
	require.NoError(t, os.WriteFile(filepath.Join(pipe, "model_index.json"), []byte(`{"unet": ["diffusers", "UNet2DConditionModel"],
		"vae": ["diffusers", "AutoencoderKL"], "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"]}`), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(pipe, "safety_checker"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(pipe, "safety_checker", "pytorch_model.bin"), []byte("PK"), 0o644))
	_, err = Resolve(context.Background(), pipe, Options{})
	require.NoError(t, err)
	_, err = Resolve(context.Background(), pipe, Options{Components: []string{"safety_checker"}})
	require.ErrorIs(t, err, ErrPickle)
}

func TestParseRefAndIsLocal(t *testing.T) {
	t.Chdir(t.TempDir())
	require.NoError(t, os.MkdirAll("localorg/localrepo", 0o755))
	for _, tc := range []struct {
		ref, repo, rev string
		local, bad     bool
	}{
		{ref: "runwayml/stable-diffusion-v1-5", repo: "runwayml/stable-diffusion-v1-5"},
		{ref: "stabilityai/stable-diffusion-xl-base-1.0@462165984030d82259a11f4367a4eed129e94a7b",
			repo: "stabilityai/stable-diffusion-xl-base-1.0", rev: "462165984030d82259a11f4367a4eed129e94a7b"},
		{ref: "org/repo@refs/pr/12", repo: "org/repo", rev: "refs/pr/12"},
		{ref: "gpt2", repo: "gpt2"},
		{ref: "localorg/localrepo", repo: "localorg/localrepo", local: true}, // exists on disk
		{ref: "/abs/path", local: true, bad: true},
		{ref: "./rel", local: true, bad: true},
		{ref: "../rel", local: true, bad: true},
		{ref: "~/models/sd", local: true, bad: true},
		{ref: "a/b/c", local: true, bad: true},
		{ref: "sd_xl_base_1.0.safetensors", repo: "sd_xl_base_1.0.safetensors", local: true},
		{ref: "v1-5-pruned.ckpt", repo: "v1-5-pruned.ckpt", local: true},
		{ref: "org/re--po", local: true, bad: true},
		{ref: "org/repo@", local: true, bad: true},
		{ref: "org/.repo", local: true, bad: true},
		{ref: "org/repo.git", local: true, bad: true},
	} {
		repo, rev, err := ParseRef(tc.ref)
		if tc.bad {
			require.Error(t, err, tc.ref)
		} else {
			require.NoError(t, err, tc.ref)
			require.Equal(t, tc.repo, repo, tc.ref)
			require.Equal(t, tc.rev, rev, tc.ref)
		}
		require.Equal(t, tc.local, IsLocal(tc.ref), tc.ref)
	}
}

func TestCacheDirFromEnv(t *testing.T) {
	isolateEnv(t, nil)
	t.Setenv(EnvHome, "")
	t.Setenv(envXDGCache, "")
	t.Setenv("HOME", "/home/u")
	require.Equal(t, "/home/u/.cache/huggingface/hub", CacheDir())
	t.Setenv(envXDGCache, "/xdg")
	require.Equal(t, "/xdg/huggingface/hub", CacheDir())
	t.Setenv(EnvHome, "/hf")
	require.Equal(t, "/hf/hub", CacheDir())
	require.Equal(t, "/hf", HomeDir())
	t.Setenv(envLegacyHub, "/legacy")
	require.Equal(t, "/legacy", CacheDir())
	t.Setenv(EnvHubCache, "/cache")
	require.Equal(t, "/cache", CacheDir())
	require.Equal(t, "/cache/models--org--repo/snapshots/abc", SnapshotDir(CacheDir(), "org/repo", "abc"))

	for v, want := range map[string]bool{"1": true, "true": true, "YES": true, "on": true, "0": false, "": false, "no": false} {
		t.Setenv(EnvHubOffline, v)
		require.Equal(t, want, OfflineFromEnv(), "HF_HUB_OFFLINE=%q", v)
	}
	t.Setenv(EnvEndpoint, "https://hf-mirror.example/")
	require.Equal(t, "https://hf-mirror.example", EndpointFromEnv())
	t.Setenv(EnvEndpoint, "")
	require.Equal(t, DefaultEndpoint, EndpointFromEnv())
}

func TestHTTPErrorMessages(t *testing.T) {
	e := &HTTPError{Repo: "org/gated", Revision: "main", File: "unet/config.json", URL: "u", Status: 403}
	require.ErrorIs(t, e, ErrUnauthorized)
	require.Contains(t, e.Error(), "gated")
	require.Contains(t, e.Error(), `file "unet/config.json" of repository "org/gated"`)
	require.False(t, errors.Is(&HTTPError{Status: 500}, ErrNotFound))
}
