package hub

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/models/hub/hubtest"
)

// TestUnresponsiveHubTimesOut: a Hub that accepts connections and never answers fails Resolve
// and ResolveFile within the metadata timeout (set by HF_HUB_ETAG_TIMEOUT or the option), with a
// message naming the host, the timeout and the variable that raises it. Before timeouts existed,
// these calls hung forever.
func TestUnresponsiveHubTimesOut(t *testing.T) {
	for _, how := range []string{"env", "option"} {
		t.Run(how, func(t *testing.T) {
			isolateEnv(t, nil)
			endpoint := hubtest.Unresponsive(t)
			t.Setenv(EnvEndpoint, endpoint)
			opts := Options{sleep: noSleep}
			if how == "env" {
				t.Setenv(EnvEtagTimeout, "0.3")
			} else {
				opts.MetadataTimeout = 300 * time.Millisecond
			}
			host := strings.TrimPrefix(endpoint, "http://")
			for _, call := range []func() error{
				func() error { _, err := Resolve(context.Background(), "org/repo", opts); return err },
				func() error {
					_, err := ResolveFile(context.Background(), "org/repo", "unet/config.json", opts)
					return err
				},
			} {
				start := time.Now()
				err := within(t, 5*time.Second, call)
				elapsed := time.Since(start)
				require.ErrorIs(t, err, ErrTimeout)
				require.GreaterOrEqual(t, elapsed, 300*time.Millisecond)
				require.Less(t, elapsed, 2*time.Second, "a timeout is not retried")
				for _, want := range []string{"timed out", host, "300ms", EnvEtagTimeout} {
					require.ErrorContains(t, err, want)
				}
				var ne *netError
				require.True(t, errors.As(err, &ne), "a timeout is a network failure: a cached copy may be used")
			}
		})
	}
}

// TestUnresponsiveHubUsesCache: once a snapshot is cached, a Hub that never answers costs one
// timeout, then the cached snapshot is used.
func TestUnresponsiveHubUsesCache(t *testing.T) {
	_, _, _, _ = setupTiny(t)
	dir, err := Resolve(context.Background(), repoTiny, Options{})
	require.NoError(t, err)
	t.Setenv(EnvEndpoint, hubtest.Unresponsive(t))
	var log syncBuffer
	got := ""
	err = within(t, 5*time.Second, func() error {
		var err error
		got, err = Resolve(context.Background(), repoTiny, Options{MetadataTimeout: 200 * time.Millisecond, Logf: log.logf})
		return err
	})
	require.NoError(t, err)
	require.Equal(t, dir, got)
	require.Contains(t, log.String(), "using the cached snapshot")
	require.Contains(t, log.String(), "timed out")
}

// TestStalledDownloadResumes: a download whose bytes stop coming is cut after the download
// timeout, then resumed from where it stopped; a slow download whose bytes keep coming is not.
func TestStalledDownloadResumes(t *testing.T) {
	h := hubtest.New(t)
	cache := isolateEnv(t, h)
	big := pseudoRandom(1 << 20)
	h.AddCommit("loba-test/big", commitMain, map[string][]byte{"model.safetensors": big}, "main")
	sum := hubtest.SHA256Hex(big)
	h.Mu.Lock()
	h.StallAt[sum] = 400_000
	h.Mu.Unlock()
	var w waits
	var log syncBuffer
	p := ""
	err := within(t, 5*time.Second, func() (err error) {
		p, err = ResolveFile(context.Background(), "loba-test/big", "model.safetensors",
			Options{DownloadTimeout: 200 * time.Millisecond, sleep: w.sleep, Logf: log.logf})
		return err
	})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(SnapshotDir(cache, "loba-test/big", commitMain), "model.safetensors"), p)
	requireFileSHA256(t, p, sum)
	ranges, _ := h.CDNLog()
	require.Equal(t, []string{"", "bytes=400000-"}, ranges)
	require.Len(t, w.all(), 1)
	require.Regexp(t, `retrying in [0-9.]+m?s \(attempt 2/5\): interrupted at byte 400000`, log.String())
	require.Contains(t, log.String(), "no data from")
	require.Contains(t, log.String(), EnvDownloadTimeout)

	// An idle timeout, not a deadline: a body that trickles in for longer than the timeout,
	// never pausing that long, completes without a retry.
	body := pseudoRandom(64 << 10)
	h.AddCommit("loba-test/slow", commitMain, map[string][]byte{"model.safetensors": body}, "main")
	h.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/cdn/") {
			return false
		}
		w.Header().Set("Content-Length", "65536")
		for i := 0; i < 8; i++ { // 8 × 60 ms = 480 ms in all, with a 200 ms idle timeout
			time.Sleep(60 * time.Millisecond)
			_, _ = w.Write(body[i*8192 : (i+1)*8192])
			w.(http.Flusher).Flush()
		}
		return true
	})
	var w2 waits
	start := time.Now()
	p, err = ResolveFile(context.Background(), "loba-test/slow", "model.safetensors",
		Options{DownloadTimeout: 200 * time.Millisecond, sleep: w2.sleep})
	require.NoError(t, err)
	require.Greater(t, time.Since(start), 400*time.Millisecond)
	require.Empty(t, w2.all(), "a moving download is never retried")
	requireFileSHA256(t, p, hubtest.SHA256Hex(body))
}

// TestTimeoutSettings: the variables are seconds (decimals allowed); a bad value is an error
// naming the variable and the value, before any request.
func TestTimeoutSettings(t *testing.T) {
	h := hubtest.New(t)
	isolateEnv(t, h)
	for _, env := range []string{EnvEtagTimeout, EnvDownloadTimeout} {
		for _, bad := range []string{"abc", "0", "-1", "NaN", "10s"} {
			t.Setenv(env, bad)
			_, err := Resolve(context.Background(), "org/repo", Options{})
			require.ErrorContains(t, err, env+`="`+bad+`"`)
			require.ErrorContains(t, err, "seconds")
		}
		t.Setenv(env, "")
	}
	require.Zero(t, h.Count(""), "no request with a bad setting")

	d, err := timeoutSetting(0, "MetadataTimeout", EnvEtagTimeout)
	require.NoError(t, err)
	require.Equal(t, DefaultTimeout, d)
	t.Setenv(EnvEtagTimeout, "2.5")
	d, err = timeoutSetting(0, "MetadataTimeout", EnvEtagTimeout)
	require.NoError(t, err)
	require.Equal(t, 2500*time.Millisecond, d)
	d, err = timeoutSetting(time.Second, "MetadataTimeout", EnvEtagTimeout)
	require.NoError(t, err)
	require.Equal(t, time.Second, d, "the option wins over the variable")
	_, err = Resolve(context.Background(), "org/repo", Options{DownloadTimeout: -time.Second})
	require.ErrorContains(t, err, "Options.DownloadTimeout")
}

// requireFileSHA256 checks the sha256 of the file at path.
func requireFileSHA256(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, want, hubtest.SHA256Hex(b), "sha256 of %s", path)
}
