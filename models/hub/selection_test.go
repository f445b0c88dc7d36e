package hub

import (
	"encoding/json"
	"path/filepath"
	"sort"
	"testing"

	"github.com/loba-dev/loba/models/hub/hubtest"
	"github.com/stretchr/testify/require"
)

// TestSelectRealRepos runs the file selection on the real file lists of the SD1.5 and SDXL-base
// hub revisions (fixtures/real/configs/hub_files.json) with their real model_index.json.
func TestSelectRealRepos(t *testing.T) {
	var hubFiles map[string]struct {
		Revision string                     `json:"revision"`
		Files    map[string]json.RawMessage `json:"files"`
	}
	require.NoError(t, json.Unmarshal(hubtest.ReadFixture(t, "real", "configs", "hub_files.json"), &hubFiles))

	tokenizer := func(dir string) []string {
		return []string{dir + "/merges.txt", dir + "/special_tokens_map.json", dir + "/tokenizer_config.json", dir + "/vocab.json"}
	}
	cases := []struct {
		repo, configs, variant string
		components             []string
		want                   []string
	}{
		{repo: "runwayml/stable-diffusion-v1-5", configs: "sd15",
			want: append([]string{"model_index.json", "scheduler/scheduler_config.json",
				"text_encoder/config.json", "text_encoder/model.safetensors",
				"unet/config.json", "unet/diffusion_pytorch_model.safetensors",
				"vae/config.json", "vae/diffusion_pytorch_model.safetensors"}, tokenizer("tokenizer")...)},
		{repo: "runwayml/stable-diffusion-v1-5", configs: "sd15", variant: "fp16",
			want: append([]string{"model_index.json", "scheduler/scheduler_config.json",
				"text_encoder/config.json", "text_encoder/model.fp16.safetensors",
				"unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors",
				"vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors"}, tokenizer("tokenizer")...)},
		{repo: "runwayml/stable-diffusion-v1-5", configs: "sd15", variant: "non_ema", components: []string{"unet", "safety_checker"},
			want: []string{"model_index.json", "safety_checker/config.json", "safety_checker/model.safetensors",
				"unet/config.json", "unet/diffusion_pytorch_model.non_ema.safetensors"}},
		{repo: "stabilityai/stable-diffusion-xl-base-1.0", configs: "sdxl_base",
			want: append(append([]string{"model_index.json", "scheduler/scheduler_config.json",
				"text_encoder/config.json", "text_encoder/model.safetensors",
				"text_encoder_2/config.json", "text_encoder_2/model.safetensors",
				"unet/config.json", "unet/diffusion_pytorch_model.safetensors",
				"vae/config.json", "vae/diffusion_pytorch_model.safetensors"}, tokenizer("tokenizer")...), tokenizer("tokenizer_2")...)},
		{repo: "stabilityai/stable-diffusion-xl-base-1.0", configs: "sdxl_base", variant: "fp16", components: []string{"unet", "vae"},
			want: []string{"model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors",
				"vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors"}},
	}
	for _, tc := range cases {
		t.Run(filepath.Base(tc.repo)+"/"+tc.variant, func(t *testing.T) {
			entry, ok := hubFiles[tc.repo]
			require.True(t, ok)
			var names []string
			for n := range entry.Files {
				names = append(names, n)
			}
			idx := hubtest.ReadFixture(t, "real", "configs", tc.configs, "model_index.json")
			got, err := selectPipelineFiles(tc.repo, names, idx, selection{variant: tc.variant, components: tc.components})
			require.NoError(t, err)
			sort.Strings(tc.want)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kind    fileKind
		variant string
	}{
		{"diffusion_pytorch_model.safetensors", kindSafetensors, ""},
		{"diffusion_pytorch_model.fp16.safetensors", kindSafetensors, "fp16"},
		{"diffusion_pytorch_model.non_ema.safetensors", kindSafetensors, "non_ema"},
		{"diffusion_pytorch_model-00001-of-00003.safetensors", kindSafetensors, ""},
		{"diffusion_pytorch_model.fp16-00002-of-00003.safetensors", kindSafetensors, "fp16"},
		{"diffusion_pytorch_model-00002-of-00003.fp16.safetensors", kindSafetensors, "fp16"},
		{"diffusion_pytorch_model.safetensors.index.json", kindIndex, ""},
		{"diffusion_pytorch_model.safetensors.index.fp16.json", kindIndex, "fp16"},
		{"diffusion_pytorch_model.fp16.safetensors.index.json", kindIndex, "fp16"},
		{"model.safetensors", kindSafetensors, ""},
		{"config.json", kindConfig, ""},
		{"merges.txt", kindConfig, ""},
		{"spiece.model", kindConfig, ""},
		{"pytorch_model.bin", kindPickle, ""},
		{"diffusion_pytorch_model.fp16.bin", kindPickle, ""},
		{"v1-5-pruned.ckpt", kindPickle, ""},
		{"model.pt", kindPickle, ""},
		{"model.pth", kindPickle, ""},
		{"openvino_model.bin", kindOtherWeight, ""},
		{"flax_model.msgpack", kindOtherWeight, ""},
		{"model.onnx", kindOtherWeight, ""},
		{"model.onnx_data", kindOtherWeight, ""},
		{"README.md", kindSkip, ""},
		{"01.png", kindSkip, ""},
	} {
		kind, v := classify(tc.name)
		require.Equal(t, tc.kind, kind, tc.name)
		require.Equal(t, tc.variant, v, tc.name)
	}
}

func TestSelectComponentErrors(t *testing.T) {
	_, err := selectComponent("org/r", "unet", []string{"config.json", "diffusion_pytorch_model.fp16.safetensors"}, "")
	require.ErrorContains(t, err, "only variant safetensors weights (fp16)")
	_, err = selectComponent("org/r", "unet", []string{"config.json", "diffusion_flax_model.msgpack"}, "")
	require.ErrorContains(t, err, "no .safetensors weights (only unet/diffusion_flax_model.msgpack)")
	_, err = selectComponent("org/r", "unet", []string{"config.json"}, "")
	require.ErrorContains(t, err, "config.json but no .safetensors weights")
	_, err = selectComponent("org/r", "unet", nil, "")
	require.ErrorContains(t, err, "missing or empty")
	got, err := selectComponent("org/r", "scheduler", []string{"scheduler_config.json"}, "fp16")
	require.NoError(t, err)
	require.Equal(t, []string{"scheduler/scheduler_config.json"}, got)
	// Sharded weights come with their index.
	got, err = selectComponent("org/r", "unet", []string{"config.json",
		"diffusion_pytorch_model-00001-of-00002.safetensors", "diffusion_pytorch_model-00002-of-00002.safetensors",
		"diffusion_pytorch_model.safetensors.index.json",
		"diffusion_pytorch_model.fp16-00001-of-00002.safetensors", "diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
		"diffusion_pytorch_model.safetensors.index.fp16.json"}, "fp16")
	require.NoError(t, err)
	sort.Strings(got)
	require.Equal(t, []string{"unet/config.json",
		"unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors", "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
		"unet/diffusion_pytorch_model.safetensors.index.fp16.json"}, got)
}
