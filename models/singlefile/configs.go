package singlefile

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
)

// The hub config.json files the single-file layouts are built from live in configs/, one file
// per distinct config, each stored once: runwayml/stable-diffusion-v1-5 @ 1d0c4ebf ("sd15") and
// stabilityai/stable-diffusion-xl-base-1.0 @ 46216598 ("sdxl_base").
//
// A plain configs/<name>.json is a hub file byte for byte. A configs/<name>.overlay.json is a hub
// file written as its differences from another one ("base", a plain file): "delete" lists
// top-level keys to drop and "set" gives top-level keys to add or replace; the result is
// written the way the hub files are (Python json.dumps(indent=2, sort_keys=True) plus a newline),
// so it too equals the hub file byte for byte. TestSingleFileEmbeddedConfigs checks every
// config against fixtures/real/configs/<kind>/<component>/config.json.
//
//go:embed configs/*.json
var configFS embed.FS

// configFiles names the file in configs/ of each built-in config, by
// "<kind>/<component>".
var configFiles = map[string]string{
	"sd15/unet":                "sd15_unet.json",
	"sd15/vae":                 "sd15_vae.json",
	"sd15/text_encoder":        "clip_vit_l14_text.json", // openai/clip-vit-large-patch14
	"sdxl_base/unet":           "sdxl_base_unet.json",
	"sdxl_base/vae":            "sdxl_base_vae.overlay.json",          // sd15_vae.json with SDXL's VAE settings
	"sdxl_base/text_encoder":   "sdxl_base_text_encoder.overlay.json", // clip_vit_l14_text.json, fp16 export
	"sdxl_base/text_encoder_2": "clip_vit_bigg14_text.json",           // OpenCLIP ViT-bigG/14 with projection
}

// builtinConfigs returns the built-in configs by "<kind>/<component>" (read once).
var builtinConfigs = sync.OnceValues(func() (map[string]string, error) {
	m := make(map[string]string, len(configFiles))
	for key, name := range configFiles {
		b, err := readConfig(name)
		if err != nil {
			return nil, fmt.Errorf("singlefile: built-in config %q: %w", key, err)
		}
		m[key] = string(b)
	}
	return m, nil
})

// BuiltinConfig returns the verbatim hub config.json a built-in layout is generated from: kind
// KindSD15 or KindSDXLBase, component "unet", "vae", "text_encoder" or "text_encoder_2".
func BuiltinConfig(kind, component string) ([]byte, error) {
	configs, err := builtinConfigs()
	if err != nil {
		return nil, err
	}
	s, ok := configs[kind+"/"+component]
	if !ok {
		valid := make([]string, 0, len(configs))
		for k := range configs {
			valid = append(valid, k)
		}
		sort.Strings(valid)
		return nil, fmt.Errorf("singlefile: no built-in config %q (valid: %s)", kind+"/"+component, strings.Join(valid, ", "))
	}
	return []byte(s), nil
}

// overlay is the content of a configs/*.overlay.json file.
type overlay struct {
	Base   string                     `json:"base"`
	Delete []string                   `json:"delete"`
	Set    map[string]json.RawMessage `json:"set"`
}

const overlaySuffix = ".overlay.json"

// readConfig returns configs/<name>, with an overlay applied to its base.
func readConfig(name string) ([]byte, error) {
	b, err := configFS.ReadFile(path.Join("configs", name))
	if err != nil || !strings.HasSuffix(name, overlaySuffix) {
		return b, err
	}
	var ov overlay
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ov); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if ov.Base == "" || strings.HasSuffix(ov.Base, overlaySuffix) {
		return nil, fmt.Errorf("%s: base %q must name a plain configs/*.json file", name, ov.Base)
	}
	base, err := configFS.ReadFile(path.Join("configs", ov.Base))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	out, err := applyOverlay(base, ov)
	if err != nil {
		return nil, fmt.Errorf("%s (base %s): %w", name, ov.Base, err)
	}
	return out, nil
}

// applyOverlay deletes and sets top-level keys of the JSON object base and writes the result
// in the hub's format. Values keep their literal text (0.0 stays 0.0, 1e-05 stays 1e-05).
func applyOverlay(base []byte, ov overlay) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(base, &obj); err != nil {
		return nil, err
	}
	for _, k := range ov.Delete {
		if _, ok := obj[k]; !ok {
			return nil, fmt.Errorf("delete: no key %q", k)
		}
		delete(obj, k)
	}
	for k, v := range ov.Set {
		obj[k] = v
	}
	return hubJSON(obj)
}

// hubJSON writes a JSON object as the hub's config.json files are written: Python's
// json.dumps(obj, indent=2, sort_keys=True) followed by a newline.
func hubJSON(obj map[string]json.RawMessage) ([]byte, error) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var compact bytes.Buffer
	compact.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			compact.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		compact.Write(kb)
		compact.WriteByte(':')
		if err := json.Compact(&compact, obj[k]); err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
	}
	compact.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
