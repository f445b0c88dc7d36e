package lobanb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/janpfeifer/must"
	"github.com/loba-dev/loba/kernelsetup"
	"github.com/loba-dev/loba/models/sd/tinypipe"
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
	fixtures := os.Getenv("LOBA_FIXTURES")
	if fixtures == "" {
		root := kernelsetup.Env{}.FindRoot()
		if root == "" {
			return "", errors.New("lobanb.TestSizeModel: set LOBA_FIXTURES (or LOBA_ROOT) to find the fixture models")
		}
		fixtures = filepath.Join(root, "..", "shared", "fixtures")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	tp, err := tinypipe.First(fixtures, filepath.Join(cache, "loba", "tiny-"+kind), sdxl)
	if err != nil {
		return "", err
	}
	return tp.Dir, nil
}

// MustTestSizeModel is TestSizeModel that panics on error.
func MustTestSizeModel(kind string) string { return must.M1(TestSizeModel(kind)) }
