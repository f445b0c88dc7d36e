package kernelsetup

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/loba-dev/loba/models/backend"
)

func TestHasWithSIMD(t *testing.T) {
	for _, c := range []struct {
		in   string
		has  bool
		with string
	}{
		{"", false, "simd"}, {"simd", true, "simd"}, {"jsonv2", false, "jsonv2,simd"},
		{"jsonv2,simd", true, "jsonv2,simd"}, {"nosimd", false, "simd"}, {"simd,nosimd", false, "simd"},
		{"nosimd,simd", true, "nosimd,simd"}, {"none", false, "none,simd"},
	} {
		if got := HasSIMD(c.in); got != c.has {
			t.Errorf("HasSIMD(%q) = %v", c.in, got)
		}
		if got := WithSIMD(c.in); got != c.with || !HasSIMD(got) {
			t.Errorf("WithSIMD(%q) = %q, want %q", c.in, got, c.with)
		}
	}
}

// simdToolchain skips tests that need a toolchain with GOEXPERIMENT=simd.
func simdToolchain(t *testing.T, e Env) Toolchain {
	t.Helper()
	tc, err := e.Toolchain()
	if err != nil {
		t.Fatal(err)
	}
	if !tc.SIMDSupported() {
		t.Skipf("%s cannot build with GOEXPERIMENT=simd", tc)
	}
	return tc
}

func TestToolchain(t *testing.T) {
	e := bareEnv(t)
	tc, err := e.Toolchain()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tc.Version, "go1.") || tc.GOARCH != runtime.GOARCH || tc.GOOS != runtime.GOOS || tc.Path == "" {
		t.Errorf("Toolchain = %+v", tc)
	}
	// An experiment the toolchain does not know: the version is still found, the error kept.
	bad := e
	bad.Vars = append(append([]string(nil), e.Vars...), "GOEXPERIMENT=bogusexp")
	tb, err := bad.Toolchain()
	if err != nil || tb.Version != tc.Version || tb.ExperimentErr == nil || !strings.Contains(tb.ExperimentErr.Error(), "bogusexp") {
		t.Errorf("GOEXPERIMENT=bogusexp: %+v, %v", tb, err)
	}
	r := Detect(bad)
	if c := r.Check("go"); c == nil || !c.OK {
		t.Errorf("go with an unknown GOEXPERIMENT: %+v", c)
	}
	if tc.SIMDSupported() {
		if c := r.Check("simd (shell)"); c == nil || c.OK || !strings.Contains(c.Problem, "refuses") || !strings.Contains(c.Fix, "export GOEXPERIMENT=") {
			t.Errorf("simd (shell) with an unknown GOEXPERIMENT: %+v", c)
		}
	}
}

// TestSIMDChecks: the doctor says when GOEXPERIMENT=simd is missing from this shell (a warning), from the gonb
// kernel's environment (missing) and from the loba binary (a warning), with the exact command that fixes each.
func TestSIMDChecks(t *testing.T) {
	e := bareEnv(t)
	simdToolchain(t, e)
	root := repoRoot(t)

	// This shell.
	c := Detect(e).Check("simd (shell)")
	if c == nil || c.OK || c.Required || !strings.Contains(c.Problem, "GOEXPERIMENT=simd is not set") || !strings.HasPrefix(c.Fix, "export GOEXPERIMENT=simd ") {
		t.Errorf("no GOEXPERIMENT: %+v", c)
	}
	other := e
	other.Vars = append(append([]string(nil), e.Vars...), "GOEXPERIMENT=nosimd")
	if c := Detect(other).Check("simd (shell)"); c == nil || c.OK || !strings.Contains(c.Problem, "lacks simd") || !strings.HasPrefix(c.Fix, "export GOEXPERIMENT=simd ") {
		t.Errorf("GOEXPERIMENT=nosimd: %+v", c)
	}
	e.Vars = append(e.Vars, "GOEXPERIMENT=simd")
	if c := Detect(e).Check("simd (shell)"); c == nil || !c.OK {
		t.Errorf("GOEXPERIMENT=simd: %+v", c)
	}

	// The gonb kernel: none registered, no check (the kernel checks say so); one without
	// GOEXPERIMENT, missing; after loba setup kernel, in place.
	if c := Detect(e).Check("simd (kernel)"); c != nil {
		t.Errorf("no kernel spec: %+v", c)
	}
	dataDir := filepath.Join(e.Home(), "jup")
	e.Vars = append(e.Vars, "JUPYTER_DATA_DIR="+dataDir)
	kpath := writeSpec(t, dataDir, `{"argv":["/bin/sh"],"display_name":"Go (gonb)","language":"go","env":{"LOBA_ROOT":"`+root+`"}}`)
	c = Detect(Env{Vars: e.Vars, Root: root, DevDir: e.DevDir}).Check("simd (kernel)")
	if c == nil || c.OK || !c.Required || !strings.Contains(c.Problem, kpath) || c.Fix != "loba setup kernel --root "+root {
		t.Errorf("kernel without GOEXPERIMENT: %+v", c)
	}
	if _, err := e.SetupKernel(root); err != nil {
		t.Fatal(err)
	}
	if c := Detect(e).Check("simd (kernel)"); c == nil || !c.OK {
		t.Errorf("after SetupKernel: %+v", c)
	}

	// The loba binary: this one (the test binary) as it was built, and a loba on PATH built
	// without GOEXPERIMENT=simd.
	c = Detect(e).Check("simd (loba)")
	if backend.SIMDEnabled != (c != nil && c.OK) {
		t.Errorf("this binary: SIMDEnabled=%v, check %+v", backend.SIMDEnabled, c)
	}
	gobin := e.GoBin()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module fakeloba\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build := func(exp string) {
		cmd := exec.Command("go", "build", "-o", filepath.Join(gobin, "loba"), ".")
		cmd.Dir = src
		cmd.Env = append(e.without("GOEXPERIMENT").Vars, "GOEXPERIMENT="+exp, "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	build("")
	c = Detect(e).Check("simd (loba)")
	if c == nil || c.OK || c.Required || !strings.Contains(c.Problem, filepath.Join(gobin, "loba")+" was built without GOEXPERIMENT=simd") ||
		c.Fix != "cd "+root+" && GOEXPERIMENT=simd go install ./lobanb/cmd/loba   (or ./install.sh)" {
		t.Errorf("loba built without simd: %+v", c)
	}
	if !strings.Contains(Detect(e).Text(), "fix: cd "+root+" && GOEXPERIMENT=simd go install ./lobanb/cmd/loba") {
		t.Errorf("the report lacks the fix:\n%s", Detect(e).Text())
	}
	build("simd")
	if c := Detect(e).Check("simd (loba)"); backend.SIMDEnabled && (c == nil || !c.OK || !strings.Contains(c.Found, filepath.Join(gobin, "loba"))) {
		t.Errorf("loba built with simd: %+v", c)
	}
}

// TestSIMDUnsupported: with a toolchain that cannot build with GOEXPERIMENT=simd (here: one
// targeting arm64) the doctor says so in one line and nothing fails; the kernel env goes without it.
func TestSIMDUnsupported(t *testing.T) {
	e := bareEnv(t)
	e.Vars = append(e.Vars, "GOARCH=arm64")
	r := Detect(e)
	c := r.Check("simd")
	if c == nil || !c.OK || !strings.Contains(c.Found, "not used") || !strings.Contains(c.Found, "arm64") {
		t.Errorf("simd on arm64: %+v", c)
	}
	for _, name := range []string{"simd (shell)", "simd (kernel)", "simd (loba)"} {
		if c := r.Check(name); c != nil {
			t.Errorf("%s checked on arm64: %+v", name, c)
		}
	}
	if v, ok := e.KernelEnv("/x")["GOEXPERIMENT"]; ok {
		t.Errorf("GOEXPERIMENT=%q in the kernel env on arm64", v)
	}
}

// TestSetupKernelEnv: GOEXPERIMENT=simd is recorded (other experiments kept) and the XLA_FLAGS entry
// of older LOBA versions (go-xla v0.1.4's work-around) removed, other flags kept.
func TestSetupKernelEnv(t *testing.T) {
	e := bareEnv(t)
	simdToolchain(t, e)
	dataDir := filepath.Join(e.Home(), "jup")
	e.Vars = append(e.Vars, "JUPYTER_DATA_DIR="+dataDir)
	nv := filepath.Join(e.CUDAInstallDir(), "nvidia")
	for _, c := range []struct{ before, wantExp, wantFlags string }{
		{`"XLA_FLAGS":"--xla_gpu_cuda_data_dir=` + nv + `"`, "simd", ""},
		{`"XLA_FLAGS":"--xla_dump_to=/tmp/d --xla_gpu_cuda_data_dir=` + nv + `","GOEXPERIMENT":"jsonv2"`, "jsonv2,simd", "--xla_dump_to=/tmp/d"},
		{`"XLA_FLAGS":"--xla_gpu_cuda_data_dir=/opt/cuda","GOEXPERIMENT":"simd"`, "simd", "--xla_gpu_cuda_data_dir=/opt/cuda"},
	} {
		kpath := writeSpec(t, dataDir, `{"argv":["/bin/sh"],"display_name":"Go (gonb)","language":"go","env":{`+c.before+`}}`)
		if _, err := e.SetupKernel(repoRoot(t)); err != nil {
			t.Fatal(err)
		}
		var spec struct{ Env map[string]string }
		data, _ := os.ReadFile(kpath)
		if err := json.Unmarshal(data, &spec); err != nil {
			t.Fatal(err)
		}
		if spec.Env["GOEXPERIMENT"] != c.wantExp || spec.Env["XLA_FLAGS"] != c.wantFlags {
			t.Errorf("env {%s} after setup: GOEXPERIMENT=%q XLA_FLAGS=%q, want %q and %q", c.before, spec.Env["GOEXPERIMENT"], spec.Env["XLA_FLAGS"], c.wantExp, c.wantFlags)
		}
		if _, ok := spec.Env["XLA_FLAGS"]; ok != (c.wantFlags != "") {
			t.Errorf("env {%s}: XLA_FLAGS kept empty", c.before)
		}
	}
}

func writeSpec(t *testing.T, dataDir, spec string) string {
	t.Helper()
	kdir := filepath.Join(dataDir, "kernels", "gonb")
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	kpath := filepath.Join(kdir, "kernel.json")
	if err := os.WriteFile(kpath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return kpath
}
