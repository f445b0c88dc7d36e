package hub

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/loba-dev/loba/models/hub/hubtest"
)

// isolateEnv points every Hugging Face variable at a fresh temporary home and the fake hub, so
// the test never sees the machine's cache or token. It returns the hub cache folder.
func isolateEnv(t *testing.T, h *hubtest.Hub) string {
	home := t.TempDir()
	for _, k := range []string{EnvHubCache, envLegacyHub, EnvToken, envLegacyTok, EnvTokenPath, EnvHubOffline, envXDGCache} {
		t.Setenv(k, "")
	}
	t.Setenv(EnvHome, home)
	endpoint := "http://127.0.0.1:1" // nothing listens there
	if h != nil {
		endpoint = h.Srv.URL
	}
	t.Setenv(EnvEndpoint, endpoint)
	return filepath.Join(home, "hub")
}

// waits records the retry waits of calls instead of sleeping them (Options.sleep).
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// noSleep retries at once.
func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// syncBuffer is a bytes.Buffer safe for the concurrent downloads' messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logf is an Options.Logf writing lines to s.
func (s *syncBuffer) logf(format string, args ...any) { fmt.Fprintf(s, format+"\n", args...) }

// within runs f and returns its error, failing the test if f has not returned after limit (f
// would hang: the goroutine is left behind, the test ends).
func within(t *testing.T, limit time.Duration, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("still waiting after %v: the call hangs", limit)
		return nil
	}
}

// pseudoRandom is n deterministic bytes that do not compress (a weight file's stand-in).
func pseudoRandom(n int) []byte {
	b := make([]byte, n)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}
