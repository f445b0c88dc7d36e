// Package testutil holds helpers shared by LOBA's tests: the repository root, the test backend and
// relative-error checks. It is imported only from _test.go files (and test-support packages such as
// models/hub/hubtest). The fixtures folder and its cases are internal/fixtures' (Root, Cases).
package testutil

import (
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gomlx/compute"

	lobabackend "github.com/loba-dev/loba/models/backend"
)

// RepoRoot is the folder holding go.mod, found by walking up from the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testutil: no go.mod above the working directory")
		}
		dir = parent
	}
}

var (
	backendOnce sync.Once
	backend     compute.Backend
	backendErr  error
)

// Backend returns the shared simplego backend (configured by models/backend); it
// sets GOMLX_BACKEND=go and GOMLX_NO_AUTO_INSTALL=1 so no test ever tries a download.
func Backend(t testing.TB) compute.Backend {
	t.Helper()
	backendOnce.Do(func() {
		os.Setenv("GOMLX_BACKEND", "go")
		os.Setenv("GOMLX_NO_AUTO_INSTALL", "1")
		backend, backendErr = lobabackend.New()
	})
	if backendErr != nil {
		t.Fatalf("creating the simplego backend: %v", backendErr)
	}
	return backend
}

// RelErr is ||got - want||₂ / ||want||₂ (||got - want||₂ when want is all zeros). Lengths must match.
func RelErr[T float32 | float64](got, want []T) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range got {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}
