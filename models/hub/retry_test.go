package hub

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/models/hub/hubtest"
)

// failFirst makes the hub answer status to the first n requests whose path starts with prefix
// (with header, when given), and counts every such request.
func failFirst(h *hubtest.Hub, prefix string, n int32, status int, header map[string]string) *atomic.Int32 {
	var seen atomic.Int32
	h.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, prefix) {
			return false
		}
		if seen.Add(1) > n {
			return false
		}
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		return true
	})
	return &seen
}

// requireBackoff checks the waits are the exponential backoff 1s, 2s, 4s, 8s, … with ±25% jitter.
func requireBackoff(t *testing.T, got []time.Duration, n int) {
	t.Helper()
	require.Len(t, got, n)
	for i, d := range got {
		want := min(time.Second<<i, 8*time.Second)
		require.InDelta(t, float64(want), float64(d), 0.25*float64(want), "wait %d", i+1)
	}
}

// TestRetryServerErrors: 503 twice then 200 succeeds on the third attempt, each retry said on
// the log with its wait; a 5xx that lasts gives up after 5 attempts; a 4xx is never retried.
func TestRetryServerErrors(t *testing.T) {
	h, cache, main, _ := setupTiny(t)
	seen := failFirst(h, "/api/", 2, http.StatusServiceUnavailable, nil)
	var w waits
	var log syncBuffer
	dir, err := Resolve(context.Background(), repoTiny, Options{sleep: w.sleep, Logf: log.logf})
	require.NoError(t, err)
	checkSnapshot(t, cache, repoTiny, commitMain, dir, wantDefault, main)
	require.Equal(t, int32(3), seen.Load(), "3 attempts")
	requireBackoff(t, w.all(), 2)
	require.Regexp(t, `hub: loba-test/tiny-sd@main: retrying in [0-9.]+m?s \(attempt 2/5\): 503 Service Unavailable\n`, log.String())
	require.Contains(t, log.String(), "(attempt 3/5): 503 Service Unavailable")

	// A CDN answering 500 every time: 5 attempts, then the error says so.
	h2, _, _, _ := setupTiny(t)
	seen = failFirst(h2, "/cdn/", 1000, http.StatusInternalServerError, nil)
	var w2 waits
	_, err = ResolveFile(context.Background(), repoTiny, "unet/diffusion_pytorch_model.safetensors", Options{sleep: w2.sleep})
	require.ErrorContains(t, err, "HTTP 500 Internal Server Error")
	require.ErrorContains(t, err, "gave up after 5 attempts")
	require.Equal(t, int32(maxAttempts), seen.Load())
	requireBackoff(t, w2.all(), maxAttempts-1)

	// An API answering 503 every time: 5 attempts, then the Hub's error, saying what it means.
	h3, _, _, _ := setupTiny(t)
	seen = failFirst(h3, "/api/", 1000, http.StatusServiceUnavailable, nil)
	_, err = Resolve(context.Background(), repoTiny, Options{sleep: noSleep})
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, http.StatusServiceUnavailable, he.Status)
	require.ErrorContains(t, err, "server error on the Hub's side, still after retries")
	require.Equal(t, int32(maxAttempts), seen.Load())

	// 401, 403, 404 and other 4xx are final: one request, no wait.
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusBadRequest} {
		h, _, _, _ := setupTiny(t)
		seen := failFirst(h, "/api/", 1000, status, nil)
		var w waits
		_, err := Resolve(context.Background(), repoTiny, Options{sleep: w.sleep})
		require.ErrorContains(t, err, http.StatusText(status))
		require.Equal(t, int32(1), seen.Load(), "HTTP %d is not retried", status)
		require.Empty(t, w.all())
	}
}

// TestRetryAfter: a 429's Retry-After is honoured instead of the backoff.
func TestRetryAfter(t *testing.T) {
	h, _, _, _ := setupTiny(t)
	seen := failFirst(h, "/"+repoTiny+"/resolve/", 1, http.StatusTooManyRequests, map[string]string{"Retry-After": "7"})
	var w waits
	var log syncBuffer
	_, err := ResolveFile(context.Background(), repoTiny, "unet/config.json", Options{sleep: w.sleep, Logf: log.logf})
	require.NoError(t, err)
	require.Equal(t, int32(3), seen.Load(), "HEAD (429), HEAD, GET")
	require.Equal(t, []time.Duration{7 * time.Second}, w.all())
	require.Contains(t, log.String(), "retrying in 7s (attempt 2/5): 429 Too Many Requests")

	require.Equal(t, 3*time.Second, parseRetryAfter(http.Header{"Retry-After": {"3"}}))
	require.Zero(t, parseRetryAfter(http.Header{"Retry-After": {"soon"}}))
	require.Equal(t, maxRetryAfter, retryWait(1, time.Hour), "a Retry-After is capped")
}

// TestRetryStopsWithContext: cancelling the context during a retry wait ends the call at once.
func TestRetryStopsWithContext(t *testing.T) {
	h, _, _, _ := setupTiny(t)
	failFirst(h, "/api/", 1000, http.StatusBadGateway, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Resolve(ctx, repoTiny, Options{}) // real waits: 1 s first
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 900*time.Millisecond)
}
