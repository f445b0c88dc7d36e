package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/models/hub/hubtest"
)

// TestInspectHubTimeout: `loba inspect org/repo` against a Hub that accepts connections and never
// answers fails within HF_HUB_ETAG_TIMEOUT, saying it timed out, where, and how to wait longer.
// It used to wait forever.
func TestInspectHubTimeout(t *testing.T) {
	endpoint := hubtest.Unresponsive(t)
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_ENDPOINT", endpoint)
	t.Setenv("HF_HUB_ETAG_TIMEOUT", "0.3")

	type result struct {
		code   int
		stderr string
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		var stdout, stderr bytes.Buffer
		code := run([]string{"inspect", "org/repo"}, &stdout, &stderr)
		done <- result{code, stderr.String()}
	}()
	select {
	case r := <-done:
		t.Logf("exit %d after %v: %s", r.code, time.Since(start).Round(time.Millisecond), r.stderr)
		require.NotEqual(t, 0, r.code)
		require.Less(t, time.Since(start), 5*time.Second)
		for _, want := range []string{"timed out", strings.TrimPrefix(endpoint, "http://"), "300ms", "HF_HUB_ETAG_TIMEOUT"} {
			require.Contains(t, r.stderr, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("loba inspect still waiting after 10s on a hub that never answers")
	}
}
