// Package backend creates the GoMLX backend LOBA computes on: XLA (the CUDA PJRT plugin on a GPU,
// CPU otherwise) when a plugin is installed, else the pure-Go backend (github.com/gomlx/compute's
// gobackend, formerly simplego).
//
// GOMLX_BACKEND chooses as in gomlx ("go", "xla:cuda", "xla:/path/plugin.so", ...). For the Go
// backend LOBA adds "parallelism=-1" unless a parallelism option is given: its bounded worker pool
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

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gomlx/exceptions"
	_ "github.com/gomlx/go-xla/compute/xla/autoinstall"
)

// EnvBackend is gomlx's backend selection variable.
const EnvBackend = "GOMLX_BACKEND"

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

// New creates the backend named by GOMLX_BACKEND (see Config). With GOMLX_BACKEND unset it tries
// XLA and falls back to the Go backend, telling why on stderr.
func New() (compute.Backend, error) {
	env, set := os.LookupEnv(EnvBackend)
	if set && strings.TrimSpace(env) != "" {
		b, err := newWithConfig(Config(env))
		if err != nil {
			return nil, fmt.Errorf("backend %s=%q: %w", EnvBackend, env, err)
		}
		return b, nil
	}
	b, err := newWithConfig("xla")
	if err == nil {
		return b, nil
	}
	fmt.Fprintf(os.Stderr, "loba: no XLA backend (%v); computing on the pure-Go backend (slow; fine for tiny models)\n", err)
	return newWithConfig(Config("go"))
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
