// Package backend creates the GoMLX backend LOBA computes on: XLA (the CUDA PJRT plugin on a GPU,
// CPU otherwise) when a plugin is installed, else the pure-Go simplego backend.
//
// GOMLX_BACKEND chooses as in gomlx ("go", "xla:cuda", "xla:/path/plugin.so", ...). For simplego LOBA
// adds "ops_sequential" unless an ops_* option is given: gomlx v0.26.0's parallel op execution can
// deadlock on small machines (its 4-worker pool is exhausted when four DotGenerals each wait for a
// worker of their own — seen on 2 cores with the gemm gradients of models/nn/gradfix). Large ops
// still use every core inside each op.
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
	if strings.Contains(opts, "ops_") {
		return env
	}
	if opts == "" {
		return "go:ops_sequential"
	}
	return "go:" + opts + ",ops_sequential"
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
	if err := exceptions.TryCatch[error](func() { b, newErr = backends.NewWithConfig(config) }); err != nil {
		return nil, err
	}
	return b, newErr
}
