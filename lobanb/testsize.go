package lobanb

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/janpfeifer/must"
	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/fixtures/tinypipe"
	"github.com/loba-dev/loba/kernelsetup"
)

// TestSize reports whether LOBA_TEST_SIZE is set: the notebooks that need a real model (SD1.5,
// SDXL) then run on tiny fixture models with a few steps, so CI and a CPU can execute them.
func TestSize() bool { return os.Getenv("LOBA_TEST_SIZE") != "" }

// TestSizeModel composes the tiny fixture pipeline of a kind ("sd15" or "sdxl") from the golden
// fixtures ($LOBA_FIXTURES, else ../shared/fixtures beside LOBA's folder) into the user cache and
// returns its folder: random tiny weights in the real architecture, for running notebooks under
// LOBA_TEST_SIZE — not for pictures.
func TestSizeModel(kind string) (string, error) {
	var sdxl bool
	switch kind {
	case "sd15":
	case "sdxl":
		sdxl = true
	default:
		return "", fmt.Errorf("lobanb.TestSizeModel: kind %q, want sd15 or sdxl", kind)
	}
	root, err := fixtures.FindRoot(kernelsetup.Env{}.FindRoot())
	if err != nil {
		return "", fmt.Errorf("lobanb.TestSizeModel: %w (LOBA_ROOT names the repository root)", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	tp, err := tinypipe.ComposeFirst(root, filepath.Join(cache, "loba", "tiny-"+kind), sdxl)
	if err != nil {
		return "", err
	}
	return tp.Dir, nil
}

// MustTestSizeModel is TestSizeModel that panics on error.
func MustTestSizeModel(kind string) string { return must.M1(TestSizeModel(kind)) }
