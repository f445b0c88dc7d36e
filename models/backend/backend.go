// Package backend creates the GoMLX backend LOBA computes on: XLA (the CUDA PJRT plugin on a GPU,
// CPU otherwise) when a plugin is installed, else the pure-Go simplego backend.
//
// GOMLX_BACKEND chooses as in gomlx ("go", "xla:cuda", "xla:/path/plugin.so", ...). For simplego LOBA
// adds "parallelism=-1" unless a parallelism option is given: gomlx v0.26.0's bounded worker pool
// can deadlock on small machines (its 2×cores slots are exhausted when DotGenerals running in
// workers each wait for a slot of their own — seen on 2 cores with the gemm gradients of
// models/nn/gradfix); unlimited parallelism starts every task in its own goroutine and never
// waits, and trains the toy base model ~1.3× faster than sequential op execution on 2 cores.
package backend

import (
	"fmt"
	"os"
	"strings"

	"github.com/gomlx/exceptions"
	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego"
	_ "github.com/gomlx/gomlx/backends/xla"
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

// New creates the backend named by GOMLX_BACKEND (see Config). With GOMLX_BACKEND unset it tries XLA
// and falls back to simplego, telling why on stderr.
func New() (backends.Backend, error) {
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

// newWithConfig is backends.NewWithConfig with its panics (unknown backend names) returned as errors.
func newWithConfig(config string) (backends.Backend, error) {
	var (
		b      backends.Backend
		newErr error
	)
	// simplego prints "parallelism set to N" on stdout, which would corrupt a command's output
	// (e.g. JSON): keep it off stdout while the backend is created.
	if devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil && strings.Contains(config, "parallelism=") {
		saved := os.Stdout
		os.Stdout = devnull
		defer func() { os.Stdout = saved; _ = devnull.Close() }()
	}
	if err := exceptions.TryCatch[error](func() { b, newErr = backends.NewWithConfig(config) }); err != nil {
		return nil, err
	}
	return b, newErr
}
