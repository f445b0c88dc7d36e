// Package config reads the config.json files of diffusers and transformers components (UNet, VAE,
// text encoders, schedulers) with one policy for keys the typed config does not know: they are
// recorded, never rejected and never dropped silently. Diffusers and transformers configs gain keys
// across versions, so an unknown key is no reason to refuse a model; callers keep the recorded keys
// in their Config's Unused field and `loba inspect` reports them. Values of known keys are checked
// by each package's Validate, as before.
package config

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
)

// Load reads the config file at path and parses its content with parse (a package's ParseConfig).
// Every error names the file.
func Load[T any](path string, parse func(data []byte) (T, error)) (T, error) {
	var zero T
	data, err := os.ReadFile(path)
	if err != nil {
		return zero, fmt.Errorf("reading config: %w", err) // *fs.PathError names the file
	}
	cfg, err := parse(data)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Decode decodes the JSON object data over dst, a pointer to a struct that already holds the
// defaults (keys missing from data keep them), with encoding/json's rules, and returns the keys of
// data that no field of dst takes, sorted: the keys to record in the config's Unused field.
// Metadata keys, those starting with "_" (_class_name, _diffusers_version, _name_or_path, ...), are
// left out of that list whether dst has a field for them or not. Keys match json tags (or field
// names) case-insensitively, as the decoder matches them.
func Decode(data []byte, dst any) (unused []string, err error) {
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("config.Decode: dst is %T, want a pointer to a struct", dst)
	}
	if err := json.Unmarshal(data, dst); err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	known := map[string]bool{}
	fieldKeys(t.Elem(), known)
	for k := range raw {
		if !strings.HasPrefix(k, "_") && !known[strings.ToLower(k)] {
			unused = append(unused, k)
		}
	}
	sort.Strings(unused)
	return unused, nil
}

// fieldKeys adds the lowercased JSON keys of struct type t to keys, following encoding/json: the tag
// name or else the field name of each exported field, "-" skipped, untagged embedded structs
// flattened.
func fieldKeys(t reflect.Type, keys map[string]bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				fieldKeys(ft, keys)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		keys[strings.ToLower(name)] = true
	}
}
