package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
)

// TestToyworldCommands: `loba toyworld train` creates and trains a toy base model folder (and
// resumes), `loba toyworld check` prints its accuracy JSON.
func TestToyworldCommands(t *testing.T) {
	testutil.Backend(t)
	dir := filepath.Join(t.TempDir(), "toy")
	code, _, stderr := runCLI("toyworld", "train", "--out", dir, "--steps", "2", "--batch", "2", "--checkpoint-every", "1", "--quiet")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = runCLI("toyworld", "train", "--out", dir, "--steps", "3", "--batch", "2", "--quiet")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "resuming from step 2")
	code, stdout, stderr := runCLI("toyworld", "check", dir, "--samples", "3", "--steps", "2")
	require.Equal(t, 0, code, stderr)
	var r map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &r))
	for _, k := range []string{"color_accuracy", "size_accuracy", "shape_accuracy", "samples"} {
		require.Contains(t, r, k)
	}
	require.EqualValues(t, 3, r["samples"])
}
