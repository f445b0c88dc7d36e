package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/hub/hubtest"
)

// TestInspectHubID: `loba inspect org/repo@rev` resolves through a Hub (a real HTTP server on
// loopback serving a tiny fixture pipeline) into the HF cache, then inspects and validates it.
func TestInspectHubID(t *testing.T) {
	testutil.Backend(t)
	h := hubtest.New(t)
	h.AddCommit("loba-test/tiny-sd15", "0123456789abcdef0123456789abcdef01234567", hubtest.TinyPipeline(t), "main")
	home := t.TempDir()
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_ENDPOINT", h.URL())

	var stdout, stderr bytes.Buffer
	code := run([]string{"inspect", "loba-test/tiny-sd15@main"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	out := stdout.String()
	require.Contains(t, out, filepath.Join(home, "hub", "models--loba-test--tiny-sd15", "snapshots"))
	for _, comp := range []string{"unet", "vae", "text_encoder"} {
		require.Contains(t, out, comp)
	}
	require.Contains(t, out, "weights OK")

	// Offline, the cached snapshot is enough.
	t.Setenv("HF_HUB_OFFLINE", "1")
	h.Reset()
	stdout.Reset()
	code = run([]string{"inspect", "loba-test/tiny-sd15"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Zero(t, h.Count(""), "offline mode must not touch the network")

	// An unknown repository: a clear error naming it, exit 2.
	t.Setenv("HF_HUB_OFFLINE", "")
	stderr.Reset()
	code = run([]string{"inspect", "loba-test/no-such-model"}, &stdout, &stderr)
	require.Equal(t, 2, code)
	require.Contains(t, stderr.String(), "loba-test/no-such-model")
}
