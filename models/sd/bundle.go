// Package sd ties the Stable Diffusion components together: a model folder (diffusers layout:
// model_index.json + one subfolder per component), its components, and the pipelines built on them.
package sd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Component is one entry of a model folder: its name (the subfolder, e.g. "unet"), the library and
// class model_index.json names (e.g. "diffusers", "UNet2DConditionModel"), and its folder ("" for a
// component without LOBA-built network whose folder is absent).
type Component struct {
	Name, Library, Class string
	Dir                  string
}

// ModelKinds are the component classes LOBA builds networks for; other classes (schedulers,
// tokenizers, feature extractors, safety checkers) hold no weights LOBA uses.
var ModelKinds = map[string]bool{
	"UNet2DConditionModel":        true,
	"AutoencoderKL":               true,
	"CLIPTextModel":               true,
	"CLIPTextModelWithProjection": true,
}

// ReadComponents lists the components of a model folder. A folder with model_index.json gives every
// entry of it whose subfolder exists; a folder with a config.json is one component (its class from
// `_class_name`, or `architectures[0]` for transformers configs). Errors name the file.
func ReadComponents(dir string) ([]Component, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a folder (want a diffusers model folder or a component folder)", dir)
	}
	indexPath := filepath.Join(dir, "model_index.json")
	if data, err := os.ReadFile(indexPath); err == nil {
		var index map[string]json.RawMessage
		if err := json.Unmarshal(data, &index); err != nil {
			return nil, fmt.Errorf("%s: bad JSON: %w", indexPath, err)
		}
		var comps []Component
		for name, raw := range index {
			if len(name) > 0 && name[0] == '_' {
				continue
			}
			var pair []*string
			if json.Unmarshal(raw, &pair) != nil || len(pair) != 2 || pair[0] == nil || pair[1] == nil {
				continue // scalar options such as force_zeros_for_empty_prompt, or null components
			}
			sub := filepath.Join(dir, name)
			if st, err := os.Stat(sub); err != nil || !st.IsDir() {
				if ModelKinds[*pair[1]] {
					return nil, fmt.Errorf("%s: component %q (%s) has no folder %s", indexPath, name, *pair[1], sub)
				}
				sub = "" // e.g. a feature extractor or safety checker not downloaded: nothing LOBA needs
			}
			comps = append(comps, Component{Name: name, Library: *pair[0], Class: *pair[1], Dir: sub})
		}
		sort.Slice(comps, func(i, j int) bool { return comps[i].Name < comps[j].Name })
		return comps, nil
	}
	configPath := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(configPath)
	if err != nil {
		return nil, fmt.Errorf("%s: neither model_index.json nor config.json found", dir)
	}
	class, lib, err := configClass(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", configPath, err)
	}
	return []Component{{Name: filepath.Base(dir), Library: lib, Class: class, Dir: dir}}, nil
}
