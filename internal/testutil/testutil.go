// Package testutil holds helpers shared by LOBA's tests: the fixture root, the test backend and
// relative-error checks. It is imported only from _test.go files.
package testutil

import (
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gomlx/compute"

	"github.com/loba-dev/loba/internal/fixtures"
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

// Fixtures is $LOBA_FIXTURES, or ../shared/fixtures beside the repository. It fails the test when
// the folder does not exist: parity tests never skip.
func Fixtures(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("LOBA_FIXTURES")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared", "fixtures")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("fixtures folder %q not found (set LOBA_FIXTURES): %v", dir, err)
	}
	return dir
}

// Cases lists the case folders of one kind (e.g. "unet") under the fixture root, sorted. It fails
// the test when there is none.
func Cases(t testing.TB, kind string) []string {
	t.Helper()
	dirs, err := fixtures.Cases(Fixtures(t), kind)
	if err != nil {
		t.Fatal(err)
	}
	return dirs
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
