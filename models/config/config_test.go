package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type embedded struct {
	Inner int `json:"inner"`
}

type testConfig struct {
	ClassName string `json:"_class_name"`
	embedded
	Size    int      `json:"size"`
	Act     string   `json:"act_fn,omitempty"`
	Plain   bool     // no tag: the key is the field name
	Skipped int      `json:"-"`
	Unused  []string `json:"-"`
}

func parseTest(data []byte) (*testConfig, error) {
	cfg := &testConfig{Size: 7, Act: "silu"}
	unused, err := Decode(data, cfg)
	if err != nil {
		return nil, err
	}
	cfg.Unused = unused
	if cfg.Act != "silu" {
		return nil, errors.New(`act_fn = "` + cfg.Act + `" is not supported (valid: "silu")`)
	}
	return cfg, nil
}

// TestDecodeRecordsUnknownKeys: keys without a field are recorded (sorted), "_" metadata keys are
// not, defaults survive missing keys, and matching follows encoding/json (case-insensitive, embedded
// structs flattened, "-" fields not decoded).
func TestDecodeRecordsUnknownKeys(t *testing.T) {
	cfg, err := parseTest([]byte(`{"_class_name": "X", "_diffusers_version": "0.30.0", "_name_or_path": "a/b",
		"zeta": 1, "inner": 3, "Plain": true, "SIZE": 5, "alpha": [1, 2], "Skipped": 9, "Unused": ["x"]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Skipped", "Unused", "alpha", "zeta"}
	if !slices.Equal(cfg.Unused, want) {
		t.Errorf("Unused = %q, want %q", cfg.Unused, want)
	}
	if cfg.ClassName != "X" || cfg.Inner != 3 || !cfg.Plain || cfg.Size != 5 || cfg.Act != "silu" || cfg.Skipped != 0 {
		t.Errorf("decoded %+v", cfg)
	}
	cfg, err = parseTest([]byte(`{"size": 1}`))
	if err != nil || cfg.Unused != nil {
		t.Errorf("no unknown keys: got %q, %v", cfg.Unused, err)
	}
	if _, err := Decode([]byte(`{}`), testConfig{}); err == nil {
		t.Error("Decode into a non-pointer must fail")
	}
}

// TestLoadErrorsNameTheFile: a missing file, malformed JSON, a wrong value type and an invalid value
// all give errors naming the file; a known key's invalid value is still rejected.
func TestLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct{ name, content, want string }{
		{"malformed.json", `{"size": 1,}`, "invalid character"},
		{"truncated.json", `{"size": `, "unexpected end of JSON input"},
		{"type.json", `{"size": "big"}`, "size"},
		{"value.json", `{"act_fn": "mish"}`, `act_fn = "mish"`},
	} {
		path := write(tc.name, tc.content)
		_, err := Load(path, parseTest)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %s and containing %q", tc.name, err, path, tc.want)
		}
	}
	missing := filepath.Join(dir, "missing.json")
	_, err := Load(missing, parseTest)
	if err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: error %v, want fs.ErrNotExist naming %s", err, missing)
	}
	cfg, err := Load(write("ok.json", `{"size": 2, "new_key": null, "_class_name": "X"}`), parseTest)
	if err != nil || cfg.Size != 2 || !slices.Equal(cfg.Unused, []string{"new_key"}) {
		t.Errorf("ok.json: %+v, %v", cfg, err)
	}
}
