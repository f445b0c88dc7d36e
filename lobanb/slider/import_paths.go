package slider

import (
	"os"
	"path/filepath"
	"strings"
)

// findPromptsFile resolves a config's prompts_file ("~" expanded). LECO and Concept Sliders open it
// relative to the working directory, which is their repository's root (LECO's examples/config.yaml
// names "./examples/prompts.yaml", Concept Sliders' data/config.yaml
// "trainscripts/textsliders/data/prompts.yaml"), so a config read from anywhere else is resolved by
// trying, in order:
//
//  1. the config's folder;
//  2. the working directory (as the anchors open it);
//  3. each folder above the config's (the anchor's checkout the config sits in);
//  4. the file name alone, next to the config (a config copied together with its prompts).
//
// Every place but the first is reported in a warning; the error lists every place tried.
func (imp *importer) findPromptsFile(name, configPath string) (string, error) {
	name, err := ExpandHome(name)
	if err != nil {
		return "", imp.errAt("prompts_file", "%v", err)
	}
	if filepath.IsAbs(name) {
		return name, nil
	}
	dir := filepath.Dir(configPath)
	tried := []string{filepath.Join(dir, name)}
	if fileExists(tried[0]) {
		return tried[0], nil
	}
	tried = append(tried, name)
	if fileExists(name) {
		imp.warnAt("prompts_file", "%q found relative to the working directory (as LECO opens it), not to the config's folder", name)
		return name, nil
	}
	for _, up := range parentDirs(dir) {
		path := filepath.Join(up, name)
		if path == filepath.Clean(name) {
			continue // the working directory, tried above
		}
		tried = append(tried, path)
		if fileExists(path) {
			imp.warnAt("prompts_file", "%q found as %s, relative to a folder above the config's (LECO opens it relative to the working directory, its checkout's root)", name, path)
			return path, nil
		}
	}
	if base := filepath.Join(dir, filepath.Base(name)); base != tried[0] {
		tried = append(tried, base)
		if fileExists(base) {
			imp.warnAt("prompts_file", "%q not found; using %s, the file of that name next to the config", name, base)
			return base, nil
		}
	}
	return "", imp.errAt("prompts_file", "prompts file %q not found (tried %s)", name, strings.Join(tried, ", "))
}

// parentDirs lists the folders above dir, nearest first, up to the file system's root (relative to
// the working directory where they lie inside it).
func parentDirs(dir string) []string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil
	}
	var out []string
	for up := filepath.Dir(abs); ; up = filepath.Dir(up) {
		out = append(out, relIfBelowWD(up))
		if filepath.Dir(up) == up {
			return out
		}
	}
}

// relIfBelowWD writes an absolute path relative to the working directory when it lies inside it
// (shorter messages, and the same form the config path was given in).
func relIfBelowWD(abs string) string {
	wd, err := os.Getwd()
	if err != nil {
		return abs
	}
	rel, err := filepath.Rel(wd, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return abs
	}
	return rel
}

func fileExists(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir()
}
