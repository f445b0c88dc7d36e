package slider

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
)

// TestShippedPresets: every preset in notebooks/presets (and compare/, colors/, fast/, real/) loads, normalizes and expands; the toy
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
	fast, err := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "notebooks", "presets", "fast", "*.yaml"))
	require.NoError(t, err)
	require.Len(t, fast, 6, "toy-size, toy-color and toy-erase-red, each with the trajectory cache and with no denoise")
	files = append(files, fast...)
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

// TestFastPresetsMeasureAsTheOriginals (issue 17): each fast/ preset uses a fast mode and has the eval
// section of the preset it speeds up (fast/toy-size-nodenoise.yaml: toy-size.yaml).
func TestFastPresetsMeasureAsTheOriginals(t *testing.T) {
	root := filepath.Join(testutil.RepoRoot(t), "notebooks", "presets")
	fast, err := filepath.Glob(filepath.Join(root, "fast", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, fast)
	for _, f := range fast {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, _, err := Load(f)
			require.NoError(t, err)
			name := strings.TrimSuffix(filepath.Base(f), "-nodenoise.yaml")
			if !strings.HasSuffix(name, ".yaml") {
				name += ".yaml"
			}
			orig, _, err := Load(filepath.Join(root, name))
			require.NoError(t, err)
			require.Equal(t, orig.Eval, p.Eval, "the eval section of %s", name)
			require.True(t, p.Denoise == DenoiseNone || p.TrajectoryCache.Size > 0, "a fast mode")
			require.Equal(t, strings.HasSuffix(f, "-nodenoise.yaml"), p.Denoise == DenoiseNone)
		})
	}
}
