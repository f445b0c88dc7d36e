package kernelsetup

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// SIMDExperiment is the GOEXPERIMENT that turns on the Go backend's AVX2/AVX-512 kernels
// (github.com/gomlx/compute's gobackend, through simd/archsimd): every LOBA binary, test and notebook
// cell is built with it where the toolchain has it (Go 1.26 or newer on amd64). install.sh builds
// with it, `loba setup kernel` records it in the gonb kernel's environment (GoNB's cell builds
// inherit it) and `loba doctor` says where it is missing. models/backend.SIMDEnabled tells whether a
// binary was built with it.
const SIMDExperiment = "simd"

// Toolchain is the Go toolchain on the environment's PATH, as `go env` reports it.
type Toolchain struct {
	Path    string // the go command
	Version string // GOVERSION, e.g. "go1.26.8"
	GOOS    string
	GOARCH  string
	// Experiment is the GOEXPERIMENT the toolchain builds with (the environment's, or `go env -w`'s);
	// ExperimentErr is set when the toolchain refuses it (e.g. "simd" on Go 1.25), in which case the
	// other fields come from a second run without GOEXPERIMENT.
	Experiment    string
	ExperimentErr error
}

// Toolchain runs `go env` of the go command on the environment's PATH.
func (e Env) Toolchain() (Toolchain, error) {
	t := Toolchain{Path: e.LookPath("go")}
	if t.Path == "" {
		return t, fmt.Errorf("the Go toolchain is not on PATH")
	}
	out, err := e.output(20*time.Second, t.Path, "env", "GOVERSION", "GOOS", "GOARCH", "GOEXPERIMENT")
	if err != nil && e.Getenv("GOEXPERIMENT") != "" {
		// The toolchain may only refuse GOEXPERIMENT: ask again without it, to tell which.
		t.ExperimentErr = err
		out, err = e.without("GOEXPERIMENT").output(20*time.Second, t.Path, "env", "GOVERSION", "GOOS", "GOARCH", "GOEXPERIMENT")
	}
	if err != nil {
		return t, fmt.Errorf("%s does not run: %w", t.Path, err)
	}
	lines := strings.Split(out, "\n")
	for len(lines) < 4 {
		lines = append(lines, "")
	}
	t.Version, t.GOOS, t.GOARCH = strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1]), strings.TrimSpace(lines[2])
	if t.ExperimentErr == nil {
		t.Experiment = strings.TrimSpace(lines[3])
	}
	return t, nil
}

// SIMDSupported reports whether the toolchain can build with GOEXPERIMENT=simd: Go 1.26 or newer
// (older ones refuse the experiment) targeting amd64 (simd/archsimd has no other architecture in
// Go 1.26).
func (t Toolchain) SIMDSupported() bool {
	return t.GOARCH == "amd64" && goAtLeast(t.Version, "1.26")
}

// String is e.g. "go1.26.8 linux/amd64".
func (t Toolchain) String() string { return fmt.Sprintf("%s %s/%s", t.Version, t.GOOS, t.GOARCH) }

// HasSIMD reports whether a GOEXPERIMENT value turns simd on (its last simd or nosimd entry).
func HasSIMD(goexperiment string) bool {
	on := false
	for _, f := range strings.Split(goexperiment, ",") {
		switch strings.TrimSpace(f) {
		case SIMDExperiment:
			on = true
		case "no" + SIMDExperiment, "none":
			on = false
		}
	}
	return on
}

// WithSIMD returns goexperiment with simd turned on, keeping its other experiments.
func WithSIMD(goexperiment string) string {
	if HasSIMD(goexperiment) {
		return goexperiment
	}
	fields := slices.DeleteFunc(strings.Split(goexperiment, ","), func(f string) bool {
		f = strings.TrimSpace(f)
		return f == "" || f == SIMDExperiment || f == "no"+SIMDExperiment
	})
	return strings.Join(append(fields, SIMDExperiment), ",")
}

// without returns the environment less one variable.
func (e Env) without(key string) Env {
	e.Vars = slices.DeleteFunc(slices.Clone(e.vars()), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == key
	})
	return e
}

// simdChecks says whether GOEXPERIMENT=simd is where LOBA needs it: in this environment (go build,
// go test and go run from this shell), in the gonb kernel's environment (notebook cells) and in the
// loba binary (this one, and the one on PATH when that is another). With a toolchain that cannot
// build with it, one line says so and nothing fails.
func (e Env) simdChecks(t Toolchain, spec *KernelSpec, kernelFix, root string, selfSIMD bool) []Check {
	if !t.SIMDSupported() {
		return []Check{{Name: "simd", OK: true, Found: fmt.Sprintf(
			"not used: GOEXPERIMENT=simd needs Go 1.26 or newer on amd64, this toolchain is %s; LOBA builds without the Go backend's AVX2/AVX-512 kernels", t)}}
	}
	const why = "the Go backend's AVX2/AVX-512 kernels"
	var checks []Check

	// This environment.
	sh := Check{Name: "simd (shell)", Required: false, // a warning: builds without it work, only slower
		Fix: "export GOEXPERIMENT=" + WithSIMD(e.Getenv("GOEXPERIMENT")) + "   (add that line to ~/.profile or ~/.bashrc to keep it)"}
	switch cur := e.Getenv("GOEXPERIMENT"); {
	case t.ExperimentErr != nil:
		sh.Problem = fmt.Sprintf("GOEXPERIMENT=%s: %s refuses it (%v)", cur, t.Path, t.ExperimentErr)
	case HasSIMD(t.Experiment):
		sh.OK, sh.Found = true, fmt.Sprintf("GOEXPERIMENT=%s: go build, go test and go run here use %s", t.Experiment, why)
	case cur == "" && t.Experiment == "":
		sh.Problem = "GOEXPERIMENT=simd is not set: go build, go test and go run here compile LOBA without " + why
	default:
		if cur == "" {
			cur = t.Experiment + " (go env)"
		}
		sh.Problem = fmt.Sprintf("GOEXPERIMENT=%s lacks simd: go build, go test and go run here compile LOBA without %s", cur, why)
	}
	checks = append(checks, sh)

	// The gonb kernel (only when there is a spec; the kernel checks say when there is none).
	if spec != nil {
		kc := Check{Name: "simd (kernel)", Required: true, Fix: kernelFix}
		if v := spec.Env["GOEXPERIMENT"]; HasSIMD(v) {
			kc.OK, kc.Found = true, "GOEXPERIMENT="+v+" in "+spec.Path()
		} else {
			if v == "" {
				v = "none"
			}
			kc.Problem = fmt.Sprintf("the gonb kernel builds notebook cells without GOEXPERIMENT=simd (GOEXPERIMENT in %s: %s), so without %s", spec.Path(), v, why)
		}
		checks = append(checks, kc)
	}

	// The loba binary: this one (models/backend.SIMDEnabled) and the one on PATH, if another.
	lc := Check{Name: "simd (loba)", Required: false} // a warning: a binary without it works, only slower
	if root != "" {
		lc.Fix = fmt.Sprintf("cd %s && GOEXPERIMENT=simd go install ./lobanb/cmd/loba   (or ./install.sh)", shellQuote(root))
	} else {
		lc.Fix = "cd <your LOBA clone> && GOEXPERIMENT=simd go install ./lobanb/cmd/loba   (or ./install.sh)"
	}
	self, _ := os.Executable()
	var bad, good []string
	if !selfSIMD {
		bad = append(bad, fmt.Sprintf("this binary (%s) was built without GOEXPERIMENT=simd", self))
	} else {
		good = append(good, "this binary")
	}
	installed := e.LookPath("loba")
	if installed == "" && fileExists(filepath.Join(e.GoBin(), "loba")) {
		installed = filepath.Join(e.GoBin(), "loba")
	}
	if installed != "" && !sameDir(installed, self) {
		switch exp, err := buildExperiment(installed); {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s cannot be read as a Go binary (%v)", installed, err))
		case !HasSIMD(exp):
			bad = append(bad, fmt.Sprintf("%s was built without GOEXPERIMENT=simd", installed))
		default:
			good = append(good, installed)
		}
	}
	if len(bad) > 0 {
		lc.Problem = strings.Join(bad, "; ") + ", so without " + why
	} else {
		lc.OK, lc.Found = true, strings.Join(good, " and ")+" built with GOEXPERIMENT=simd"
	}
	return append(checks, lc)
}

// buildExperiment is the GOEXPERIMENT a Go binary was built with (its build settings).
func buildExperiment(path string) (string, error) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, s := range info.Settings {
		if s.Key == "GOEXPERIMENT" {
			return s.Value, nil
		}
	}
	return "", nil
}

// shellQuote quotes a path for a fix line when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '_' || r == '-' || r == '+' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
