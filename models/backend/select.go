package backend

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/gomlx/compute"
	"github.com/gomlx/go-xla/compute/xla"
	"k8s.io/klog/v2"
)

// Probe is what Select and FindCUDAPlugin look at. The zero value is this process: its
// environment, /dev and the system's folders; tests point each at a temporary folder.
type Probe struct {
	// Env is the whole environment; nil means the process's (os.LookupEnv).
	Env map[string]string
	// DevDir is where GPU device files live ("" means /dev).
	DevDir string
	// SysRoot prefixes the system folders searched for plugins (/usr/local/lib/…, /usr/lib/…,
	// /opt/conda); "" means /.
	SysRoot string
}

// Getenv returns the variable key of p's environment ("" when unset).
func (p Probe) Getenv(key string) string {
	v, _ := p.lookupEnv(key)
	return v
}

func (p Probe) lookupEnv(key string) (string, bool) {
	if p.Env == nil {
		return os.LookupEnv(key)
	}
	v, ok := p.Env[key]
	return v, ok
}

// home is $HOME (the process's home folder for the zero Probe).
func (p Probe) home() string {
	if h := p.Getenv("HOME"); h != "" || p.Env != nil {
		return h
	}
	h, _ := os.UserHomeDir()
	return h
}

// sys is the system folder path under p.SysRoot.
func (p Probe) sys(path string) string {
	if p.SysRoot == "" {
		return path
	}
	return filepath.Join(p.SysRoot, path)
}

// processGPU caches the zero Probe's answer: nvidia-smi may take a while on WSL.
var processGPU = sync.OnceValue(func() bool { return nvidiaGPU("/dev", os.Getenv("PATH")) })

// NVIDIAGPU reports whether an NVIDIA GPU is present: a device file DevDir/nvidia0 (nvidia1, …),
// or, under WSL (DevDir/dxg, no such files), nvidia-smi -L on PATH listing one (5 s at most). It
// never waits otherwise. The zero Probe's answer is computed once per process.
func (p Probe) NVIDIAGPU() bool {
	if p.DevDir == "" && p.Env == nil && p.SysRoot == "" {
		return processGPU()
	}
	dev := p.DevDir
	if dev == "" {
		dev = "/dev"
	}
	return nvidiaGPU(dev, p.Getenv("PATH"))
}

// nvidiaGPU is NVIDIAGPU for the device folder dev and the PATH list path.
func nvidiaGPU(dev, path string) bool {
	if m, _ := filepath.Glob(filepath.Join(dev, "nvidia[0-9]*")); len(m) > 0 {
		return true
	}
	if _, err := os.Stat(filepath.Join(dev, "dxg")); err != nil {
		return false
	}
	smi := LookPath(path, "nvidia-smi")
	if smi == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, smi, "-L").Output()
	return err == nil && strings.Contains(string(out), "GPU ")
}

// LookPath finds an executable called name on the PATH list path ("" if none): exec.LookPath for
// another environment's PATH (kernelsetup's Env).
func LookPath(path, name string) string {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		f := filepath.Join(dir, name)
		if st, err := os.Stat(f); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return f
		}
	}
	return ""
}

// Choice is what Select picked.
type Choice struct {
	// Config is the backend configuration ("go:parallelism=-1", "xla:/…/xla_cuda_plugin.so,preallocate=false").
	Config string
	// Plugin is the CUDA plugin the configuration loads (nil when none was found for it).
	Plugin *Plugin
	// Reason says why, in a few words ("no NVIDIA GPU", "GOMLX_BACKEND=go", …).
	Reason string
	// Explicit: GOMLX_BACKEND chose (a failure is then an error, not a fallback).
	Explicit bool
}

// Select picks the backend configuration (see the package doc). It only looks at files and the
// environment: no network, no plugin loaded.
func Select(p Probe) Choice {
	if env := strings.TrimSpace(p.Getenv(EnvBackend)); env != "" {
		return selectExplicit(p, env)
	}
	goChoice := Choice{Config: Config("go"), Reason: "no NVIDIA GPU"}
	if !p.NVIDIAGPU() {
		return goChoice
	}
	pl, ok := FindCUDAPlugin(p)
	if !ok {
		goChoice.Reason = "NVIDIA GPU but no CUDA PJRT plugin (./install.sh or `loba setup cuda` installs one)"
		return goChoice
	}
	return Choice{Config: "xla:" + pl.Path + ",preallocate=false", Plugin: &pl, Reason: "NVIDIA GPU; CUDA plugin " + pl.Source}
}

// selectExplicit is Select for GOMLX_BACKEND=env: Config(env), with "xla:cuda[,options]" pointed
// at the CUDA plugin FindCUDAPlugin finds where there is a GPU (go-xla's own search knows neither
// jax's plugin nor the one install.sh recorded).
func selectExplicit(p Probe, env string) Choice {
	ch := Choice{Config: Config(env), Reason: EnvBackend + "=" + env, Explicit: true}
	name, rest, _ := strings.Cut(ch.Config, ":")
	plugin, opts, _ := strings.Cut(rest, ",")
	if !isXLAName(name) || plugin != "cuda" || !p.NVIDIAGPU() {
		return ch
	}
	if pl, ok := FindCUDAPlugin(p); ok {
		ch.Config, ch.Plugin = "xla:"+pl.Path, &pl
		if opts != "" {
			ch.Config += "," + opts
		}
	}
	return ch
}

// isXLAName reports whether name is one of the XLA backend's names.
func isXLAName(name string) bool {
	switch name {
	case xla.BackendName, "stablehlo", "hlo", "shlo":
		return true
	}
	return false
}

// Selection is the backend a process computes on and how it was chosen.
type Selection struct {
	Backend compute.Backend
	Choice
	// Warning is set when an automatically chosen CUDA plugin failed to load and the Go backend
	// took over (one line).
	Warning string
}

// Line is the one-line account a command prints: "xla:cuda (plugin …, PJRT API v0.N, 1 device);
// NVIDIA GPU; CUDA plugin …" or "go (pure Go, AVX-512); no NVIDIA GPU".
func (s *Selection) Line() string { return Describe(s.Backend) + "; " + s.Reason }

// create makes the backend ch chose. An automatic CUDA choice that fails falls back to the Go
// backend (Selection.Warning says why); an explicit one returns the error.
func create(ch Choice) (*Selection, error) {
	if ch.Plugin != nil {
		prepareCUDA(*ch.Plugin)
	}
	xla.EnableAutoInstall(autoInstallAllowed())
	var (
		b   compute.Backend
		err error
	)
	quietKlog(func() { b, err = newWithConfig(ch.Config) })
	switch {
	case err == nil:
		return &Selection{Backend: b, Choice: ch}, nil
	case ch.Explicit || ch.Plugin == nil:
		return nil, fmt.Errorf("backend %s: %w", ch.Reason, err)
	}
	warn := fmt.Sprintf("the CUDA PJRT plugin %s did not load (%s); computing on the pure-Go backend", ch.Plugin.Path, shortError(err, ch.Plugin.Path))
	if ch.Plugin.SitePackages != "" {
		warn += " (`loba setup cuda` installs LOBA's pinned plugin, which is then preferred)"
	}
	if b, err = newWithConfig(Config("go")); err != nil {
		return nil, err
	}
	return &Selection{Backend: b, Choice: Choice{Config: Config("go"), Reason: "CUDA plugin failed to load"}, Warning: warn}, nil
}

// autoInstallAllowed: LOBA_AUTO_INSTALL is true and GOMLX_NO_AUTO_INSTALL is unset.
func autoInstallAllowed() bool {
	on, _ := strconv.ParseBool(os.Getenv(EnvAutoInstall))
	_, off := os.LookupEnv(EnvNoAutoInstall)
	return on && !off
}

// quietKlog runs fn with go-xla's klog output discarded: a plugin that fails to load logs the
// dlopen error there too, which the returned error (or the fallback warning) already says.
func quietKlog(fn func()) {
	klog.SetLogger(logr.Discard())
	defer klog.ClearLogger()
	fn()
}

// shortError is the first line of err's message with the plugin's path (which go-xla repeats)
// shortened to its file name, at most 300 bytes.
func shortError(err error, path string) string {
	s, _, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
	s = strings.ReplaceAll(s, path, filepath.Base(path))
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}

// prepareCUDA sets what jax's plugin needs from the environment, where the user has not: XLA's
// CUDA folder (ptxas, libdevice) in XLA_FLAGS, and GOPJRT_CUDA_CHECKS=0, since go-xla's check
// looks for the nvidia/ folder beside go-xla's own layout, not jax's (it would warn at length).
func prepareCUDA(pl Plugin) {
	if pl.SitePackages == "" {
		return
	}
	if _, set := os.LookupEnv("GOPJRT_CUDA_CHECKS"); !set {
		_ = os.Setenv("GOPJRT_CUDA_CHECKS", "0")
	}
	flags := os.Getenv("XLA_FLAGS")
	if strings.Contains(flags, "--xla_gpu_cuda_data_dir") {
		return
	}
	if dir := pl.CUDADataDir(); dir != "" {
		_ = os.Setenv("XLA_FLAGS", strings.TrimSpace(flags+" --xla_gpu_cuda_data_dir="+dir))
	}
}
