package kernelsetup

import (
	"errors"
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
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("install.sh --check on a bare machine: %v, want exit status 1:\n%s", err, text)
	}
	// The doctor's summary is the last line: no "exit status 1" of a `go run` after it.
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if last := lines[len(lines)-1]; !regexp.MustCompile(`^\d+ missing \(.*\): run the fixes above`).MatchString(last) {
		t.Errorf("install.sh --check does not end with the doctor's summary; last line %q:\n%s", last, text)
	}
	if strings.Contains(text, "exit status") {
		t.Errorf("install.sh --check prints a stray \"exit status\" line:\n%s", text)
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
