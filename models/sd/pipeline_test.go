package sd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/fixtures/tinypipe"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/schedulers"
)

// tinyPipeline is a pipeline folder composed from the fixtures (tinypipe.Pipelines).
type tinyPipeline struct {
	dir   string
	sdxl  bool
	parts map[string]string
}

// bpePath is the fixtures' CLIP BPE merges file.
func bpePath(t *testing.T) string { return fixtures.BPEPath(fixtures.Root(t)) }

// composePipelines wraps tinypipe.Pipelines.
func composePipelines(t *testing.T, scheduler string) []*tinyPipeline {
	var out []*tinyPipeline
	for _, p := range tinypipe.Pipelines(t, scheduler) {
		out = append(out, &tinyPipeline{dir: p.Dir, sdxl: p.SDXL, parts: p.Parts})
	}
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
				for range p.Ctx.At("%s", scope).IterVariables() {
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
	pndm := filepath.Join(fixtures.Root(t), "real", "configs", "sd15", "scheduler", "scheduler_config.json")
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

// TestLoadPipelineSkipTextEncoders: the text encoders' configs are read (and checked against the
// UNet) but no weight is loaded; encoding then fails with a clear error, sampling from given
// conditioning works.
func TestLoadPipelineSkipTextEncoders(t *testing.T) {
	for _, tp := range composePipelines(t, "") {
		t.Run(tp.name(), func(t *testing.T) {
			p := tp.load(t, PipelineOptions{SkipVAE: true, SkipTextEncoders: true})
			require.Empty(t, p.TextEncoders)
			for _, scope := range textEncoderScopes {
				n := 0
				for range p.Ctx.At("%s", scope).IterVariables() {
					n++
				}
				require.Zero(t, n, "%s holds variables", scope)
			}
			_, err := p.EncodePrompts([]string{"a red cube"}, EncodeOptions{})
			require.ErrorContains(t, err, "not loaded (SkipTextEncoders)")
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
