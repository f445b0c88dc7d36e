// Package backend creates the GoMLX backend LOBA computes on, once per process, without touching the
// network:
//
//   - GOMLX_BACKEND when it is set, as in gomlx ("go", "xla:cuda", "xla:/path/plugin.so", ...); its
//     "xla:cuda" resolves to the CUDA plugin FindCUDAPlugin finds (jax's included). A backend named
//     there that fails is an error: the user asked for it.
//   - else, where an NVIDIA GPU is present (/dev/nvidia0…), the CUDA PJRT plugin FindCUDAPlugin
//     finds: one named by PJRT_PLUGIN_LIBRARY_PATH, the one install.sh / `loba setup cuda`
//     installed in ~/.local/lib/go-xla/nvidia, one install.sh recorded, or jax's
//     (jax-cuda12-pjrt / jax-cuda13-pjrt in Python's site-packages). Its client does not preallocate
//     GPU memory (preallocate=false). A plugin that fails to load falls back to the Go backend with a
//     one-line warning.
//   - else the pure-Go backend (github.com/gomlx/compute's gobackend, formerly simplego).
//
// Installing a plugin is install.sh's job (or `loba setup cuda`): go-xla's auto-install is off, as
// if GOMLX_NO_AUTO_INSTALL were set, so no command waits on a download or an unreachable server.
// LOBA_AUTO_INSTALL=1 (with GOMLX_NO_AUTO_INSTALL unset) turns it back on for a plugin that
// GOMLX_BACKEND names by name ("xla:cpu", "xla:cuda"): go-xla then downloads its own default pick.
//
// New returns the process's backend: the first call creates it, later calls (sd.LoadPipeline, the
// trainer, rundir) get the same one while GOMLX_BACKEND selects the same configuration, so a GPU
// has one PJRT client per process. Open also returns how it was chosen (Selection.Line), for a
// command's first line.
//
// For the Go backend LOBA adds "parallelism=-1" unless a parallelism option is given: its bounded worker pool
// deadlocks on small machines. Seen on gomlx v0.26.0 (its 2×cores slots exhausted when DotGenerals
// running in workers each wait for a slot of their own), and still on v0.28.8 (compute v0.1.6):
// without the override, the lobanb/train and lobanb/cmd/loba tests hang on 2 cores, every worker
// in workerspool.(*Pool).Saturate or WaitToStart's sync.Cond.Wait, until the 10-minute test
// timeout. Unlimited parallelism starts every task in its own goroutine and never waits.
//
// The Go backend's matmul kernels use AVX2/AVX-512 only in binaries built with GOEXPERIMENT=simd
// (Go ≥ 1.26): SIMDEnabled tells whether this binary was.
package backend

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gomlx/exceptions"
	_ "github.com/gomlx/go-xla/compute/xla/autoinstall"
)

const (
	// EnvBackend is gomlx's backend selection variable.
	EnvBackend = "GOMLX_BACKEND"
	// EnvNoAutoInstall is go-xla's variable that turns its plugin auto-install off.
	EnvNoAutoInstall = "GOMLX_NO_AUTO_INSTALL"
	// EnvAutoInstall=1 lets go-xla download a plugin that GOMLX_BACKEND names (off by default).
	EnvAutoInstall = "LOBA_AUTO_INSTALL"
)

// Config returns the backend configuration LOBA uses for a GOMLX_BACKEND value.
func Config(env string) string {
	env = strings.TrimSpace(env)
	name, opts, _ := strings.Cut(env, ":")
	if name != "go" {
		return env
	}
	if strings.Contains(opts, "parallelism=") || strings.Contains(opts, "ops_sequential") {
		return env
	}
	if opts == "" {
		return "go:parallelism=-1"
	}
	return "go:" + opts + ",parallelism=-1"
}

// shared holds the backends this process created, by configuration (see New).
var shared = struct {
	sync.Mutex
	byConfig map[string]*Selection
}{byConfig: map[string]*Selection{}}

// New returns the process's backend (see the package doc): the first call selects and creates it,
// later calls return the same one. A fallback warning goes to stderr once, from the call that
// created the backend.
func New() (compute.Backend, error) {
	s, fresh, err := open(Probe{})
	if err != nil {
		return nil, err
	}
	if fresh && s.Warning != "" {
		fmt.Fprintf(os.Stderr, "loba: warning: %s\n", s.Warning)
	}
	return s.Backend, nil
}

// Open is New with the account of the choice; it prints nothing (the caller shows s.Line() and
// s.Warning).
func Open() (*Selection, error) {
	s, _, err := open(Probe{})
	return s, err
}

// open selects with p and returns the shared backend of that choice, creating it when this process
// has none yet (fresh).
func open(p Probe) (s *Selection, fresh bool, err error) {
	ch := Select(p)
	shared.Lock()
	defer shared.Unlock()
	if s := shared.byConfig[ch.Config]; s != nil {
		return s, false, nil
	}
	if s, err = create(ch); err != nil {
		return nil, false, err
	}
	shared.byConfig[ch.Config] = s
	return s, true, nil
}

// newWithConfig is compute.NewWithConfig with its panics (unknown backend names) returned as errors.
func newWithConfig(config string) (compute.Backend, error) {
	var (
		b      compute.Backend
		newErr error
	)
	// The Go backend prints "parallelism set to N" on stdout, which would corrupt a command's
	// output (e.g. JSON): keep it off stdout while the backend is created.
	if devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil && strings.Contains(config, "parallelism=") {
		saved := os.Stdout
		os.Stdout = devnull
		defer func() { os.Stdout = saved; _ = devnull.Close() }()
	}
	if err := exceptions.TryCatch[error](func() { b, newErr = compute.NewWithConfig(config) }); err != nil {
		return nil, err
	}
	return b, newErr
}
