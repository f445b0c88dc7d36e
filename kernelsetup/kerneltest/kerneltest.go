// Package kerneltest gives a test a machine of its own for what install.sh and the notebooks touch:
// a temporary HOME, GOPATH and Jupyter data, config and runtime folders, with (Jupyter) the gonb
// kernel registered there for one LOBA checkout the way install.sh registers it. A test that runs
// install.sh, the doctor or a notebook under it neither reads nor writes the user's own kernel, so
// its result does not depend on which checkout registered that one, and it never changes it.
//
// The sandbox shares this machine's tools and caches, which are not the state under test: the Go
// toolchain and the rest of PATH, the Go build and module caches (GOCACHE, GOMODCACHE and GOENV are
// pinned to this process's `go env`), gonb, goimports and gopls (linked into the sandbox's
// GOPATH/bin from PATH or this machine's GOPATH/bin), LOBA's offline ECharts and warm-cache stamp
// (copied), and, on a machine with an NVIDIA GPU, the CUDA plugin LOBA would load (named in
// PJRT_PLUGIN_LIBRARY_PATH).
package kerneltest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loba-dev/loba/kernelsetup"
	"github.com/loba-dev/loba/models/backend"
)

// Tools are the commands linked into the sandbox's GOPATH/bin.
var Tools = []string{"gonb", "goimports", "gopls"}

// moved are the variables the sandbox replaces or drops: where the user's files, kernels and
// settings live.
var moved = []string{
	"HOME", "GOPATH", "GOBIN", "GOCACHE", "GOMODCACHE", "GOENV", "PATH",
	"XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_DIRS", "XDG_CONFIG_DIRS",
	"JUPYTER_DATA_DIR", "JUPYTER_PATH", "JUPYTER_CONFIG_DIR", "JUPYTER_CONFIG_PATH", "JUPYTER_RUNTIME_DIR",
	"JUPYTER_PREFER_ENV_PATH", "PYTHONUSERBASE", "IPYTHONDIR", "LOBA_ROOT", "LOBA_ECHARTS",
}

// Home returns a sandbox without a gonb kernel: this process's environment with HOME, GOPATH and the
// Jupyter and XDG folders in t.TempDir() (see the package comment for what it shares). Env.Vars is
// the whole environment, for exec.Cmd.Env.
func Home(t testing.TB) kernelsetup.Env {
	t.Helper()
	goenv := goEnv(t)
	home := t.TempDir()
	gopath := filepath.Join(home, "go")
	bin := filepath.Join(gopath, "bin")
	realBin := goenv["GOBIN"]
	if realBin == "" {
		realBin = filepath.Join(filepath.SplitList(goenv["GOPATH"])[0], "bin")
	}
	mkdir(t, bin)
	for _, name := range Tools {
		linkTool(t, name, realBin, bin)
	}
	path := []string{bin}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if d != "" && filepath.Clean(d) != filepath.Clean(realBin) {
			path = append(path, d)
		}
	}
	data := filepath.Join(home, ".local", "share", "jupyter")
	vars := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(moved, k)
	})
	vars = append(vars, "HOME="+home, "GOPATH="+gopath, "PATH="+strings.Join(path, string(filepath.ListSeparator)),
		"GOCACHE="+goenv["GOCACHE"], "GOMODCACHE="+goenv["GOMODCACHE"], "GOENV="+goenv["GOENV"],
		"JUPYTER_DATA_DIR="+data, "JUPYTER_CONFIG_DIR="+filepath.Join(home, ".jupyter"),
		"JUPYTER_RUNTIME_DIR="+filepath.Join(data, "runtime"))
	if os.Getenv("PJRT_PLUGIN_LIBRARY_PATH") == "" && len(kernelsetup.Env{}.GPUs()) > 0 {
		if pl, ok := backend.FindCUDAPlugin(backend.Probe{}); ok {
			vars = append(vars, "PJRT_PLUGIN_LIBRARY_PATH="+pl.Path)
		}
	}
	e := kernelsetup.Env{Vars: vars}
	copyLOBAData(t, kernelsetup.Env{}.DataDir(), e.DataDir())
	return e
}

// Jupyter returns a sandbox (Home) in which the gonb kernel is registered for the LOBA checkout root
// as install.sh registers it (gonb --install, then loba setup kernel: kernelsetup.Env.InstallKernel).
// Env.Root is root.
func Jupyter(t testing.TB, root string) kernelsetup.Env {
	t.Helper()
	e := Home(t)
	e.Root = root
	if _, err := e.InstallKernel(root); err != nil {
		t.Fatalf("registering the gonb kernel in a temporary Jupyter folder: %v", err)
	}
	return e
}

// goEnv is this process's `go env` for the variables the sandbox pins or derives from.
func goEnv(t testing.TB) map[string]string {
	t.Helper()
	out, err := exec.Command("go", "env", "-json", "GOPATH", "GOBIN", "GOCACHE", "GOMODCACHE", "GOENV").Output()
	if err != nil {
		t.Fatalf("go env: %v (the sandbox needs the Go toolchain on PATH)", err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("go env -json: %v\n%s", err, out)
	}
	return m
}

// linkTool links the command name (from PATH, else realBin) into bin; a missing tool is left
// missing, for the doctor to name.
func linkTool(t testing.TB, name, realBin, bin string) {
	t.Helper()
	src, err := exec.LookPath(name)
	if err != nil {
		src = filepath.Join(realBin, name)
		if _, err := os.Stat(src); err != nil {
			return
		}
	}
	if src, err = filepath.Abs(src); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(src, filepath.Join(bin, name)); err != nil {
		t.Fatalf("linking %s into the sandbox: %v", name, err)
	}
}

// copyLOBAData copies the offline ECharts and the warm-cache stamp install.sh keeps in LOBA's data
// folder, where this machine has them.
func copyLOBAData(t testing.TB, from, to string) {
	t.Helper()
	mkdir(t, to)
	for _, name := range []string{"echarts.min.js", "echarts.version", "warm.stamp"} {
		data, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(to, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mkdir(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// RegisteredElsewhere puts this process (t.Setenv) on a machine whose gonb kernel belongs to another
// checkout of LOBA: JUPYTER_DATA_DIR and JUPYTER_PATH name a temporary folder whose kernels/gonb
// starts this machine's gonb (or /bin/sh) with LOBA_ROOT at a LOBA folder that is not this one (a
// bare go.mod). It returns that kernel.json. A test that calls it first shows that its result does
// not hang on the user's kernel; it then checks that the file is unchanged (Unchanged).
func RegisteredElsewhere(t testing.TB) string {
	t.Helper()
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("module "+kernelsetup.ModulePath+"\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gonb, err := exec.LookPath("gonb")
	if err != nil {
		gonb = "/bin/sh"
	}
	spec, err := json.Marshal(map[string]any{
		"argv": []string{gonb, "--kernel", "{connection_file}"}, "display_name": "Go (gonb)", "language": "go",
		"env": map[string]string{"LOBA_ROOT": other, "PATH": "${PATH}"},
	})
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	kdir := filepath.Join(data, "kernels", kernelsetup.KernelName)
	mkdir(t, kdir)
	kpath := filepath.Join(kdir, "kernel.json")
	if err := os.WriteFile(kpath, spec, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JUPYTER_DATA_DIR", data)
	t.Setenv("JUPYTER_PATH", data)
	return kpath
}

// Unchanged fails t when the file at path no longer has the contents and modification time it had
// when Unchanged was called; call the function it returns at the end of the test.
func Unchanged(t testing.TB, path string) func() {
	t.Helper()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		after, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s is gone after the test (it must only touch its temporary folders): %v", path, err)
			return
		}
		st2, err := os.Stat(path)
		if err != nil || string(after) != string(before) || !st2.ModTime().Equal(st.ModTime()) {
			t.Errorf("%s was rewritten by the test (it must only touch its temporary folders):\nbefore (%v): %s\nafter: %s",
				path, st.ModTime(), before, after)
		}
	}
}
