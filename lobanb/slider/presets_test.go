package slider

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
)

// TestShippedPresets: every preset in notebooks/presets (and compare/, colors/, real/) loads, normalizes and expands; the toy
// presets measure themselves (an eval section: its read-outs are the toy world's), the real-model
// presets of notebooks/presets/real have none.
func TestShippedPresets(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "notebooks", "presets", "*.yaml"))
	require.NoError(t, err)
	compare, err := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "notebooks", "presets", "compare", "*.yaml"))
	require.NoError(t, err)
	files = append(files, compare...)
	colors, err := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "notebooks", "presets", "colors", "*.yaml"))
	require.NoError(t, err)
	require.Len(t, colors, 8, "five colour-slider pairs and three U-LOBA colours")
	files = append(files, colors...)
	real, err := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "notebooks", "presets", "real", "*.yaml"))
	require.NoError(t, err)
	require.Len(t, real, 2)
	files = append(files, real...)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, warnings, err := Load(f)
			require.NoError(t, err)
			require.Empty(t, warnings)
			es, err := p.Entries()
			require.NoError(t, err)
			require.NotEmpty(t, es)
			if p.Model.NameOrPath == "" {
				require.NotEmpty(t, p.Eval.Kind, "shipped toy presets measure themselves")
			} else {
				require.Empty(t, p.Eval.Kind, "the eval measures toy-world read-outs only")
			}
		})
	}
}
