// Package sdtest composes tiny diffusers pipeline folders from the golden fixtures
// ($LOBA_FIXTURES), for tests of code that loads whole Stable Diffusion models (pipelines, the
// trainer, the CLI). It is imported only from _test.go files.
package sdtest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/schedulers"
)

// Pipeline is a diffusers pipeline folder composed from fixture cases (see the fixtures
// README, "Composing the tiny cases into pipelines").
type Pipeline struct {
	Dir   string            // the folder: model_index.json, component symlinks, scheduler/, tokenizer(_2)/
	SDXL  bool              // SDXL-shaped (UNet with addition_embed_type text_time)
	Parts map[string]string // component → fixture case folder
}

// Name is the UNet fixture case the pipeline is built around.
func (tp *Pipeline) Name() string { return filepath.Base(tp.Parts["unet"]) }

// BPEPath is the CLIP BPE merges file of the fixtures.
func BPEPath(t testing.TB) string {
	return filepath.Join(testutil.Fixtures(t), "tokenizer", "bpe_simple_vocab_16e6.txt.gz")
}

type clipCfg struct {
	Architectures []string `json:"architectures"`
	HiddenSize    int      `json:"hidden_size"`
	ProjectionDim int      `json:"projection_dim"`
	VocabSize     int      `json:"vocab_size"`
}

func (c clipCfg) withProjection() bool {
	return len(c.Architectures) > 0 && c.Architectures[0] == "CLIPTextModelWithProjection"
}

// Compose builds one pipeline folder per UNet fixture case, each with fixture components
// that fit it (sizes read from the configs): SD1.x-shaped or, for addition_embed_type text_time,
// SDXL-shaped. At least one of each shape must compose. scheduler picks the scheduler config ("" = a DDIM case for SD1.x, an Euler case for
// SDXL).
func Compose(t testing.TB, scheduler string) []*Pipeline {
	t.Helper()
	clipDirs, vaeDirs := testutil.Cases(t, "clip_text"), testutil.Cases(t, "vae") // sorted: deterministic picks
	clips := map[string]clipCfg{}
	for _, d := range clipDirs {
		var c clipCfg
		ReadJSON(t, filepath.Join(d, "config.json"), &c)
		clips[d] = c
	}
	vaeLatents := map[string]int{}
	for _, d := range vaeDirs {
		var c struct {
			LatentChannels int `json:"latent_channels"`
		}
		ReadJSON(t, filepath.Join(d, "config.json"), &c)
		vaeLatents[d] = c.LatentChannels
	}
	schedulerClass := map[string]string{}
	for _, d := range testutil.Cases(t, "scheduler") {
		var c struct {
			ClassName      string `json:"_class_name"`
			PredictionType string `json:"prediction_type"`
		}
		ReadJSON(t, filepath.Join(d, "config.json"), &c)
		if c.PredictionType == "epsilon" {
			schedulerClass[d] = c.ClassName
		}
	}
	pickScheduler := func(class string) string {
		for _, d := range testutil.Cases(t, "scheduler") {
			if schedulerClass[d] == class {
				return filepath.Join(d, "config.json")
			}
		}
		t.Fatalf("no epsilon-prediction %s scheduler case", class)
		return ""
	}
	var out []*Pipeline
	for _, unetDir := range testutil.Cases(t, "unet") {
		var u struct {
			InChannels        int     `json:"in_channels"`
			CrossAttention    any     `json:"cross_attention_dim"`
			AdditionEmbedType *string `json:"addition_embed_type"`
			AddTimeDim        *int    `json:"addition_time_embed_dim"`
			ProjectionInput   *int    `json:"projection_class_embeddings_input_dim"`
		}
		ReadJSON(t, filepath.Join(unetDir, "config.json"), &u)
		cross := 0
		switch v := u.CrossAttention.(type) {
		case float64:
			cross = int(v)
		case []any:
			cross = int(v[0].(float64))
		}
		tp := &Pipeline{Dir: t.TempDir(), Parts: map[string]string{"unet": unetDir},
			SDXL: u.AdditionEmbedType != nil && *u.AdditionEmbedType == "text_time"}
		for _, d := range vaeDirs {
			if vaeLatents[d] == u.InChannels && tp.Parts["vae"] == "" {
				tp.Parts["vae"] = d
			}
		}
		usable := func(c clipCfg) bool { return c.VocabSize >= 49408 } // real CLIP BPE ids
		if tp.SDXL {
			for _, d2 := range clipDirs {
				c2 := clips[d2]
				if tp.Parts["text_encoder_2"] != "" || !usable(c2) || !c2.withProjection() || u.AddTimeDim == nil || u.ProjectionInput == nil ||
					c2.ProjectionDim+6**u.AddTimeDim != *u.ProjectionInput {
					continue
				}
				for _, d1 := range clipDirs {
					c1 := clips[d1]
					if d1 != d2 && usable(c1) && c1.HiddenSize+c2.HiddenSize == cross && tp.Parts["text_encoder_2"] == "" {
						tp.Parts["text_encoder"], tp.Parts["text_encoder_2"] = d1, d2
					}
				}
			}
		} else {
			for _, d := range clipDirs {
				if c := clips[d]; usable(c) && c.HiddenSize == cross && tp.Parts["text_encoder"] == "" {
					tp.Parts["text_encoder"] = d
				}
			}
		}
		want := []string{"unet", "vae", "text_encoder"}
		if tp.SDXL {
			want = append(want, "text_encoder_2")
		}
		missing := ""
		for _, comp := range want {
			if tp.Parts[comp] == "" {
				missing = comp
			}
		}
		if missing != "" {
			// A fixture set problem, not a code path: the other cases still run, and each kind must compose.
			t.Logf("unet case %s: no fixture %s fits it; not composed into a pipeline", filepath.Base(unetDir), missing)
			continue
		}
		index := map[string]any{"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.40.0.dev0",
			"scheduler": []string{"diffusers", "DDIMScheduler"}, "unet": []string{"diffusers", "UNet2DConditionModel"},
			"vae": []string{"diffusers", "AutoencoderKL"}, "text_encoder": []string{"transformers", "CLIPTextModel"},
			"tokenizer": []string{"transformers", "CLIPTokenizer"}}
		sched := scheduler
		if tp.SDXL {
			index["_class_name"] = "StableDiffusionXLPipeline"
			index["text_encoder_2"] = []string{"transformers", "CLIPTextModelWithProjection"}
			index["tokenizer_2"] = []string{"transformers", "CLIPTokenizer"}
			if sched == "" {
				sched = pickScheduler(schedulers.ClassEulerDiscrete)
			}
		} else if sched == "" {
			sched = pickScheduler(schedulers.ClassDDIM)
		}
		for comp, d := range tp.Parts {
			require.NoError(t, os.Symlink(d, filepath.Join(tp.Dir, comp)))
		}
		writeTokenizers(t, tp)
		b, err := json.MarshalIndent(index, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(tp.Dir, "model_index.json"), b, 0o644))
		require.NoError(t, os.MkdirAll(filepath.Join(tp.Dir, "scheduler"), 0o755))
		sb, err := os.ReadFile(sched)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(tp.Dir, "scheduler", "scheduler_config.json"), sb, 0o644))
		out = append(out, tp)
	}
	kinds := map[bool]int{}
	for _, tp := range out {
		kinds[tp.SDXL]++
	}
	require.Positive(t, kinds[false], "no SD1.x-shaped pipeline could be composed from the fixtures")
	require.Positive(t, kinds[true], "no SDXL-shaped pipeline could be composed from the fixtures")
	return out
}

// writeTokenizers lays out tokenizer/ (padding with <|endoftext|>) and, for SDXL, tokenizer_2/
// (padding with "!", id 0) from the fixtures' BPE file, as the hub folders hold them.
func writeTokenizers(t testing.TB, tp *Pipeline) {
	tok, err := clip.LoadBPE(BPEPath(t))
	require.NoError(t, err)
	require.NoError(t, tok.SaveTokenizer(filepath.Join(tp.Dir, "tokenizer")))
	if tp.SDXL {
		tok.Pad = 0
		require.NoError(t, tok.SaveTokenizer(filepath.Join(tp.Dir, "tokenizer_2")))
	}
}

// ReadJSON decodes a JSON file, failing the test on error.
func ReadJSON(t testing.TB, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, into), path)
}

// First returns the first composed pipeline of the given shape (SDXL or not).
func First(t testing.TB, sdxl bool) *Pipeline {
	t.Helper()
	for _, tp := range Compose(t, "") {
		if tp.SDXL == sdxl {
			return tp
		}
	}
	t.Fatalf("no composed pipeline with sdxl=%v", sdxl)
	return nil
}
