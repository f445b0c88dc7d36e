package vae

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/weights"
)

// copyCaseWithLegacyNames writes dir's config.json and its weights under diffusers' file name,
// with the mid-block attention tensors renamed to the legacy query/key/value/proj_attn names.
func copyCaseWithLegacyNames(t *testing.T, dir string) (out string, renamed int) {
	t.Helper()
	out = t.TempDir()
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	ts, err := safetensors.ReadTensors(filepath.Join(dir, "model.safetensors"), dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	toLegacy := map[string]string{"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
	legacy := map[string]*tensors.Tensor{}
	for k, v := range ts {
		nk := k
		for newName, old := range toLegacy {
			if strings.Contains(k, "mid_block.attentions.0."+newName+".") {
				nk = strings.Replace(k, "."+newName+".", "."+old+".", 1)
				renamed++
			}
		}
		legacy[nk] = v
	}
	if err := safetensors.Write(filepath.Join(out, "diffusion_pytorch_model.safetensors"), legacy, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return out, renamed
}

// TestLoadLegacyAttentionNames checks that a file with the legacy attention names (as the SD1.5 hub
// fp32 VAE) loads to exactly the same variables as the modern names.
func TestLoadLegacyAttentionNames(t *testing.T) {
	dir := fixtures.Cases(t, "vae")[0]
	legacyDir, renamed := copyCaseWithLegacyNames(t, dir)
	if renamed == 0 {
		t.Fatalf("no attention tensor renamed in %s", dir)
	}
	_, want, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := Load(legacyDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for v := range want.IterVariables() {
		g := got.Store().GetVariable(gmodel.JoinPath(v.Scope(), v.Name()))
		if g == nil {
			t.Errorf("variable %s/%s missing after legacy load", v.Scope(), v.Name())
			continue
		}
		a := tensors.MustCopyFlatData[float32](v.MustValue())
		b := tensors.MustCopyFlatData[float32](g.MustValue())
		if testutil.RelErr(b, a) != 0 {
			t.Errorf("variable %s/%s differs after legacy load", v.Scope(), v.Name())
		}
		n++
	}
	if n == 0 {
		t.Fatal("no variables loaded")
	}
}

// TestLoadReportsProblems checks that a weight file that does not fit the config fails with one
// error naming the missing key.
func TestLoadReportsProblems(t *testing.T) {
	dir := fixtures.Cases(t, "vae")[0]
	out := t.TempDir()
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	_ = os.WriteFile(filepath.Join(out, "config.json"), cfg, 0o644)
	ts, err := safetensors.ReadTensors(filepath.Join(dir, "model.safetensors"), dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	delete(ts, "decoder.conv_out.weight")
	if err := safetensors.Write(filepath.Join(out, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(out); err == nil || !strings.Contains(err.Error(), "decoder.conv_out.weight") {
		t.Errorf("Load with a missing key: got %v, want an error naming decoder.conv_out.weight", err)
	}
}

// TestDeclaredOptionalModules checks the config switches that drop modules.
func TestDeclaredOptionalModules(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BlockOutChannels = []int{8, 16, 16}
	cfg.DownBlockTypes = []string{"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"}
	cfg.UpBlockTypes = []string{"UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"}
	cfg.NormNumGroups = 4
	cfg.UseQuantConv, cfg.UsePostQuantConv, cfg.MidBlockAddAttention = false, false, false
	model, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	decl, err := weights.Declared(func(ctx *gmodel.Scope, g *graph.Graph) { model.Declare(ctx, g) })
	if err != nil {
		t.Fatal(err)
	}
	for k := range decl {
		if strings.Contains(k, "quant_conv") || strings.Contains(k, "attentions") {
			t.Errorf("unexpected key %s with use_quant_conv/use_post_quant_conv/mid_block_add_attention false", k)
		}
	}
	for _, k := range []string{"encoder.down_blocks.1.downsamplers.0.conv.weight", "decoder.up_blocks.1.upsamplers.0.conv.weight",
		"decoder.up_blocks.2.resnets.1.conv2.weight", "encoder.down_blocks.1.resnets.0.conv_shortcut.weight"} {
		if _, ok := decl[k]; !ok {
			t.Errorf("missing key %s", k)
		}
	}
	for _, k := range []string{"encoder.down_blocks.2.downsamplers.0.conv.weight", "decoder.up_blocks.2.upsamplers.0.conv.weight"} {
		if _, ok := decl[k]; ok {
			t.Errorf("the last level must not have %s", k)
		}
	}
}
