package singlefile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
)

// TestBuiltinConfigDir: the built-in config folder of each kind holds the hub configs and the hub
// scheduler config byte for byte, is written once, and builds the same layout as LayoutFor.
func TestBuiltinConfigDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	real := filepath.Join(fixtures.Root(t), "real", "configs")
	for _, kind := range []string{KindSD15, KindSDXLBase} {
		t.Run(kind, func(t *testing.T) {
			dir, err := BuiltinConfigDir(kind)
			require.NoError(t, err)
			files, err := BuiltinConfigFiles(kind)
			require.NoError(t, err)
			require.Len(t, files, len(components(kind))+1)
			for name, want := range files {
				got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
				require.NoError(t, err)
				require.Equal(t, string(want), string(got), name)
			}
			hubSched, err := os.ReadFile(filepath.Join(real, kind, "scheduler", "scheduler_config.json"))
			require.NoError(t, err)
			require.Equal(t, string(hubSched), string(files["scheduler/scheduler_config.json"]))

			again, err := BuiltinConfigDir(kind)
			require.NoError(t, err)
			require.Equal(t, dir, again)
			fromDir, err := LayoutFromDir(kind, dir)
			require.NoError(t, err)
			require.Equal(t, sfLayout(t, kind), fromDir)
			_, err = HubConfigRepo(kind)
			require.NoError(t, err)
		})
	}
	_, err := BuiltinConfigDir("sd21")
	require.ErrorContains(t, err, "unknown single-file kind")
	_, err = HubConfigRepo("sd21")
	require.ErrorContains(t, err, "unknown single-file kind")
}

// TestSaveDir: a diffusers folder written as one single file loads back (Load, with the folder's
// layout) to the folder's tensors.
func TestSaveDir(t *testing.T) {
	tc := sfTinyCases(t)[0]
	dir := t.TempDir()
	for comp, d := range tc.dirs {
		require.NoError(t, os.Symlink(d, filepath.Join(dir, comp)))
	}
	path := filepath.Join(t.TempDir(), "tiny.safetensors")
	require.NoError(t, SaveDir(path, tc.kind, dir, map[string]string{"format": "pt"}))
	got, err := Load(path, tc.declared, Options{Layout: tc.layout})
	require.NoError(t, err)
	for comp, ts := range tc.tensors {
		require.Len(t, got[comp], len(ts), comp)
		for key, want := range ts {
			require.Equal(t, sfBytes(t, want), sfBytes(t, got[comp][key]), "%s/%s", comp, key)
		}
	}
	err = SaveDir(path, tc.kind, t.TempDir(), nil)
	require.ErrorContains(t, err, "config.json")
}
