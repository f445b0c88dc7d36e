package sd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/schedulers"
)

// tinyPipeline is a diffusers pipeline folder composed from fixture cases (see the fixtures
// README, "Composing the tiny cases into pipelines").
type tinyPipeline struct {
	dir   string
	sdxl  bool
	parts map[string]string // component → fixture case folder
}

// bpePath is the CLIP BPE merges file of the fixtures (the composed folders have no tokenizer/).
func bpePath(t *testing.T) string {
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

// composePipelines builds one pipeline folder per UNet fixture case, each with fixture components
// that fit it (sizes read from the configs): SD1.x-shaped or, for addition_embed_type text_time,
// SDXL-shaped. At least one of each shape must compose. scheduler picks the scheduler config ("" = a DDIM case for SD1.x, an Euler case for
// SDXL).
func composePipelines(t *testing.T, scheduler string) []*tinyPipeline {
	t.Helper()
	clipDirs, vaeDirs := testutil.Cases(t, "clip_text"), testutil.Cases(t, "vae") // sorted: deterministic picks
	clips := map[string]clipCfg{}
	for _, d := range clipDirs {
		var c clipCfg
		readJSON(t, filepath.Join(d, "config.json"), &c)
		clips[d] = c
	}
	vaeLatents := map[string]int{}
	for _, d := range vaeDirs {
		var c struct {
			LatentChannels int `json:"latent_channels"`
		}
		readJSON(t, filepath.Join(d, "config.json"), &c)
		vaeLatents[d] = c.LatentChannels
	}
	schedulerClass := map[string]string{}
	for _, d := range testutil.Cases(t, "scheduler") {
		var c struct {
			ClassName      string `json:"_class_name"`
			PredictionType string `json:"prediction_type"`
		}
		readJSON(t, filepath.Join(d, "config.json"), &c)
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
	var out []*tinyPipeline
	for _, unetDir := range testutil.Cases(t, "unet") {
		var u struct {
			InChannels        int     `json:"in_channels"`
			CrossAttention    any     `json:"cross_attention_dim"`
			AdditionEmbedType *string `json:"addition_embed_type"`
			AddTimeDim        *int    `json:"addition_time_embed_dim"`
			ProjectionInput   *int    `json:"projection_class_embeddings_input_dim"`
		}
		readJSON(t, filepath.Join(unetDir, "config.json"), &u)
		cross := 0
		switch v := u.CrossAttention.(type) {
		case float64:
			cross = int(v)
		case []any:
			cross = int(v[0].(float64))
		}
		tp := &tinyPipeline{dir: t.TempDir(), parts: map[string]string{"unet": unetDir},
			sdxl: u.AdditionEmbedType != nil && *u.AdditionEmbedType == "text_time"}
		for _, d := range vaeDirs {
			if vaeLatents[d] == u.InChannels && tp.parts["vae"] == "" {
				tp.parts["vae"] = d
			}
		}
		usable := func(c clipCfg) bool { return c.VocabSize >= 49408 } // real CLIP BPE ids
		if tp.sdxl {
			for _, d2 := range clipDirs {
				c2 := clips[d2]
				if tp.parts["text_encoder_2"] != "" || !usable(c2) || !c2.withProjection() || u.AddTimeDim == nil || u.ProjectionInput == nil ||
					c2.ProjectionDim+6**u.AddTimeDim != *u.ProjectionInput {
					continue
				}
				for _, d1 := range clipDirs {
					c1 := clips[d1]
					if d1 != d2 && usable(c1) && c1.HiddenSize+c2.HiddenSize == cross && tp.parts["text_encoder_2"] == "" {
						tp.parts["text_encoder"], tp.parts["text_encoder_2"] = d1, d2
					}
				}
			}
		} else {
			for _, d := range clipDirs {
				if c := clips[d]; usable(c) && c.HiddenSize == cross && tp.parts["text_encoder"] == "" {
					tp.parts["text_encoder"] = d
				}
			}
		}
		want := []string{"unet", "vae", "text_encoder"}
		if tp.sdxl {
			want = append(want, "text_encoder_2")
		}
		missing := ""
		for _, comp := range want {
			if tp.parts[comp] == "" {
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
			"tokenizer": []any{nil, nil}}
		sched := scheduler
		if tp.sdxl {
			index["_class_name"] = "StableDiffusionXLPipeline"
			index["text_encoder_2"] = []string{"transformers", "CLIPTextModelWithProjection"}
			index["tokenizer_2"] = []any{nil, nil}
			if sched == "" {
				sched = pickScheduler(schedulers.ClassEulerDiscrete)
			}
		} else if sched == "" {
			sched = pickScheduler(schedulers.ClassDDIM)
		}
		for comp, d := range tp.parts {
			require.NoError(t, os.Symlink(d, filepath.Join(tp.dir, comp)))
		}
		b, err := json.MarshalIndent(index, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(tp.dir, "model_index.json"), b, 0o644))
		require.NoError(t, os.MkdirAll(filepath.Join(tp.dir, "scheduler"), 0o755))
		sb, err := os.ReadFile(sched)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(tp.dir, "scheduler", "scheduler_config.json"), sb, 0o644))
		out = append(out, tp)
	}
	kinds := map[bool]int{}
	for _, tp := range out {
		kinds[tp.sdxl]++
	}
	require.Positive(t, kinds[false], "no SD1.x-shaped pipeline could be composed from the fixtures")
	require.Positive(t, kinds[true], "no SDXL-shaped pipeline could be composed from the fixtures")
	return out
}

func (tp *tinyPipeline) name() string { return filepath.Base(tp.parts["unet"]) }

func (tp *tinyPipeline) load(t *testing.T, opts PipelineOptions) *Pipeline {
	t.Helper()
	opts.Backend = testutil.Backend(t)
	if opts.Tokenizer == "" {
		opts.Tokenizer = bpePath(t)
	}
	p, err := LoadPipeline(tp.dir, opts)
	require.NoError(t, err)
	return p
}

func TestLoadPipeline(t *testing.T) {
	for _, tp := range composePipelines(t, "") {
		t.Run(tp.name(), func(t *testing.T) {
			p := tp.load(t, PipelineOptions{})
			wantKind, wantTE, wantSampler := KindSD15, 1, SamplerDDIM
			if tp.sdxl {
				wantKind, wantTE, wantSampler = KindSDXL, 2, SamplerEuler
			}
			require.Equal(t, wantKind, p.Kind)
			require.Len(t, p.TextEncoders, wantTE)
			require.Len(t, p.Tokenizers, wantTE)
			require.Equal(t, wantSampler, p.Sampler)
			eos := p.Tokenizers[0].EOS
			require.Equal(t, eos, p.PadIDs[0], "text_encoder pads with <|endoftext|>")
			if tp.sdxl {
				bang, ok := p.Tokenizers[1].TokenID("!")
				require.True(t, ok)
				require.Equal(t, bang, p.PadIDs[1], "text_encoder_2 pads with \"!\"")
				require.Equal(t, 0, p.PadIDs[1])
			}
			// Weights sit under the component scopes.
			for _, scope := range append([]string{ScopeUNet, ScopeVAE}, textEncoderScopes[:wantTE]...) {
				n := 0
				for range p.Ctx.In(scope).IterVariablesInScope() {
					n++
				}
				require.Positive(t, n, scope)
			}
			// The sampler can be overridden.
			other := SamplerEuler
			if tp.sdxl {
				other = SamplerDDIM
			}
			p2 := tp.load(t, PipelineOptions{Sampler: other, SkipVAE: true})
			require.Equal(t, other, p2.Sampler)
			require.Equal(t, samplerClasses[other], p2.SchedulerConfig.ClassName)
			require.Nil(t, p2.VAE)
			_, err := p2.Sample(SampleRequest{Prompts: []string{"x"}})
			require.ErrorContains(t, err, "VAE")
			p2.Close()
			_, err = p2.EncodePrompts([]string{"x"}, EncodeOptions{})
			require.Error(t, err)
		})
	}
}

// TestLoadPipelinePNDM loads SD1.5's real scheduler config (a PNDMScheduler) as DDIM, as LECO does.
func TestLoadPipelinePNDM(t *testing.T) {
	pndm := filepath.Join(testutil.Fixtures(t), "real", "configs", "sd15", "scheduler", "scheduler_config.json")
	for _, tp := range composePipelines(t, pndm) {
		if tp.sdxl {
			continue
		}
		t.Run(tp.name(), func(t *testing.T) {
			p := tp.load(t, PipelineOptions{SkipVAE: true})
			require.Equal(t, SamplerDDIM, p.Sampler)
			cfg := p.SchedulerConfig
			require.Equal(t, schedulers.ClassDDIM, cfg.ClassName)
			require.Equal(t, 1, cfg.StepsOffset)
			require.Equal(t, "scaled_linear", cfg.BetaSchedule)
			require.Equal(t, "epsilon", cfg.PredictionType)
			require.False(t, cfg.SetAlphaToOne)
			s, err := p.NewScheduler("")
			require.NoError(t, err)
			require.NoError(t, s.SetTimesteps(50))
			require.Equal(t, 981.0, s.Timesteps()[0])
			_, err = p.NewScheduler("pndm")
			require.ErrorContains(t, err, "ddim")
		})
	}
}

// TestLoadPipelineMismatch: components that do not fit are named.
func TestLoadPipelineMismatch(t *testing.T) {
	var sd15, sdxl *tinyPipeline
	for _, tp := range composePipelines(t, "") {
		if tp.sdxl {
			sdxl = tp
		} else {
			sd15 = tp
		}
	}
	require.NotNil(t, sd15)
	require.NotNil(t, sdxl)
	// An SD1.x UNet with the SDXL text_encoder_2 as its text_encoder.
	require.NoError(t, os.Remove(filepath.Join(sd15.dir, "text_encoder")))
	require.NoError(t, os.Symlink(sdxl.parts["text_encoder_2"], filepath.Join(sd15.dir, "text_encoder")))
	_, err := LoadPipeline(sd15.dir, PipelineOptions{Backend: testutil.Backend(t), Tokenizer: bpePath(t), SkipVAE: true})
	require.ErrorContains(t, err, "cross_attention_dim")
	// Not a pipeline folder.
	_, err = LoadPipeline(sd15.parts["unet"], PipelineOptions{Backend: testutil.Backend(t)})
	require.ErrorContains(t, err, "model_index.json")
	// Missing text_encoder_2.
	require.NoError(t, os.Remove(filepath.Join(sdxl.dir, "text_encoder_2")))
	_, err = LoadPipeline(sdxl.dir, PipelineOptions{Backend: testutil.Backend(t), Tokenizer: bpePath(t), SkipVAE: true})
	require.ErrorContains(t, err, "text_encoder_2")
	require.True(t, strings.Contains(err.Error(), sdxl.dir), err.Error())
}
