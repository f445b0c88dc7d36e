package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/loba-dev/loba/models/backend"
)

// TestStartBackend: the first line says which backend and why; the backend is the process's one,
// which backend.New (sd.LoadPipeline, the trainer) returns too.
func TestStartBackend(t *testing.T) {
	t.Setenv(backend.EnvBackend, "go")
	var stderr bytes.Buffer
	b, ok := startBackend("train", &stderr)
	if !ok {
		t.Fatalf("startBackend failed: %s", stderr.String())
	}
	first, _, _ := strings.Cut(stderr.String(), "\n")
	if !strings.HasPrefix(first, "backend: go (pure Go, ") || !strings.HasSuffix(first, "; GOMLX_BACKEND=go") {
		t.Errorf("first line %q", first)
	}
	again, err := backend.New()
	if err != nil || again != b {
		t.Errorf("backend.New() = %v, %v; want the backend startBackend created", again, err)
	}

	t.Setenv(backend.EnvBackend, "nope")
	stderr.Reset()
	if _, ok := startBackend("sample", &stderr); ok || !strings.HasPrefix(stderr.String(), "loba sample: backend GOMLX_BACKEND=nope: ") {
		t.Errorf("unknown backend: ok=%v, stderr %q", ok, stderr.String())
	}
}
