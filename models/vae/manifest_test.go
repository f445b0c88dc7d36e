package vae

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	gmodel "github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/models/weights"
)

type manifestEntry struct {
	Shape []int  `json:"shape"`
	DType string `json:"dtype"`
}

func readManifest(t *testing.T, path string) map[string]manifestEntry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]manifestEntry
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// diffDeclared compares the declared keys/shapes with a manifest and reports every difference.
func diffDeclared(t *testing.T, name string, model *AutoencoderKL, manifest map[string]manifestEntry) {
	t.Helper()
	decl, err := weights.Declared(func(ctx *gmodel.Scope, g *graph.Graph) { model.Declare(ctx, g) })
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var problems []string
	for _, k := range weights.SortedKeys(manifest) {
		s, ok := decl[k]
		if !ok {
			problems = append(problems, "missing in model: "+k)
			continue
		}
		want := manifest[k].Shape
		if len(want) != s.Rank() {
			problems = append(problems, "shape of "+k+": model "+s.String())
			continue
		}
		for i, d := range want {
			if s.Dim(i) != d {
				problems = append(problems, "shape of "+k+": model "+s.String())
				break
			}
		}
	}
	for _, k := range weights.SortedKeys(decl) {
		if _, ok := manifest[k]; !ok {
			problems = append(problems, "not in manifest: "+k)
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Errorf("%s: %s", name, p)
	}
	if len(decl) != len(manifest) {
		t.Errorf("%s: model declares %d keys, manifest has %d", name, len(decl), len(manifest))
	}
}

// TestRealConfigsDeclareManifest checks that the real SD1.5 / SDXL VAE configs validate and that the
// model built from them declares exactly the keys and shapes of the real checkpoints' manifests
// (and, for the SD1.5 hub fp32 file, of its legacy-named layout after the load-time rename).
func TestRealConfigsDeclareManifest(t *testing.T) {
	real := filepath.Join(fixtures.Root(t), "real")
	cases := []struct{ config, manifest string }{
		{"configs/sd15/vae/config.json", "manifests/diffusers/sd15/vae.json"},
		{"configs/sdxl_base/vae/config.json", "manifests/diffusers/sdxl_base/vae.json"},
		{"configs/sdxl_base/vae_1_0/config.json", "manifests/diffusers/sdxl_base/vae.json"},
	}
	for _, c := range cases {
		t.Run(c.config, func(t *testing.T) {
			cfg, err := LoadConfig(filepath.Join(real, c.config))
			if err != nil {
				t.Fatal(err)
			}
			model, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			diffDeclared(t, c.config, model, readManifest(t, filepath.Join(real, c.manifest)))
		})
	}

	t.Run("sd15_hub_fp32_legacy_names", func(t *testing.T) {
		cfg, err := LoadConfig(filepath.Join(real, "configs/sd15/vae/config.json"))
		if err != nil {
			t.Fatal(err)
		}
		model, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		legacy := readManifest(t, filepath.Join(real, "manifests/diffusers/sd15/vae.hub_fp32_file_legacy_names.json"))
		renamed := map[string]manifestEntry{}
		n := 0
		for k, v := range legacy {
			nk, ok := RenameLegacyKey(k)
			if ok {
				n++
			}
			renamed[nk] = v
		}
		if n != 16 {
			t.Errorf("renamed %d legacy keys, want 16 (encoder+decoder × query/key/value/proj_attn × weight/bias)", n)
		}
		diffDeclared(t, "legacy", model, renamed)
	})
}
