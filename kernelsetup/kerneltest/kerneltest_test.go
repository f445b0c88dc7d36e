package kerneltest

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/loba-dev/loba/kernelsetup"
)

// TestHome: every folder where the user's kernels, settings and LOBA's data live is inside the
// sandbox, whatever this process's Jupyter variables say; the Go caches are this machine's.
func TestHome(t *testing.T) {
	elsewhere := RegisteredElsewhere(t)
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	e := Home(t)
	home := e.Home()
	inside := func(p string) bool { return strings.HasPrefix(p, home+string(filepath.Separator)) }
	for _, key := range []string{"GOPATH", "JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR"} {
		if v := e.Getenv(key); !inside(v) {
			t.Errorf("%s=%q is outside the sandbox %s", key, v, home)
		}
	}
	for _, key := range []string{"JUPYTER_PATH", "XDG_DATA_HOME", "LOBA_ROOT"} {
		if v := e.Getenv(key); v != "" {
			t.Errorf("%s=%q is kept in the sandbox", key, v)
		}
	}
	if d := e.JupyterDataDirs()[0]; !inside(d) {
		t.Errorf("the first Jupyter folder %s is outside the sandbox", d)
	}
	if !inside(e.DataDir()) || !inside(e.GoBin()) {
		t.Errorf("LOBA's data folder %s or GOBIN %s is outside the sandbox", e.DataDir(), e.GoBin())
	}
	if e.Getenv("GOCACHE") == "" || inside(e.Getenv("GOCACHE")) || e.Getenv("GOMODCACHE") == "" {
		t.Errorf("the Go caches must be this machine's: GOCACHE=%q GOMODCACHE=%q", e.Getenv("GOCACHE"), e.Getenv("GOMODCACHE"))
	}
	if k, err := e.FindKernelSpec(); err != nil || (k != nil && k.Path() == elsewhere) {
		t.Errorf("the sandbox sees the process's kernel %s: %+v, %v", elsewhere, k, err)
	}
	if got := (kernelsetup.Env{}).JupyterDataDirs()[0]; got != filepath.Dir(filepath.Dir(filepath.Dir(elsewhere))) {
		t.Errorf("RegisteredElsewhere: this process's first Jupyter folder is %s, want the one of %s", got, elsewhere)
	}
}
