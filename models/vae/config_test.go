package vae

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/loba-dev/loba/internal/fixtures"
)

func TestConfigDefaultsAndRealConfigs(t *testing.T) {
	real := filepath.Join(fixtures.Root(t), "real", "configs")
	sd15, err := LoadConfig(filepath.Join(real, "sd15/vae/config.json"))
	if err != nil {
		t.Fatal(err)
	}
	// SD1.5's hub config (diffusers 0.6) carries no scaling_factor/use_quant_conv: the defaults apply.
	if sd15.ScalingFactor != 0.18215 || !sd15.UseQuantConv || !sd15.UsePostQuantConv || !sd15.MidBlockAddAttention ||
		sd15.ShiftFactor != nil || sd15.DownsampleFactor() != 8 {
		t.Errorf("sd15 defaults not applied: %+v", sd15)
	}
	sdxl, err := LoadConfig(filepath.Join(real, "sdxl_base/vae/config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if sdxl.ScalingFactor != 0.13025 || sdxl.SampleSize[0] != 1024 || sdxl.NameOrPath != "../sdxl-vae/" {
		t.Errorf("sdxl config: %+v", sdxl)
	}
	for _, dir := range fixtures.Cases(t, "vae") {
		if _, err := LoadConfig(filepath.Join(dir, "config.json")); err != nil {
			t.Errorf("%s: %v", dir, err)
		}
	}
}

func TestConfigValidateRejects(t *testing.T) {
	base := `"block_out_channels": [32, 64], "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
		"up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"], "norm_num_groups": 16`
	cases := []struct{ json, want string }{
		{`{` + base + `, "act_fn": "gelu"}`, `act_fn = "gelu"`},
		{`{"block_out_channels": [32, 64], "down_block_types": ["DownEncoderBlock2D", "DownBlock2D"],
			"up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"], "norm_num_groups": 16}`, `down_block_types[1] = "DownBlock2D"`},
		{`{"block_out_channels": [32, 64], "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
			"up_block_types": ["UpDecoderBlock2D", "AttnUpDecoderBlock2D"], "norm_num_groups": 16}`, `up_block_types[1] = "AttnUpDecoderBlock2D"`},
		{`{"block_out_channels": [32, 64], "down_block_types": ["DownEncoderBlock2D"],
			"up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"], "norm_num_groups": 16}`, `down_block_types has 1 entries`},
		{`{` + base + `, "norm_num_groups": 24}`, `block_out_channels[0] = 32`},
		{`{` + base + `, "latent_channels": 0}`, `latent_channels = 0`},
		{`{` + base + `, "latents_mean": [0.1, 0.2]}`, `latents_mean has 2 values`},
		{`{` + base + `, "_class_name": "VQModel"}`, `_class_name "VQModel"`},
	}
	for _, c := range cases {
		_, err := ParseConfig([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %s: got error %v, want one containing %q", c.json, err, c.want)
		}
	}
	// A key AutoencoderKL does not have is recorded, not rejected ("_" metadata keys are not listed).
	cfg, err := ParseConfig([]byte(`{` + base + `, "norm_type": "spatial", "_use_default_values": ["act_fn"]}`))
	if err != nil {
		t.Fatalf("unknown key rejected: %v", err)
	}
	if len(cfg.Unused) != 1 || cfg.Unused[0] != "norm_type" {
		t.Errorf("Unused = %q, want [norm_type]", cfg.Unused)
	}
	// Supported variants parse.
	for _, ok := range []string{
		`{` + base + `, "use_quant_conv": false, "use_post_quant_conv": false, "mid_block_add_attention": false}`,
		`{` + base + `, "sample_size": [32, 48], "shift_factor": 0.1159, "act_fn": "swish"}`,
	} {
		if _, err := ParseConfig([]byte(ok)); err != nil {
			t.Errorf("config %s: %v", ok, err)
		}
	}
}
