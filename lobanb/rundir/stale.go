package rundir

import (
	"os"
	"path/filepath"
	"strings"
)

// staleTemp tells whether name is a temporary file or folder that an interrupted write left behind:
// internal/atomicfile's ".NAME.tmp-*" and the trainer's ".tmp-ckpt-*" checkpoint folders.
func staleTemp(name string) bool {
	return strings.HasPrefix(name, ".") && (strings.Contains(name, ".tmp-") || strings.HasPrefix(name, ".tmp-"))
}

// cleanStale removes the temporary files an interrupted run left in the folder and its checkpoints,
// cache and samples sub-folders. Only the holder of the lock calls it: nobody else writes there then.
// It returns what it removed.
func (d Dir) cleanStale() []string {
	var removed []string
	for _, sub := range []string{"", CheckpointsDir, filepath.Dir(CondCacheFile), SamplesDir} {
		dir := d.file(sub)
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !staleTemp(e.Name()) {
				continue
			}
			path := filepath.Join(dir, e.Name())
			if os.RemoveAll(path) == nil {
				removed = append(removed, path)
			}
		}
	}
	return removed
}
