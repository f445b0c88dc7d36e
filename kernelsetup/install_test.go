package kernelsetup

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestInstallPins: install.sh installs the versions this package names in its fixes.
func TestInstallPins(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "install.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"GO_VERSION_WANT": GoVersion, "GONB_VERSION": GonbVersion, "GOIMPORTS_VERSION": GoimportsVersion,
		"GOPLS_VERSION": GoplsVersion, "ECHARTS_VERSION": EChartsVersion,
	} {
		m := regexp.MustCompile(`(?m)^` + name + `="([^"]*)"`).FindSubmatch(data)
		if m == nil || string(m[1]) != want {
			t.Errorf("install.sh %s = %q, kernelsetup says %q", name, m, want)
		}
	}
}

// TestInstallCheckMissing: `install.sh --check` on a machine without gonb, goimports, gopls or a
// kernel spec names each and its fix, and fails.
func TestInstallCheckMissing(t *testing.T) {
	e := bareEnv(t)
	cmd := exec.Command("bash", filepath.Join(repoRoot(t), "install.sh"), "--check")
	cmd.Env = e.Vars
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err == nil {
		t.Fatalf("install.sh --check succeeded on a bare machine:\n%s", text)
	}
	for _, want := range []string{
		"MISSING  gonb", "go get github.com/janpfeifer/gonb@" + GonbVersion,
		"MISSING  goimports", "go install golang.org/x/tools/cmd/goimports@" + GoimportsVersion,
		"MISSING  gopls", "MISSING  gonb kernel", "./install.sh",
		"warning  simd (shell)", "fix: export GOEXPERIMENT=simd",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("install.sh --check output lacks %q:\n%s", want, text)
		}
	}
}

// TestInstallCheckReady: on this machine (after ./install.sh) --check and `loba doctor` say all is set.
func TestInstallCheckReady(t *testing.T) {
	out, err := exec.Command("bash", filepath.Join(repoRoot(t), "install.sh"), "--check").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "All set") {
		t.Fatalf("install.sh --check after install: %v\n%s", err, out)
	}
}

// TestInstallIdempotent: a run of install.sh after one that completed changes nothing (the time it
// takes is in the README, measured; not asserted here).
func TestInstallIdempotent(t *testing.T) {
	script := filepath.Join(repoRoot(t), "install.sh")
	if out, err := exec.Command("bash", script, "--cpu-only").CombinedOutput(); err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	out, err := exec.Command("bash", script, "--cpu-only").CombinedOutput()
	if err != nil {
		t.Fatalf("second install.sh: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "nothing to change: all in place") {
		t.Errorf("the second run changed something:\n%s", out)
	}
	if !strings.Contains(string(out), "next: ") {
		t.Errorf("no closing \"next:\" line:\n%s", out)
	}
}
