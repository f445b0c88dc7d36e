package kernelsetup_test

// The tests that run install.sh, the doctor and the kernel set-up as on a real machine. Each runs in
// a sandbox (kerneltest): a temporary HOME, GOPATH and Jupyter folders, with the gonb kernel
// registered there for this checkout; and each first makes the process's own Jupyter kernel one
// that another checkout of LOBA registered (kerneltest.RegisteredElsewhere), which must neither
// change their result nor be changed.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loba-dev/loba/kernelsetup"
	"github.com/loba-dev/loba/kernelsetup/kerneltest"
)

// checkout is this LOBA checkout (the package sits one level below it).
func checkout(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil || !kernelsetup.IsRoot(root) {
		t.Fatalf("cannot find LOBA's folder above %s", root)
	}
	return root
}

// installSh runs install.sh with args under the environment e and returns its output.
func installSh(t *testing.T, e kernelsetup.Env, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(checkout(t), "install.sh")}, args...)...)
	cmd.Env = e.Vars
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestInstallCheckReady: after ./install.sh (here: the gonb kernel registered for this checkout in a
// sandbox, as install.sh registers it) --check says all is set and exits 0, even when the user's
// own kernel belongs to another checkout of LOBA (issue 15 item 11).
func TestInstallCheckReady(t *testing.T) {
	defer kerneltest.Unchanged(t, kerneltest.RegisteredElsewhere(t))()
	e := kerneltest.Jupyter(t, checkout(t))
	out, err := installSh(t, e, "--check")
	if err != nil || !strings.Contains(out, "All set") {
		t.Fatalf("install.sh --check after install: %v\n%s", err, out)
	}
	if strings.Contains(out, "exit status") {
		t.Errorf("install.sh --check prints a stray \"exit status\" line:\n%s", out)
	}
}

// TestDetectThisMachine: with the kernel registered for this checkout every required piece is in
// place (the tools come from ./install.sh; CI runs it first).
func TestDetectThisMachine(t *testing.T) {
	defer kerneltest.Unchanged(t, kerneltest.RegisteredElsewhere(t))()
	e := kerneltest.Jupyter(t, checkout(t))
	r := kernelsetup.Detect(e)
	if !r.Ready() {
		t.Fatalf("after ./install.sh the doctor should find everything:\n%s", r.Text())
	}
	if !strings.Contains(r.Text(), "All set") {
		t.Errorf("no \"All set\" line:\n%s", r.Text())
	}
	if c := r.Check("gonb kernel"); c == nil || !strings.HasPrefix(c.Found, e.Home()+string(filepath.Separator)) {
		t.Errorf("the doctor checked a kernel outside the sandbox %s: %+v", e.Home(), c)
	}
}

// TestInstallIdempotent: install.sh on a machine (a sandbox) registers the kernel for this checkout;
// a second run changes nothing (the time it takes is in the README, measured; not asserted here).
// The user's own kernel is left as it was.
func TestInstallIdempotent(t *testing.T) {
	defer kerneltest.Unchanged(t, kerneltest.RegisteredElsewhere(t))()
	e := kerneltest.Home(t)
	if out, err := installSh(t, e, "--cpu-only"); err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	out, err := installSh(t, e, "--cpu-only")
	if err != nil {
		t.Fatalf("second install.sh: %v\n%s", err, out)
	}
	if !strings.Contains(out, "nothing to change: all in place") {
		t.Errorf("the second run changed something:\n%s", out)
	}
	if !strings.Contains(out, "next: ") {
		t.Errorf("no closing \"next:\" line:\n%s", out)
	}
	k, err := e.FindKernelSpec()
	if err != nil || k == nil || k.Env["LOBA_ROOT"] != checkout(t) || !strings.HasPrefix(k.Path(), e.Home()) {
		t.Fatalf("install.sh registered no kernel for %s in the sandbox %s: %+v, %v", checkout(t), e.Home(), k, err)
	}
	if out, err := installSh(t, e, "--check"); err != nil || !strings.Contains(out, "All set") {
		t.Errorf("install.sh --check after install.sh: %v\n%s", err, out)
	}
}

// TestInstallKernel: Env.InstallKernel registers the gonb kernel (gonb --install) where there is none
// and records LOBA's environment in it; a second call keeps what the first wrote and adds nothing;
// without a gonb, or for a folder that is not LOBA, it says what to do.
func TestInstallKernel(t *testing.T) {
	defer kerneltest.Unchanged(t, kerneltest.RegisteredElsewhere(t))()
	root := checkout(t)
	e := kerneltest.Home(t)
	if e.LookPath("gonb") == "" {
		t.Fatal("no gonb on PATH: run ./install.sh")
	}
	kpath, err := e.InstallKernel(root)
	want := filepath.Join(e.Home(), ".local", "share", "jupyter", "kernels", "gonb", "kernel.json")
	if err != nil || kpath != want {
		t.Fatalf("InstallKernel = %q, %v; want %s", kpath, err, want)
	}
	k, err := kernelsetup.ReadKernelSpec(kpath)
	if err != nil {
		t.Fatal(err)
	}
	gonb, _ := filepath.EvalSymlinks(e.LookPath("gonb"))
	if len(k.Argv) == 0 || k.Argv[0] != gonb || k.Env["LOBA_ROOT"] != root || k.Env["PATH"] == "" {
		t.Errorf("kernel spec after InstallKernel: argv %q env %v; want gonb %s and LOBA_ROOT=%s", k.Argv, k.Env, gonb, root)
	}

	// A second call: what is there is kept (no new gonb --install).
	k.Env["KEEP"] = "1"
	if err := k.Write(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.InstallKernel(root); err != nil {
		t.Fatal(err)
	}
	var again struct{ Env map[string]string }
	data, _ := os.ReadFile(kpath)
	if err := json.Unmarshal(data, &again); err != nil || again.Env["KEEP"] != "1" || again.Env["LOBA_ROOT"] != root {
		t.Errorf("second InstallKernel: %s (%v)", data, err)
	}

	if _, err := e.InstallKernel(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not LOBA's folder") {
		t.Errorf("a folder that is not LOBA: %v", err)
	}
	bare := kerneltest.Home(t)
	for _, name := range kerneltest.Tools {
		os.Remove(filepath.Join(bare.GoBin(), name))
	}
	for i, kv := range bare.Vars {
		if strings.HasPrefix(kv, "PATH=") {
			bare.Vars[i] = "PATH=" + bare.GoBin() + ":/nonexistent"
		}
	}
	if _, err := bare.InstallKernel(root); err == nil || !strings.Contains(err.Error(), "no gonb on PATH or in "+bare.GoBin()) ||
		!strings.Contains(err.Error(), "./install.sh") {
		t.Errorf("no gonb: %v", err)
	}
}
