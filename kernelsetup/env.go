package kernelsetup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/loba-dev/loba/models/backend"
)

// Pinned versions of what install.sh installs (and the fixes name).
const (
	GoVersion        = "1.26.5" // gomlx v0.28.8's go.mod says go 1.26.5
	GonbVersion      = "v0.11.5"
	GoimportsVersion = "v0.52.0" // golang.org/x/tools
	GoplsVersion     = "v0.23.0" // the last gopls that builds with Go 1.26 (v0.24.0's go.mod says go 1.27.0)
	EChartsVersion   = "5.6.0"
	// CUDAPlugin and CUDAPluginVersion pick the CUDA PJRT plugin: the jax-cuda12-pjrt wheel of that
	// version (CUDA 12 runs on the drivers Colab and most clouds have). go-xla v0.4.5's own
	// auto-install would pick "cuda13" at "latest" (installer/cuda.go:91).
	CUDAPlugin        = "cuda12"
	CUDAPluginVersion = "0.7.2"
	// ModulePath is LOBA's Go module, which a notebook's first cell points at LOBA_ROOT.
	ModulePath = "github.com/loba-dev/loba"
)

// Env is everything Detect looks at. The zero value means this process's environment; tests set
// Vars (a whole environment, nothing inherited) to check a machine that lacks tools.
type Env struct {
	// Vars is the environment ("KEY=value"); nil means os.Environ().
	Vars []string
	// GOOS is the operating system (default runtime.GOOS).
	GOOS string
	// Root is LOBA's folder (the one with go.mod); "" finds it upwards from the working directory.
	Root string
	// DevDir is where GPU device files live (default /dev).
	DevDir string
	// SysRoot prefixes the system folders searched for the CUDA plugin (/usr/local/lib/…,
	// /usr/lib/python3…, /opt/conda) and for Jupyter kernels (/usr/local/share/jupyter,
	// /usr/share/jupyter); default /.
	SysRoot string
}

func (e Env) vars() []string {
	if e.Vars == nil {
		return os.Environ()
	}
	return e.Vars
}

// Getenv returns one variable of the environment.
func (e Env) Getenv(key string) string {
	for _, kv := range e.vars() {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func (e Env) goos() string {
	if e.GOOS != "" {
		return e.GOOS
	}
	return runtime.GOOS
}

// Home is the user's home folder ($HOME).
func (e Env) Home() string {
	if h := e.Getenv("HOME"); h != "" {
		return h
	}
	h, _ := os.UserHomeDir()
	return h
}

// GoBin is where `go install` puts commands: $GOBIN, else $GOPATH/bin, else ~/go/bin.
func (e Env) GoBin() string {
	if b := e.Getenv("GOBIN"); b != "" {
		return b
	}
	if p := e.Getenv("GOPATH"); p != "" {
		return filepath.Join(filepath.SplitList(p)[0], "bin")
	}
	return filepath.Join(e.Home(), "go", "bin")
}

// LookPath finds a command on the environment's PATH (not the process's).
func (e Env) LookPath(name string) string { return backend.LookPath(e.Getenv("PATH"), name) }

// onPath reports whether dir is one of PATH's entries.
func (e Env) onPath(dir string) bool {
	for _, d := range filepath.SplitList(e.Getenv("PATH")) {
		if filepath.Clean(d) == filepath.Clean(dir) {
			return true
		}
	}
	return false
}

// output runs a command under the environment with a time limit and returns its trimmed stdout; a
// failure carries the last line of its stderr.
func (e Env) output(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = e.vars()
	out, err := cmd.Output()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && len(strings.TrimSpace(string(exitErr.Stderr))) > 0 {
		err = fmt.Errorf("%w: %s", err, lastLine(string(exitErr.Stderr)))
	}
	return strings.TrimSpace(string(out)), err
}

// JupyterDataDirs lists the folders Jupyter searches for kernels/, in its order (jupyter_core's
// jupyter_path): the entries of $JUPYTER_PATH, the user data folder (JupyterUserDataDir), on Linux
// Python's user base (${PYTHONUSERBASE:-~/.local}/share/jupyter, where `gonb --install` writes when
// JUPYTER_DATA_DIR is unset), then the system ones (under SysRoot).
func (e Env) JupyterDataDirs() []string {
	var dirs []string
	add := func(d string) {
		if d != "" && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	for _, d := range filepath.SplitList(e.Getenv("JUPYTER_PATH")) {
		add(strings.TrimRight(d, string(filepath.Separator)))
	}
	add(e.JupyterUserDataDir())
	if e.goos() != "darwin" && e.goos() != "windows" {
		base := e.Getenv("PYTHONUSERBASE")
		if base == "" {
			base = filepath.Join(e.Home(), ".local")
		}
		add(filepath.Join(base, "share", "jupyter"))
	}
	for _, d := range []string{"/usr/local/share/jupyter", "/usr/share/jupyter"} {
		add(e.sysPath(d))
	}
	return dirs
}

// JupyterUserDataDir is Jupyter's user data folder: $JUPYTER_DATA_DIR, else ~/Library/Jupyter on
// macOS, else $XDG_DATA_HOME/jupyter, else ~/.local/share/jupyter.
func (e Env) JupyterUserDataDir() string {
	switch {
	case e.Getenv("JUPYTER_DATA_DIR") != "":
		return e.Getenv("JUPYTER_DATA_DIR")
	case e.goos() == "darwin":
		return filepath.Join(e.Home(), "Library", "Jupyter")
	case e.Getenv("XDG_DATA_HOME") != "":
		return filepath.Join(e.Getenv("XDG_DATA_HOME"), "jupyter")
	}
	return filepath.Join(e.Home(), ".local", "share", "jupyter")
}

// sysPath is a system folder under SysRoot.
func (e Env) sysPath(path string) string {
	if e.SysRoot == "" {
		return path
	}
	return filepath.Join(e.SysRoot, path)
}

// DataDir is LOBA's per-user data folder ($XDG_DATA_HOME/loba or ~/.local/share/loba), which holds
// the offline copy of ECharts.
func (e Env) DataDir() string {
	if x := e.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "loba")
	}
	return filepath.Join(e.Home(), ".local", "share", "loba")
}

// EChartsPath is the offline copy of echarts.min.js that charts inline when the CDN is out of reach:
// $LOBA_ECHARTS, else DataDir()/echarts.min.js (install.sh puts it there from npm).
func (e Env) EChartsPath() string {
	if p := e.Getenv("LOBA_ECHARTS"); p != "" {
		return p
	}
	return filepath.Join(e.DataDir(), "echarts.min.js")
}

// EChartsPath is Env{}.EChartsPath(): the offline ECharts of this process's environment.
func EChartsPath() string { return Env{}.EChartsPath() }

// FindRoot returns LOBA's folder: e.Root, else $LOBA_ROOT, else the nearest folder upwards from the
// working directory whose go.mod declares ModulePath ("" if none).
func (e Env) FindRoot() string {
	for _, r := range []string{e.Root, e.Getenv("LOBA_ROOT")} {
		if r != "" && IsRoot(r) {
			return r
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if IsRoot(dir) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// IsRoot reports whether dir holds LOBA's go.mod.
func IsRoot(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && f[1] == ModulePath {
			return true
		}
	}
	return false
}
