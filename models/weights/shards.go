package weights

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// shardsFromIndex reads a sharded checkpoint's `*.safetensors.index.json` ({"weight_map": {key: file}})
// and returns the shard paths, sorted.
func shardsFromIndex(indexPath string) ([]string, error) {
	data, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%s: bad index JSON: %w", indexPath, err)
	}
	seen := map[string]bool{}
	var files []string
	for key, f := range idx.WeightMap {
		if f == "" || filepath.Base(f) != f {
			return nil, fmt.Errorf("%s: key %q points to %q, want a file name in the same folder", indexPath, key, f)
		}
		if !seen[f] {
			seen[f] = true
			files = append(files, filepath.Join(filepath.Dir(indexPath), f))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: empty weight_map", indexPath)
	}
	sort.Strings(files)
	return files, nil
}
