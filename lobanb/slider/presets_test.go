package slider

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
)

// TestShippedPresets: every preset in notebooks/presets loads, normalizes and expands.
func TestShippedPresets(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "notebooks", "presets", "*.yaml"))
	require.NoError(t, err)
	compare, err := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "notebooks", "presets", "compare", "*.yaml"))
	require.NoError(t, err)
	files = append(files, compare...)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, warnings, err := Load(f)
			require.NoError(t, err)
			require.Empty(t, warnings)
			es, err := p.Entries()
			require.NoError(t, err)
			require.NotEmpty(t, es)
			require.NotEmpty(t, p.Eval.Kind, "shipped presets measure themselves")
		})
	}
}
