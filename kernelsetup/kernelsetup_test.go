package kernelsetup

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is LOBA's folder (this package sits one level below it).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil || !IsRoot(root) {
		t.Fatalf("cannot find LOBA's folder above %s", root)
	}
	return root
}

// bareEnv is an environment with a fresh HOME and a PATH that holds only the Go toolchain and the
// system folders: no gonb, goimports, gopls or kernel spec (jupyter only where the system has it).
func bareEnv(t *testing.T) Env {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("no go on PATH")
	}
	home := t.TempDir()
	bin := filepath.Join(home, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(goCmd, filepath.Join(bin, "go")); err != nil {
		t.Fatal(err)
	}
	return Env{Vars: []string{"HOME=" + home, "PATH=" + bin + ":/usr/bin:/bin", "GOPATH=" + filepath.Join(home, "gopath"),
		"GOCACHE=" + goEnv(t, "GOCACHE"), "GOMODCACHE=" + goEnv(t, "GOMODCACHE"), "GOTOOLCHAIN=local"}, DevDir: home, SysRoot: home}
}

func goEnv(t *testing.T, key string) string {
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func TestDetectMissingTools(t *testing.T) {
	e := bareEnv(t)
	r := Detect(e)
	if r.Ready() {
		t.Fatalf("a machine without gonb is reported ready:\n%s", r.Text())
	}
	if c := r.Check("go"); c == nil || !c.OK {
		t.Errorf("go should be found: %+v", c)
	}
	text := r.Text()
	for _, want := range []struct{ name, fix string }{
		{"gonb", "go get github.com/janpfeifer/gonb@" + GonbVersion},
		{"goimports", "go install golang.org/x/tools/cmd/goimports@" + GoimportsVersion},
		{"gopls", "go install golang.org/x/tools/gopls@" + GoplsVersion},
		{"gonb kernel", "gonb --install"},
	} {
		c := r.Check(want.name)
		if c == nil || c.OK || !c.Required {
			t.Errorf("%s: want a required, failed check, got %+v", want.name, c)
			continue
		}
		if !strings.Contains(c.Fix, want.fix) {
			t.Errorf("%s: fix %q does not say %q", want.name, c.Fix, want.fix)
		}
		if !strings.Contains(text, "MISSING  "+want.name) || !strings.Contains(text, c.Fix) {
			t.Errorf("the report does not name %s and its fix:\n%s", want.name, text)
		}
	}
	if !strings.Contains(text, "missing (") {
		t.Errorf("no closing line counting what is missing:\n%s", text)
	}

	// A tool installed in GOPATH/bin but not on PATH: the fix is the PATH, not a reinstall.
	gobin := e.GoBin()
	if err := os.MkdirAll(gobin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(gobin, "goimports"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := Detect(e).Check("goimports")
	if c.OK || !strings.Contains(c.Problem, "not on PATH") || !strings.Contains(c.Fix, "export PATH") {
		t.Errorf("goimports off PATH: %+v", c)
	}
}

func TestSetupKernel(t *testing.T) {
	e := bareEnv(t)
	dataDir := filepath.Join(e.Home(), "jup")
	e.Vars = append(e.Vars, "JUPYTER_DATA_DIR="+dataDir)
	root := repoRoot(t)
	if _, err := e.SetupKernel(root); err == nil || !strings.Contains(err.Error(), "gonb --install") {
		t.Fatalf("no kernel registered: want an error pointing at gonb --install, got %v", err)
	}
	kdir := filepath.Join(dataDir, "kernels", "gonb")
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	gonb := filepath.Join(e.Home(), "bin", "go") // any existing file stands for the kernel binary
	spec := `{"argv":["` + gonb + `","--kernel","{connection_file}","--logtostderr"],"display_name":"Go (gonb)","language":"go","interrupt_mode":"message","env":{"KEEP":"1"}}`
	kpath := filepath.Join(kdir, "kernel.json")
	if err := os.WriteFile(kpath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if c := Detect(e).Check("kernel env"); c.OK || !strings.Contains(c.Problem, "LOBA_ROOT") || !strings.Contains(c.Fix, "loba setup kernel") {
		t.Errorf("kernel without LOBA_ROOT: %+v", c)
	}
	got, err := e.SetupKernel(root)
	if err != nil || got != kpath {
		t.Fatalf("SetupKernel = %q, %v", got, err)
	}
	var out map[string]any
	data, _ := os.ReadFile(kpath)
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	env := out["env"].(map[string]any)
	if env["LOBA_ROOT"] != root || env["KEEP"] != "1" || !strings.HasSuffix(env["PATH"].(string), "${PATH}") {
		t.Errorf("kernel env after setup: %v", env)
	}
	if out["interrupt_mode"] != "message" {
		t.Errorf("unknown fields must be kept: %v", out)
	}
	r := Detect(e)
	for _, name := range []string{"gonb kernel", "kernel env"} {
		if c := r.Check(name); !c.OK {
			t.Errorf("%s after setup: %+v", name, c)
		}
	}

	// A corrupt kernel.json is an error naming the file, not a panic.
	if err := os.WriteFile(kpath, []byte(`{"argv": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.SetupKernel(root); err == nil || !strings.Contains(err.Error(), kpath) {
		t.Errorf("corrupt kernel.json: %v", err)
	}
	if c := Detect(e).Check("gonb kernel"); c.OK || !strings.Contains(c.Problem, kpath) {
		t.Errorf("corrupt kernel.json in the report: %+v", c)
	}
	if _, err := e.SetupKernel(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not LOBA's folder") {
		t.Errorf("a folder that is not LOBA: %v", err)
	}
}

func TestGPUsFromDeviceFiles(t *testing.T) {
	e := bareEnv(t)
	if g := e.GPUs(); len(g) != 0 {
		t.Fatalf("no device files and no nvidia-smi: GPUs = %v", g)
	}
	if err := os.WriteFile(filepath.Join(e.DevDir, "nvidia0"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if g := e.GPUs(); len(g) != 1 {
		t.Fatalf("with /dev/nvidia0: GPUs = %v", g)
	}
	// With a GPU the CUDA plugin becomes required; none is installed under the fresh HOME.
	if c := Detect(e).Check("cuda plugin"); c == nil || c.OK || !c.Required || !strings.Contains(c.Fix, "loba setup cuda") {
		t.Errorf("GPU without plugin: %+v", c)
	}
	nv := filepath.Join(e.CUDAInstallDir(), "nvidia")
	if err := os.MkdirAll(nv, 0o755); err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(nv, "pjrt_c_api_cuda_plugin.so")
	if err := os.WriteFile(plugin, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if c := Detect(e).Check("cuda plugin"); !c.OK || !strings.HasPrefix(c.Found, plugin+" (") {
		t.Errorf("plugin present: %+v", c)
	}
	// go-xla v0.4.5 sets XLA_FLAGS for its plugin itself: the kernel's environment does not.
	if got, ok := e.KernelEnv("/x")["XLA_FLAGS"]; ok {
		t.Errorf("XLA_FLAGS in the kernel env = %q; go-xla v0.4.5 sets it itself", got)
	}
}

func TestGoAtLeast(t *testing.T) {
	for _, c := range []struct {
		have string
		ok   bool
	}{{"go1.26.8", true}, {"go1.26", true}, {"go1.27.1", true}, {"go1.25.9", false}, {"go1.3", false}, {"go2.0", true}} {
		if got := goAtLeast(c.have, "1.26"); got != c.ok {
			t.Errorf("goAtLeast(%q) = %v", c.have, got)
		}
	}
}

// TestJupyterDataDirs: the kernel folders in Jupyter's order (jupyter_core's jupyter_path):
// JUPYTER_PATH, the user data folder, Python's user base, then the system ones under SysRoot; the
// doctor checks the kernel Jupyter would start.
func TestJupyterDataDirs(t *testing.T) {
	h, s := "/h", "/s"
	sys := []string{"/s/usr/local/share/jupyter", "/s/usr/share/jupyter"}
	for _, c := range []struct {
		vars []string
		want []string
	}{
		{nil, append([]string{"/h/.local/share/jupyter"}, sys...)},
		{[]string{"JUPYTER_PATH=/a:/b/", "JUPYTER_DATA_DIR=/d"}, append([]string{"/a", "/b", "/d", "/h/.local/share/jupyter"}, sys...)},
		{[]string{"XDG_DATA_HOME=/x", "PYTHONUSERBASE=/p"}, append([]string{"/x/jupyter", "/p/share/jupyter"}, sys...)},
	} {
		e := Env{Vars: append([]string{"HOME=" + h}, c.vars...), GOOS: "linux", SysRoot: s}
		if got := e.JupyterDataDirs(); strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%v: JupyterDataDirs = %q, want %q", c.vars, got, c.want)
		}
	}

	e := bareEnv(t)
	first, user, system := t.TempDir(), filepath.Join(e.Home(), ".local", "share", "jupyter"), filepath.Join(e.SysRoot, "usr", "share", "jupyter")
	writeSpec(t, system, `{"argv":["/bin/sh"],"env":{"LOBA_ROOT":"/system"}}`)
	if k, err := e.FindKernelSpec(); err != nil || k == nil || k.Env["LOBA_ROOT"] != "/system" {
		t.Errorf("a system kernel (under SysRoot): %+v, %v", k, err)
	}
	writeSpec(t, user, `{"argv":["/bin/sh"],"env":{"LOBA_ROOT":"/user"}}`)
	writeSpec(t, first, `{"argv":["/bin/sh"],"env":{"LOBA_ROOT":"/first"}}`)
	e.Vars = append(e.Vars, "JUPYTER_PATH="+first)
	if k, err := e.FindKernelSpec(); err != nil || k == nil || k.Env["LOBA_ROOT"] != "/first" {
		t.Errorf("a kernel in JUPYTER_PATH comes first, as in Jupyter: %+v, %v", k, err)
	}
}
