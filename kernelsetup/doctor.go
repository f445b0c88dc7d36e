package kernelsetup

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loba-dev/loba/models/backend"
)

// Check is one thing Detect looked at.
type Check struct {
	Name     string `json:"name"`
	OK       bool   `json:"ok"`
	Required bool   `json:"required"` // false: optional (a warning when missing)
	Found    string `json:"found,omitempty"`
	Problem  string `json:"problem,omitempty"` // what is wrong, in plain words
	Fix      string `json:"fix,omitempty"`     // the exact command that fixes it
}

// Report is what Detect found.
type Report struct {
	OS     string   `json:"os"`
	GPUs   []string `json:"gpus"`
	Root   string   `json:"loba_root"`
	Checks []Check  `json:"checks"`
}

// Missing lists the required checks that failed.
func (r *Report) Missing() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Required && !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Ready reports whether every required check passed.
func (r *Report) Ready() bool { return len(r.Missing()) == 0 }

// Check returns the check called name (nil if there is none).
func (r *Report) Check(name string) *Check {
	for i := range r.Checks {
		if r.Checks[i].Name == name {
			return &r.Checks[i]
		}
	}
	return nil
}

// Text is the report in plain words: one line per check, the fix under each problem, and a closing
// line saying whether all is in place.
func (r *Report) Text() string {
	var b strings.Builder
	gpu := "no NVIDIA GPU: LOBA computes on the CPU (pure-Go backend; the toy world and tiny models)"
	if len(r.GPUs) > 0 {
		gpu = "GPU: " + strings.Join(r.GPUs, ", ")
	}
	fmt.Fprintf(&b, "LOBA doctor — %s; %s\n", r.OS, gpu)
	for _, c := range r.Checks {
		mark := "ok     "
		switch {
		case !c.OK && c.Required:
			mark = "MISSING"
		case !c.OK:
			mark = "warning"
		}
		detail := c.Found
		if !c.OK {
			detail = c.Problem
		}
		fmt.Fprintf(&b, "  %s  %-14s %s\n", mark, c.Name, detail)
		if !c.OK && c.Fix != "" {
			fmt.Fprintf(&b, "  %7s  %-14s fix: %s\n", "", "", c.Fix)
		}
	}
	if miss := r.Missing(); len(miss) > 0 {
		names := make([]string, len(miss))
		shell := false // a fix that is an export: install.sh cannot do it for the caller's shell
		for i, c := range miss {
			names[i] = c.Name
			shell = shell || strings.HasPrefix(c.Fix, "export ")
		}
		if shell {
			fmt.Fprintf(&b, "%d missing (%s): run the fixes above (./install.sh does all but the export lines, which are for your shell).\n", len(miss), strings.Join(names, ", "))
		} else {
			fmt.Fprintf(&b, "%d missing (%s): run the fixes above, or ./install.sh which does them all.\n", len(miss), strings.Join(names, ", "))
		}
	} else {
		fmt.Fprintln(&b, "All set: open a notebook in notebooks/ with the \"Go (gonb)\" kernel, or run `loba train notebooks/presets/toy-size.yaml --out /tmp/size`.")
	}
	return b.String()
}

// Detect looks at the machine (see Env) and reports every check. It changes nothing.
func Detect(e Env) *Report {
	r := &Report{OS: e.goos(), GPUs: e.GPUs(), Root: e.FindRoot()}
	gobin := e.GoBin()
	goc, tc := e.goCheck()
	r.Checks = append(r.Checks, goc,
		// GoNB and the tools it runs.
		e.toolCheck("gonb", gobin, fmt.Sprintf("cd \"$(mktemp -d)\" && go mod init gonbinst && go get github.com/janpfeifer/gonb@%s && go build -o %s/gonb github.com/janpfeifer/gonb",
			GonbVersion, gobin)),
		e.toolCheck("goimports", gobin, "go install golang.org/x/tools/cmd/goimports@"+GoimportsVersion),
		e.toolCheck("gopls", gobin, "go install golang.org/x/tools/gopls@"+GoplsVersion),
		e.jupyterCheck())
	spec, ks, kenv := e.kernelChecks(r.Root)
	r.Checks = append(r.Checks, ks, kenv)
	// GOEXPERIMENT=simd in this shell, the gonb kernel and the loba binary (with a toolchain that
	// LOBA can use; the go check says otherwise).
	if goc.OK {
		r.Checks = append(r.Checks, e.simdChecks(tc, spec, kenv.Fix, r.Root, backend.SIMDEnabled)...)
	}
	r.Checks = append(r.Checks, e.echartsCheck())
	if len(r.GPUs) > 0 {
		r.Checks = append(r.Checks, e.cudaPluginCheck())
	}
	return r
}

// toolCheck finds the command name on PATH; one installed in gobin but not on PATH gets an export as
// its fix.
func (e Env) toolCheck(name, gobin, fix string) Check {
	c := Check{Name: name, Required: true, Fix: fix}
	if p := e.LookPath(name); p != "" {
		c.OK, c.Found = true, p
	} else if p := filepath.Join(gobin, name); fileExists(p) {
		c.Problem = fmt.Sprintf("installed at %s, but %s is not on PATH", p, gobin)
		c.Fix = fmt.Sprintf("export PATH=\"$PATH:%s\"", gobin)
	} else {
		c.Problem = name + " not found on PATH"
	}
	return c
}

// goCheck checks that the Go toolchain is GoVersion or newer; it also returns the toolchain found.
func (e Env) goCheck() (Check, Toolchain) {
	c := Check{Name: "go", Required: true, Fix: "./install.sh   (installs Go " + GoVersion + " or newer into ~/.local/go when missing or older)"}
	tc, err := e.Toolchain()
	if err != nil {
		c.Problem = err.Error()
	} else if !goAtLeast(tc.Version, GoVersion) {
		c.Problem = fmt.Sprintf("%s is %s; LOBA needs go%s or newer", tc.Path, tc.Version, GoVersion)
	} else {
		c.OK, c.Found = true, tc.Version+" at "+tc.Path
	}
	return c, tc
}

// jupyterCheck checks that jupyter is on PATH with a working nbconvert.
func (e Env) jupyterCheck() Check {
	c := Check{Name: "jupyter", Required: true, Fix: "sudo apt-get install -y --no-install-recommends jupyter-notebook jupyter-nbconvert python3-ipykernel   (elsewhere: pip install notebook nbconvert)"}
	if p := e.LookPath("jupyter"); p == "" {
		c.Problem = "jupyter not found on PATH"
	} else if v, err := e.output(30*time.Second, p, "nbconvert", "--version"); err != nil {
		c.Problem = fmt.Sprintf("%s has no working nbconvert (%v)", p, err)
	} else {
		c.OK, c.Found = true, fmt.Sprintf("%s (nbconvert %s)", p, lastLine(v))
	}
	return c
}

// kernelChecks checks the gonb kernel spec registered with Jupyter (ks) and LOBA's environment in it
// (kenv), for the LOBA folder root ("" when none was found); spec is nil when none is registered.
func (e Env) kernelChecks(root string) (spec *KernelSpec, ks, kenv Check) {
	ks = Check{Name: "gonb kernel", Required: true, Fix: "gonb --install && loba setup kernel"}
	kenv = Check{Name: "kernel env", Required: true, Fix: "cd <your LOBA clone> && loba setup kernel"}
	if root != "" {
		kenv.Fix = "loba setup kernel --root " + root
	}
	spec, err := e.FindKernelSpec()
	switch {
	case err != nil:
		ks.Problem = err.Error()
		kenv.Problem = "no readable gonb kernel spec"
	case spec == nil:
		ks.Problem = "no gonb kernel registered with Jupyter"
		kenv.Problem = "no gonb kernel spec to record LOBA_ROOT in"
	case len(spec.Argv) == 0 || !fileExists(spec.Argv[0]):
		ks.Problem = fmt.Sprintf("%s starts %q, which does not exist", spec.Path(), strings.Join(spec.Argv, " "))
		ks.Fix = "gonb --install"
	default:
		ks.OK, ks.Found = true, spec.Path()
	}
	if spec != nil {
		checkKernelRoot(&kenv, spec, root)
	}
	return spec, ks, kenv
}

// checkKernelRoot fills kenv from the LOBA_ROOT that spec records: it must be a LOBA folder, and this
// one when root is known.
func checkKernelRoot(kenv *Check, spec *KernelSpec, root string) {
	kroot := spec.Env["LOBA_ROOT"]
	switch {
	case kroot == "":
		kenv.Problem = "the gonb kernel does not know where LOBA is (no LOBA_ROOT in " + spec.Path() + ")"
	case !IsRoot(kroot):
		kenv.Problem = fmt.Sprintf("LOBA_ROOT=%s in %s is not a LOBA folder", kroot, spec.Path())
	case root != "" && !sameDir(kroot, root):
		kenv.Problem = fmt.Sprintf("the gonb kernel uses LOBA at %s, not this one (%s)", kroot, root)
	default:
		kenv.OK, kenv.Found = true, "LOBA_ROOT="+kroot
	}
}

// echartsCheck looks for the offline copy of ECharts (optional: charts load from the CDN when online).
func (e Env) echartsCheck() Check {
	c := Check{Name: "echarts", Fix: fmt.Sprintf("./install.sh   (npm pack echarts@%s, copies dist/echarts.min.js to %s)", EChartsVersion, e.EChartsPath())}
	if st, err := os.Stat(e.EChartsPath()); err == nil && st.Size() > 100_000 {
		c.OK, c.Found = true, e.EChartsPath()
	} else {
		c.Problem = "no offline copy of ECharts: charts need the CDN (online) to draw"
	}
	return c
}

// cudaPluginCheck looks for the CUDA PJRT plugin LOBA's commands would load (checked where there
// is a GPU): backend.FindCUDAPlugin, which finds jax's plugin in Python's site-packages too, so
// nothing needs downloading where jax is installed (Colab). Found names the plugin and where it
// comes from. A jax plugin only Python's own folder list shows (a Python that loba's globs miss)
// gets the command that records it for loba.
func (e Env) cudaPluginCheck() Check {
	c := Check{Name: "cuda plugin", Required: true, Fix: "loba setup cuda   (or ./install.sh; downloads the pinned plugin and NVIDIA libraries)"}
	if pl, ok := backend.FindCUDAPlugin(e.probe()); ok {
		c.OK, c.Found = true, fmt.Sprintf("%s (%s)", pl.Path, pl.Source)
		return c
	}
	if jax := e.PythonJaxPlugins(); len(jax) > 0 {
		rec := backend.RecordFile(e.probe())
		c.Problem = fmt.Sprintf("jax's CUDA plugin %s (%s) is in a Python folder loba does not search", jax[0].Path, jax[0].Source)
		c.Fix = fmt.Sprintf("mkdir -p %s && echo %s > %s   (or ./install.sh, which records it)", shellQuote(filepath.Dir(rec)), shellQuote(jax[0].Path), shellQuote(rec))
		return c
	}
	c.Problem = "a GPU is present but no CUDA PJRT plugin (none installed, no jax-cuda12-pjrt / jax-cuda13-pjrt in Python's site-packages), so LOBA would compute on the CPU"
	return c
}

// goAtLeast compares "go1.26.8" against "1.26".
func goAtLeast(have, want string) bool {
	have = strings.TrimPrefix(strings.Fields(have + " ")[0], "go")
	hp, wp := strings.Split(have, "."), strings.Split(want, ".")
	for i := range wp {
		var h, w int
		if i < len(hp) {
			fmt.Sscanf(hp[i], "%d", &h)
		}
		fmt.Sscanf(wp[i], "%d", &w)
		if h != w {
			return h > w
		}
	}
	return true
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func sameDir(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}
