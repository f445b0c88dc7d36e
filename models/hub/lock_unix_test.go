//go:build unix

package hub

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDownloadWaitsForLock: a blob another download holds the lock of (.locks/…/<sha256>.lock,
// as huggingface_hub takes it) is not downloaded a second time: the call waits, then finds the
// blob there.
func TestDownloadWaitsForLock(t *testing.T) {
	h, cache, big, sum := setupBig(t)
	lockPath := filepath.Join(cache, ".locks", filepath.Base(RepoFolder(cache, repoBig)), sum+".lock")
	require.NoError(t, os.MkdirAll(filepath.Dir(lockPath), 0o755))
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer f.Close()
	ok, err := tryLock(f)
	require.NoError(t, err)
	require.True(t, ok)

	var log syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := ResolveFile(context.Background(), repoBig, fileBig, Options{Logf: log.logf})
		done <- err
	}()
	require.Eventually(t, func() bool { return strings.Contains(log.String(), "waiting for another download") },
		5*time.Second, 10*time.Millisecond)
	// The other download finishes: its blob appears, its lock is released.
	blob := filepath.Join(RepoFolder(cache, repoBig), "blobs", sum)
	require.NoError(t, os.WriteFile(blob, big, 0o644))
	unlock(f)
	require.NoError(t, within(t, 5*time.Second, func() error { return <-done }))
	require.Zero(t, h.Count("GET /cdn/"), "the blob was not downloaded again")
}
