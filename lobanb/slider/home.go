package slider

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ExpandHome replaces a leading "~" (the whole path, or followed by a path separator) with the user's
// home folder, as a shell does; any other path comes back unchanged ("~user/…" included). Relative
// paths stay relative: whoever opens them resolves them (against the preset's folder or the working
// directory). The CLI expands its path flags with it too.
func ExpandHome(path string) (string, error) {
	if path != "~" && !strings.HasPrefix(path, "~/") && !strings.HasPrefix(path, "~"+string(filepath.Separator)) {
		return path, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("%q starts with ~ but the home folder is unknown: %w", path, err)
	}
	return filepath.Join(home, path[1:]), nil
}

// expandPaths expands "~" in every path key of the preset (model.name_or_path when it is a local
// path, model.merge_loras[].path, output.dir, the mask PNGs, which it also makes absolute).
func (p *Preset) expandPaths(v *validator) {
	expand := func(key string, s *string) {
		out, err := ExpandHome(*s)
		if err != nil {
			v.add(key, "%v", err)
			return
		}
		*s = out
	}
	expand("model.name_or_path", &p.Model.NameOrPath)
	for i := range p.Model.MergeLoRAs {
		expand(fmt.Sprintf("model.merge_loras[%d].path", i), &p.Model.MergeLoRAs[i].Path)
	}
	expand("output.dir", &p.Output.Dir)
	p.resolveMaskPaths(v)
}
