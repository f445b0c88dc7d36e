package train

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
)

// TestOnPhase: a run says it compiles before its first step and trains after it; a finished run
// re-run compiles nothing.
func TestOnPhase(t *testing.T) {
	p := tinyPreset(t, 2)
	out := t.TempDir()
	for _, want := range [][]string{{"compiling", "training"}, nil} {
		run, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t)})
		require.NoError(t, err)
		var phases []string
		run.OnPhase = func(ph string) { phases = append(phases, strings.Fields(ph)[0]) }
		_, err = run.Train()
		require.NoError(t, err)
		require.Equal(t, want, phases)
	}
}
