package rundir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLockCleansStaleTemps: taking the lock removes what an interrupted write left (atomicfile's
// .NAME.tmp-* files, half-written checkpoint folders) and nothing else.
func TestLockCleansStaleTemps(t *testing.T) {
	d := Dir(t.TempDir())
	stale := []string{".lora.safetensors.tmp-123", "checkpoints/.tmp-ckpt-456/state.json",
		"cache/.conditioning.safetensors.tmp-7", "samples/.step-000002.png.tmp-9", ".eval.json.tmp-1"}
	keep := []string{"lora.safetensors", "loss.csv", "checkpoints/step-00000002/state.json", "samples/step-000002.png",
		"checkpoints/corrupt-step-00000003/state.json"}
	for _, f := range append(append([]string{}, stale...), keep...) {
		path := d.file(f)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte("x"), 0o644))
	}
	release, err := d.Lock()
	require.NoError(t, err)
	defer release()
	for _, f := range stale {
		require.NoFileExists(t, d.file(f))
	}
	require.NoDirExists(t, d.file("checkpoints/.tmp-ckpt-456"))
	for _, f := range keep {
		require.FileExists(t, d.file(f))
	}
}
