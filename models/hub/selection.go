package hub

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Which files of a diffusers repository to fetch: this follows diffusers'
// DiffusionPipeline.download (pipeline_loading_utils.py: the component folders of model_index.json,
// variant_compatible_siblings), restricted to safetensors weights.

const modelIndexFile = "model_index.json"

// selection is what Options contributes to choosing files.
type selection struct {
	variant    string
	components []string // nil: DefaultComponents present in model_index.json
}

func selectionOf(o Options) selection {
	return selection{variant: o.Variant, components: o.Components}
}

// fileKind classifies a file name inside a component folder.
type fileKind int

const (
	kindSkip        fileKind = iota // README, images, …: not fetched
	kindConfig                      // *.json, *.txt, *.model: configs, tokenizer files
	kindSafetensors                 // *.safetensors (maybe sharded, maybe of a variant)
	kindIndex                       // *.safetensors.index[.variant].json of sharded weights
	kindPickle                      // .bin, .ckpt, .pt, .pth, .pkl: refused
	kindOtherWeight                 // flax, onnx, openvino, tf, gguf…: not used
)

var (
	shardRE        = regexp.MustCompile(`-\d{5}-of-\d{5}`)
	variantIndexRE = regexp.MustCompile(`^(.+)\.safetensors\.index\.([^.]+)\.json$`)
)

// isPickleName reports whether a file name has a pickle extension.
func isPickleName(name string) bool {
	base := strings.ToLower(path.Base(strings.ReplaceAll(name, `\`, "/")))
	if strings.HasPrefix(base, "openvino_") {
		return false
	}
	switch path.Ext(base) {
	case ".bin", ".ckpt", ".pt", ".pth", ".pkl", ".pickle":
		return true
	}
	return false
}

// classify returns the kind of a file and, for weights and shard indexes, their variant ("" for
// the plain weights): "diffusion_pytorch_model.fp16.safetensors" → fp16,
// "diffusion_pytorch_model.fp16-00001-of-00002.safetensors" and
// "diffusion_pytorch_model-00001-of-00002.fp16.safetensors" → fp16,
// "diffusion_pytorch_model.safetensors.index.fp16.json" → fp16.
func classify(name string) (fileKind, string) {
	base := path.Base(name)
	lower := strings.ToLower(base)
	switch {
	case strings.HasSuffix(lower, ".safetensors.index.json"):
		return kindIndex, nameVariant(strings.TrimSuffix(base, ".safetensors.index.json"))
	case variantIndexRE.MatchString(base):
		m := variantIndexRE.FindStringSubmatch(base)
		return kindIndex, m[2]
	case strings.HasSuffix(lower, ".safetensors"):
		return kindSafetensors, nameVariant(strings.TrimSuffix(base, ".safetensors"))
	case isPickleName(base):
		return kindPickle, ""
	}
	switch path.Ext(lower) {
	case ".json", ".txt", ".model":
		return kindConfig, ""
	case ".msgpack", ".h5", ".onnx", ".onnx_data", ".pb", ".xml", ".tflite", ".ot", ".gguf", ".mlmodel", ".bin":
		return kindOtherWeight, ""
	}
	if strings.HasSuffix(lower, ".onnx_data") {
		return kindOtherWeight, ""
	}
	return kindSkip, ""
}

// nameVariant extracts the variant from a weight file name without extension.
func nameVariant(stem string) string {
	stem = shardRE.ReplaceAllString(stem, "")
	if i := strings.Index(stem, "."); i >= 0 {
		return stem[i+1:]
	}
	return ""
}

// pipelineComponents returns the component folders listed in model_index.json, sorted: keys not
// starting with "_" whose value is a [library, class] pair with a non-null library.
func pipelineComponents(modelIndex []byte) ([]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(modelIndex, &m); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", modelIndexFile, err)
	}
	var comps []string
	for k, raw := range m {
		if strings.HasPrefix(k, "_") {
			continue
		}
		var pair []*string
		if json.Unmarshal(raw, &pair) != nil || len(pair) != 2 {
			continue // a pipeline option such as "force_zeros_for_empty_prompt": true
		}
		if pair[0] == nil || pair[1] == nil {
			continue // e.g. "safety_checker": [null, null]
		}
		if _, err := cleanRepoPath(k); err != nil || strings.Contains(k, "/") {
			return nil, fmt.Errorf("%s: invalid component name %q", modelIndexFile, k)
		}
		comps = append(comps, k)
	}
	sort.Strings(comps)
	return comps, nil
}

// selectPipelineFiles picks, from the listing of a diffusers repository (or local folder) named
// where, the files to fetch: model_index.json, then for each selected component every config and
// tokenizer file of its folder plus its .safetensors weights (of sel.variant if it has them, else
// the plain ones). It fails with ErrPickle for a component that has only pickle weights, and with
// a descriptive error for a component that has a config.json but no usable weights.
func selectPipelineFiles(where string, files []string, modelIndex []byte, sel selection) ([]string, error) {
	available, err := pipelineComponents(modelIndex)
	if err != nil {
		return nil, fmt.Errorf("hub: %s: %w", where, err)
	}
	var want []string
	switch {
	case sel.components == nil:
		for _, c := range DefaultComponents {
			if contains(available, c) {
				want = append(want, c)
			}
		}
	default:
		for _, c := range sel.components {
			if !contains(available, c) {
				return nil, fmt.Errorf("hub: %s: component %q is not in %s (it has: %s)",
					where, c, modelIndexFile, strings.Join(available, ", "))
			}
			want = append(want, c)
		}
	}
	byDir := groupByDir(files)
	out := []string{modelIndexFile}
	for _, c := range want {
		chosen, err := selectComponent(where, c, byDir[c], sel.variant)
		if err != nil {
			return nil, err
		}
		out = append(out, chosen...)
	}
	sort.Strings(out)
	return out, nil
}

// selectSingleComponent handles a repository without model_index.json whose root holds one
// component (config.json and weights), such as a standalone VAE repo.
func selectSingleComponent(where string, files []string, sel selection) ([]string, error) {
	root := groupByDir(files)[""]
	if !contains(root, "config.json") {
		return nil, fmt.Errorf("hub: %s has neither %s nor config.json at its root: not a diffusers "+
			"repository (for a single-file checkpoint use ResolveFile)", where, modelIndexFile)
	}
	chosen, err := selectComponent(where, "", root, sel.variant)
	if err != nil {
		return nil, err
	}
	sort.Strings(chosen)
	return chosen, nil
}

// groupByDir maps each folder ("" for the root) to the base names of the files directly in it.
func groupByDir(files []string) map[string][]string {
	m := map[string][]string{}
	for _, f := range files {
		dir, base := path.Split(f)
		m[strings.TrimSuffix(dir, "/")] = append(m[strings.TrimSuffix(dir, "/")], base)
	}
	return m
}

// selectComponent chooses the files of one component folder (names are base names; the result
// holds repository paths).
func selectComponent(where, comp string, names []string, variant string) ([]string, error) {
	full := func(n string) string {
		if comp == "" {
			return n
		}
		return comp + "/" + n
	}
	label := fmt.Sprintf("%s component %q", where, comp)
	if comp == "" {
		label = where
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("hub: %s: folder is missing or empty", label)
	}
	var configs, pickles, others []string
	weights := map[string][]string{} // variant → safetensors files and shard indexes
	hasModelConfig := false
	for _, n := range names {
		kind, v := classify(n)
		switch kind {
		case kindConfig:
			configs = append(configs, full(n))
			if n == "config.json" {
				hasModelConfig = true
			}
		case kindSafetensors, kindIndex:
			weights[v] = append(weights[v], full(n))
		case kindPickle:
			pickles = append(pickles, full(n))
		case kindOtherWeight:
			others = append(others, full(n))
		}
	}
	out := configs
	switch {
	case variant != "" && len(weights[variant]) > 0:
		out = append(out, weights[variant]...)
	case len(weights[""]) > 0:
		out = append(out, weights[""]...)
	case len(weights) > 0:
		var vs []string
		for v := range weights {
			vs = append(vs, v)
		}
		sort.Strings(vs)
		return nil, fmt.Errorf("hub: %s has only variant safetensors weights (%s), none for variant %q: "+
			"set Options.Variant to one of them", label, strings.Join(vs, ", "), variant)
	case len(pickles) > 0:
		return nil, pickleError(label, pickles)
	case hasModelConfig:
		if len(others) > 0 {
			return nil, fmt.Errorf("hub: %s has no .safetensors weights (only %s)", label, strings.Join(others, ", "))
		}
		return nil, fmt.Errorf("hub: %s has config.json but no .safetensors weights", label)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("hub: %s has no config, tokenizer or weight files", label)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
