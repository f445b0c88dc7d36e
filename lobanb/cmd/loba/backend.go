package main

import (
	"fmt"
	"io"

	"github.com/gomlx/compute"

	"github.com/loba-dev/loba/models/backend"
)

// startBackend creates the process's backend (backend.Open: GOMLX_BACKEND when set, else the CUDA
// PJRT plugin where there is an NVIDIA GPU, jax's included, else the pure-Go backend; no network,
// no wait) and prints "backend: <which>; <why>" on stderr, the line a computing command starts
// with, then the one-line warning when a CUDA plugin failed and the Go backend took over. Later
// backend.New() calls in the process (sd.LoadPipeline, train.NewPlan, rundir's LoadModel) return
// this same backend. On error it prints "loba <cmd>: …" and returns false (the caller exits 2).
func startBackend(cmd string, stderr io.Writer) (compute.Backend, bool) {
	s, err := backend.Open()
	if err != nil {
		fmt.Fprintf(stderr, "loba %s: %v\n", cmd, err)
		return nil, false
	}
	fmt.Fprintf(stderr, "backend: %s\n", s.Line())
	if s.Warning != "" {
		fmt.Fprintf(stderr, "loba %s: warning: %s\n", cmd, s.Warning)
	}
	return s.Backend, true
}
