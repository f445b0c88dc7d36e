package hub

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/models/hub/hubtest"
)

const (
	repoBig  = "loba-test/big-vae"
	fileBig  = "diffusion_pytorch_model.safetensors"
	bigBytes = 3 << 20
)

// setupBig serves a single-component repository whose weights are 3 MB of LFS content.
func setupBig(t *testing.T) (h *hubtest.Hub, cache string, big []byte, sum string) {
	h = hubtest.New(t)
	cache = isolateEnv(t, h)
	big = pseudoRandom(bigBytes)
	h.AddCommit(repoBig, commitMain, map[string][]byte{"config.json": []byte(`{"_class_name": "AutoencoderKL"}`), fileBig: big}, "main")
	return h, cache, big, hubtest.SHA256Hex(big)
}

// TestDownloadResumesAfterDrop: the CDN drops the connection half-way through a 3 MB file; the
// download resumes with a Range request from the bytes it has (nothing is fetched twice) and the
// file's sha256 matches.
func TestDownloadResumesAfterDrop(t *testing.T) {
	h, cache, big, sum := setupBig(t)
	h.Mu.Lock()
	h.DropAt[sum] = 1_500_000
	h.Mu.Unlock()
	var w waits
	var log syncBuffer
	dir, err := Resolve(context.Background(), repoBig, Options{sleep: w.sleep, Logf: log.logf})
	require.NoError(t, err)
	requireFileSHA256(t, filepath.Join(dir, fileBig), sum)
	ranges, sent := h.CDNLog()
	require.Equal(t, []string{"", "bytes=1500000-"}, ranges)
	require.Equal(t, int64(len(big)), sent, "nothing downloaded twice")
	require.Len(t, w.all(), 1)
	require.Contains(t, log.String(), "(attempt 2/5): interrupted at byte 1500000")
	requireNoTemp(t, RepoFolder(cache, repoBig))
}

// TestDownloadResumesAcrossCalls: a call interrupted after the connection dropped (here: the
// user stops it during the retry wait) keeps blobs/<sha256>.incomplete; the next call, as a new
// process would, resumes it instead of starting again.
func TestDownloadResumesAcrossCalls(t *testing.T) {
	h, cache, big, sum := setupBig(t)
	h.Mu.Lock()
	h.DropAt[sum] = 1_000_000
	h.Mu.Unlock()
	stopped := func(context.Context, time.Duration) error { return context.Canceled }
	_, err := ResolveFile(context.Background(), repoBig, fileBig, Options{sleep: stopped})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, sum+".incomplete is kept")
	part := filepath.Join(RepoFolder(cache, repoBig), "blobs", sum+".incomplete")
	st, err := os.Stat(part)
	require.NoError(t, err)
	require.Equal(t, int64(1_000_000), st.Size())

	h.Reset()
	h.Mu.Lock()
	h.Ranges, h.CDNBytes = nil, 0
	h.Mu.Unlock()
	var log syncBuffer
	p, err := ResolveFile(context.Background(), repoBig, fileBig, Options{Logf: log.logf})
	require.NoError(t, err)
	requireFileSHA256(t, p, sum)
	ranges, sent := h.CDNLog()
	require.Equal(t, []string{"bytes=1000000-"}, ranges)
	require.Equal(t, int64(len(big)-1_000_000), sent)
	require.Contains(t, log.String(), "resuming loba-test/big-vae@2222222222 "+fileBig+" at 1.0 MB")
	requireNoTemp(t, RepoFolder(cache, repoBig))
}

// TestResumeAnswers: what a server answers to a resume: 200 (no Range support) restarts from 0,
// 416 empties the partial file and retries, and a partial file holding wrong bytes fails the
// sha256 check, is deleted, and the next call downloads afresh.
func TestResumeAnswers(t *testing.T) {
	for _, answer := range []string{"200", "416", "corrupt partial"} {
		t.Run(answer, func(t *testing.T) {
			h, cache, big, sum := setupBig(t)
			part := filepath.Join(RepoFolder(cache, repoBig), "blobs", sum+".incomplete")
			require.NoError(t, os.MkdirAll(filepath.Dir(part), 0o755))
			prefix := append([]byte(nil), big[:700_000]...)
			if answer == "corrupt partial" {
				prefix[12345] ^= 1
			}
			require.NoError(t, os.WriteFile(part, prefix, 0o644))
			var answered atomic.Bool
			h.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.HasPrefix(r.URL.Path, "/cdn/") || r.Header.Get("Range") == "" || answered.Swap(true) {
					return false
				}
				switch answer {
				case "200":
					w.Header().Set("Content-Length", "3145728")
					_, _ = w.Write(big)
				case "416":
					w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				default:
					return false
				}
				return true
			})
			var w waits
			p, err := ResolveFile(context.Background(), repoBig, fileBig, Options{sleep: w.sleep})
			if answer == "corrupt partial" {
				require.ErrorContains(t, err, "sha256")
				require.ErrorContains(t, err, "does not match the Hub's "+sum)
				require.ErrorContains(t, err, "partial file was deleted")
				require.NoFileExists(t, part)
				p, err = ResolveFile(context.Background(), repoBig, fileBig, Options{sleep: w.sleep})
			}
			require.NoError(t, err)
			requireFileSHA256(t, p, sum)
			requireNoTemp(t, RepoFolder(cache, repoBig))
		})
	}
}
