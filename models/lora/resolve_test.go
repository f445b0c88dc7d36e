package lora

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/compute/shapes"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/unet"
	"github.com/loba-dev/loba/models/weights"
)

// fixtureModule is one entry of fixtures/real/lora/*.json.
type fixtureModule struct {
	SAIName     string `json:"sai_name"`
	Module      string `json:"module"`
	LDMModule   string `json:"ldm_module"`
	Kind        string `json:"kind"`
	TargetClass string `json:"target_class"`
	WeightShape []int  `json:"weight_shape"`
}

func readJSON(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, into), path)
}

var declCache sync.Map

// declaredUNet is weights.Declared of the UNet of a config.json.
func declaredUNet(t *testing.T, configPath string) map[string]shapes.Shape {
	t.Helper()
	if d, ok := declCache.Load(configPath); ok {
		return d.(map[string]shapes.Shape)
	}
	cfg, err := unet.LoadConfig(configPath)
	require.NoError(t, err)
	m, err := unet.New(cfg)
	require.NoError(t, err)
	d, err := weights.Declared(m.Declare)
	require.NoError(t, err)
	declCache.Store(configPath, d)
	return d
}

// declaredCLIP is the declared weights of the text encoder of a config.json.
func declaredCLIP(t *testing.T, configPath string) map[string]shapes.Shape {
	t.Helper()
	cfg, err := clip.LoadConfig(configPath)
	require.NoError(t, err)
	m, err := clip.New(cfg)
	require.NoError(t, err)
	d, err := m.Declared()
	require.NoError(t, err)
	return d
}

// TestResolveRealUNet checks lierla/c3lier on the real SD1.5 and SDXL-base UNet configs against
// fixtures/real/lora: counts, kohya names (diffusers layout), SAI names, kinds and base shapes.
func TestResolveRealUNet(t *testing.T) {
	real := filepath.Join(fixtures.Root(t), "real")
	var summary map[string]struct {
		Modules       int            `json:"unet_lora_modules"`
		ByTargetClass map[string]int `json:"unet_by_target_class"`
	}
	readJSON(t, filepath.Join(real, "lora", "summary.json"), &summary)
	for _, model := range []string{"sd15", "sdxl_base"} {
		t.Run(model, func(t *testing.T) {
			decl := declaredUNet(t, filepath.Join(real, "configs", model, "unet", "config.json"))
			var want map[string]fixtureModule
			readJSON(t, filepath.Join(real, "lora", model+"_unet.json"), &want)
			sum := summary[model]
			require.Equal(t, sum.Modules, len(want))
			wantLierLa := 0
			for _, fm := range want {
				if fm.TargetClass == "Transformer2DModel" {
					wantLierLa++
				}
			}
			require.Equal(t, sum.ByTargetClass["Transformer2DModel"], wantLierLa)

			for _, preset := range []string{PresetLierLa, PresetC3Lier} {
				net, err := Resolve(UNet, decl, Targets{Preset: preset, Rank: 4, Alpha: 1})
				require.NoError(t, err)
				got := map[string]bool{}
				for _, m := range net.Modules {
					name, err := net.KohyaName(m, LayoutDiffusers, model == "sdxl_base")
					require.NoError(t, err)
					got[name] = true
					fm, ok := want[name]
					require.True(t, ok, "%s: %s (%s) is not in the fixture", preset, name, m.Path)
					require.Equal(t, fm.Module, m.Path)
					require.Equal(t, fm.Kind, m.KindName(), name)
					require.Equal(t, fm.WeightShape, m.BaseShape(), name)
					require.Equal(t, fm.LDMModule, m.LDMPath, name)
					sai, err := net.KohyaName(m, LayoutSAI, true)
					require.NoError(t, err)
					require.Equal(t, fm.SAIName, sai, name)
					if preset == PresetLierLa {
						require.Equal(t, "Transformer2DModel", fm.TargetClass, name)
					}
					require.Equal(t, 1.0, m.LRScale)
					require.Equal(t, 4, m.Rank)
				}
				wantN := sum.Modules
				if preset == PresetLierLa {
					wantN = wantLierLa
				}
				require.Len(t, got, wantN, preset)
				require.Len(t, net.Modules, wantN, preset)
				require.True(t, sort.SliceIsSorted(net.Modules, func(i, j int) bool { return net.Modules[i].Path < net.Modules[j].Path }))
			}
			// Counts of the spec (anchors.md b.1): SD1.5 192/278, SDXL 722/788.
			wantCounts := map[string][2]int{"sd15": {192, 278}, "sdxl_base": {722, 788}}[model]
			require.Equal(t, wantCounts, [2]int{wantLierLa, sum.Modules})
		})
	}
}

// TestResolveRealTextEncoders checks the text-encoder modules (CLIPAttention + CLIPMLP children)
// and their lora_te / lora_te1 / lora_te2 names against fixtures/real/lora.
func TestResolveRealTextEncoders(t *testing.T) {
	real := filepath.Join(fixtures.Root(t), "real")
	for _, c := range []struct{ model, component, fixture string }{
		{"sd15", TextEncoder, "sd15_text_encoder.json"},
		{"sdxl_base", TextEncoder, "sdxl_base_text_encoder.json"},
		{"sdxl_base", TextEncoder2, "sdxl_base_text_encoder_2.json"},
	} {
		t.Run(c.model+"/"+c.component, func(t *testing.T) {
			decl := declaredCLIP(t, filepath.Join(real, "configs", c.model, c.component, "config.json"))
			var want map[string]fixtureModule
			readJSON(t, filepath.Join(real, "lora", c.fixture), &want)
			for _, preset := range []string{PresetLierLa, PresetC3Lier, PresetNoXAttn} {
				net, err := Resolve(c.component, decl, Targets{Preset: preset})
				require.NoError(t, err)
				require.Len(t, net.Modules, len(want), preset)
				for _, m := range net.Modules {
					name, err := net.KohyaName(m, LayoutDiffusers, c.model == "sdxl_base")
					require.NoError(t, err)
					fm, ok := want[name]
					require.True(t, ok, "%s not in the fixture", name)
					require.Equal(t, fm.Module, m.Path)
					require.Equal(t, fm.WeightShape, m.BaseShape())
					require.Equal(t, fm.Kind, m.KindName())
				}
			}
			net, err := Resolve(c.component, decl, Targets{Preset: PresetFull})
			require.NoError(t, err)
			for _, m := range net.Modules {
				require.False(t, strings.Contains(m.Path, "embeddings"), m.Path)
			}
			_, err = Resolve(c.component, decl, Targets{Preset: PresetXAttn})
			require.ErrorContains(t, err, "select no module")
		})
	}
}
