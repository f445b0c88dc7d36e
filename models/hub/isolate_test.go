package hub

import (
	"path/filepath"
	"testing"

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
