// Package sdtest composes tiny diffusers pipeline folders from the golden fixtures
// ($LOBA_FIXTURES) for tests of code that loads whole Stable Diffusion models (pipelines, the
// trainer, the CLI): models/sd/tinypipe with a testing.TB. It is imported only from _test.go files.
package sdtest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/sd/tinypipe"
)

// Pipeline is a composed pipeline folder (tinypipe.Pipeline).
type Pipeline = tinypipe.Pipeline

// BPEPath is the CLIP BPE merges file of the fixtures.
func BPEPath(t testing.TB) string { return tinypipe.BPEPath(testutil.Fixtures(t)) }

// Compose builds one pipeline folder per UNet fixture case in a temporary folder (tinypipe.Compose).
// At least one SD1.x-shaped and one SDXL-shaped pipeline must compose; UNet cases nothing fits are
// logged. scheduler picks the scheduler config ("" = a DDIM case for SD1.x, an Euler case for SDXL).
func Compose(t testing.TB, scheduler string) []*Pipeline {
	t.Helper()
	out, notes, err := tinypipe.Compose(testutil.Fixtures(t), t.TempDir(), scheduler)
	require.NoError(t, err)
	for _, n := range notes {
		// A fixture set problem, not a code path: the other cases still run, and each kind must compose.
		t.Log(n)
	}
	kinds := map[bool]int{}
	for _, tp := range out {
		kinds[tp.SDXL]++
	}
	require.Positive(t, kinds[false], "no SD1.x-shaped pipeline could be composed from the fixtures")
	require.Positive(t, kinds[true], "no SDXL-shaped pipeline could be composed from the fixtures")
	return out
}

// ReadJSON decodes a JSON file, failing the test on error.
func ReadJSON(t testing.TB, path string, into any) {
	t.Helper()
	require.NoError(t, tinypipe.ReadJSON(path, into))
}

// First returns the first composed pipeline of the given shape (SDXL or not).
func First(t testing.TB, sdxl bool) *Pipeline {
	t.Helper()
	for _, tp := range Compose(t, "") {
		if tp.SDXL == sdxl {
			return tp
		}
	}
	t.Fatalf("no composed pipeline with sdxl=%v", sdxl)
	return nil
}
