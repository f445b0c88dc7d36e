package sd

// Pipeline glue for Stable Diffusion 1.x/2.x and SDXL: the diffusers folder (model_index.json) is
// loaded into one context, text → conditioning (conditioning.go), denoising loop and VAE decode
// (sample.go), images (image.go). Ports the parts of diffusers' StableDiffusionPipeline and
// StableDiffusionXLPipeline (pipelines/stable_diffusion*/pipeline_stable_diffusion*.py) that LOBA
// needs: encode_prompt, prepare_latents, the denoising loop with classifier-free guidance and
// vae.decode.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/backend"
	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/schedulers"
	"github.com/loba-dev/loba/models/toyworld"
	"github.com/loba-dev/loba/models/unet"
	"github.com/loba-dev/loba/models/vae"
	"github.com/loba-dev/loba/models/weights"
)

// Pipeline kinds (Pipeline.Kind).
const (
	// KindSD15 is a single-text-encoder pipeline (SD1.x, also SD2.x): the UNet has no
	// addition_embed_type.
	KindSD15 = "sd15"
	// KindSDXL is SDXL: two text encoders and addition_embed_type "text_time".
	KindSDXL = "sdxl"
)

// Samplers Pipeline.Sample can run (SampleRequest.Sampler, PipelineOptions.Sampler).
const (
	SamplerDDIM  = "ddim"
	SamplerEuler = "euler"
)

var samplerClasses = map[string]string{SamplerDDIM: schedulers.ClassDDIM, SamplerEuler: schedulers.ClassEulerDiscrete}

// Component scopes: the weights of each component live under ctx.At("%s", scope) of Pipeline.Ctx.
const (
	ScopeUNet         = "unet"
	ScopeVAE          = "vae"
	ScopeTextEncoder  = "text_encoder"
	ScopeTextEncoder2 = "text_encoder_2"
)

// textEncoderScopes are the scopes of Pipeline.TextEncoders, in order.
var textEncoderScopes = []string{ScopeTextEncoder, ScopeTextEncoder2}

// TextEncoderScope is the scope (and the LoRA component name) of Pipeline.TextEncoders[i]:
// "text_encoder", then SDXL's "text_encoder_2".
func TextEncoderScope(i int) string { return textEncoderScopes[i] }

// AdapterFactory builds the adapter (e.g. the trainer's LoRA network) consulted by the Linear and
// Conv2D layers of a sampling graph: the UNet's (SetAdapter) or the text encoders' (SetTextAdapter).
// multiplier is a [B] float32 node, one value per batch item of the network (the slider strength
// of a UNet batch item, 0 while the adapter is held off; the strength of an encoded prompt window);
// the adapter scales its deltas by it, broadcast over the other axes. The adapter's variables must
// already exist in Pipeline.Ctx (the graph is built with Ctx).
type AdapterFactory func(multiplier *Node) nn.Adapter

// PipelineOptions tunes LoadPipeline. The zero value loads float32 weights on backend.New().
type PipelineOptions struct {
	// Backend runs every graph; nil creates one with backend.New() (GOMLX_BACKEND).
	Backend compute.Backend
	// DType is the dtype of the UNet and text-encoder weights and activations (default Float32;
	// ResolveDType picks it from a preset's train.dtype). The VAE stays float32 when its config has
	// force_upcast, as diffusers does.
	DType dtypes.DType
	// Variant prefers weight files of that variant for the VAE and text encoders ("fp16"); the UNet
	// takes the plain files, else the fp16 ones.
	Variant string
	// Tokenizer overrides tokenizer/ and tokenizer_2/: a tokenizer folder (vocab.json + merges.txt)
	// or openai/CLIP's BPE merges file (bpe_simple_vocab_16e6.txt.gz). With a file, text_encoder
	// pads with <|endoftext|> and text_encoder_2 with "!" (id 0), the SD1.x / SDXL conventions.
	Tokenizer string
	// SchedulerConfig overrides scheduler/scheduler_config.json.
	SchedulerConfig string
	// Sampler is the default SampleRequest.Sampler: "ddim" or "euler". "" takes the folder's
	// scheduler when it is one of them (SDXL's EulerDiscreteScheduler), else "ddim" (SD1.5's
	// PNDMScheduler config read as a DDIMScheduler, as LECO does).
	Sampler string
	// SkipVAE does not load the VAE (training without sampling); Sample then fails.
	SkipVAE bool
	// SkipTextEncoders reads the text encoders' configs (to check the components fit together) but
	// not their weights: for a caller that has every prompt's conditioning cached. EncodePrompts
	// then fails, as after FreeTextEncoders.
	SkipTextEncoders bool
}

// Pipeline is a loaded Stable Diffusion model: the networks, their weights in one context and the
// compiled graphs reused across calls. Its methods are safe for use by one goroutine at a time
// (calls are serialised).
type Pipeline struct {
	// Kind is KindSD15 or KindSDXL (from the UNet config: addition_embed_type "text_time" → SDXL).
	Kind string
	// Dir is the folder the pipeline was loaded from.
	Dir string

	UNet *unet.UNet2DConditionModel
	VAE  *vae.AutoencoderKL // nil with PipelineOptions.SkipVAE
	// VAEConfig is the VAE's config, read even with SkipVAE (latent scale, scaling factor); nil
	// when the "vae" is the toy world's latent map (ToyLatents).
	VAEConfig *vae.Config
	// TextEncoders are text_encoder (and text_encoder_2 for SDXL); nil after FreeTextEncoders.
	TextEncoders []*clip.TextModel
	// Tokenizers are the tokenizers of TextEncoders (the same one may appear twice).
	Tokenizers []*clip.Tokenizer
	// PadIDs are the padding ids of TextEncoders' inputs: SD1.x / text_encoder pad with
	// <|endoftext|>, SDXL's text_encoder_2 with "!" (0).
	PadIDs []int

	// SchedulerConfig is the scheduler config read as the default sampler's class.
	SchedulerConfig *schedulers.Config
	// Sampler is the default sampler ("ddim" or "euler").
	Sampler string

	Backend compute.Backend
	// Ctx is the root context: unet weights at Ctx.At("unet"), vae at Ctx.At("vae"), text encoders
	// at Ctx.At("text_encoder") and Ctx.At("text_encoder_2"). Graphs are built with Ctx.
	Ctx *model.Scope
	// DType is the dtype of the UNet and text-encoder weights (VAEDType: the VAE's).
	DType dtypes.DType

	mu     sync.Mutex // serialises the methods
	graphs pipelineGraphs
}

// pipelineGraphs are a pipeline's compiled graphs, what they are built from (the scheduler config
// file, the installed adapters) and their counts.
type pipelineGraphs struct {
	schedulerJSON []byte
	adapter       AdapterFactory
	adapterGen    int            // bumped by SetAdapter: part of the step graphs' keys
	textAdapter   AdapterFactory // SetTextAdapter

	encode map[encodeKey]*model.Exec
	// encodeText are the encoding graphs with textAdapter and a multiplier input.
	encodeText map[encodeKey]*model.Exec
	step       map[stepKey]*stepEntry
	decode     *model.Exec
	stats      Stats
}

// UNetParams is the number of the loaded UNet's parameters (its variables in Ctx).
func (p *Pipeline) UNetParams() int64 {
	var n int64
	for v := range p.Ctx.At("%s", ScopeUNet).IterVariables() {
		n += int64(v.Shape().Size())
	}
	return n
}

// ToyLatents tells that the "vae" is the toy world's fixed latent map (ToyLatentMapClass): no VAE
// weights, no VAE config.
func (p *Pipeline) ToyLatents() bool { return p.VAEConfig == nil }

// VAEDType is the dtype of the VAE's weights and activations: float32 when its config has
// force_upcast (as diffusers does), else DType.
func (p *Pipeline) VAEDType() dtypes.DType {
	if p.VAEConfig != nil && p.VAEConfig.ForceUpcast {
		return dtypes.Float32
	}
	return p.DType
}

// Stats counts graph builds (one per compiled graph: per shape and configuration) and executions,
// so callers and tests can check that graphs are reused.
type Stats struct {
	EncodeGraphs, EncodeRuns int
	StepGraphs, StepRuns     int
	DecodeGraphs, DecodeRuns int
}

// Stats returns the counts so far.
func (p *Pipeline) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.graphs.stats
}

// LoadPipeline loads a diffusers pipeline folder (model_index.json with unet/, vae/, text_encoder/,
// [text_encoder_2/,] tokenizer/, [tokenizer_2/,] scheduler/) into one context. dir may also be a
// single-file checkpoint (.safetensors, LDM/SGM layout; see ResolveSingleFile for where its configs,
// tokenizers and scheduler come from). Errors name the folder or file and, for components that do
// not fit together, the config keys.
func LoadPipeline(dir string, opts PipelineOptions) (*Pipeline, error) {
	comps, single, err := readModelSource(dir, opts.Tokenizer) // singlefile.go
	if err != nil {
		return nil, err
	}
	p := &Pipeline{Dir: dir, Ctx: model.NewStore().RootScope(), DType: opts.DType, Backend: opts.Backend,
		graphs: pipelineGraphs{encode: map[encodeKey]*model.Exec{}, encodeText: map[encodeKey]*model.Exec{},
			step: map[stepKey]*stepEntry{}}}
	if p.DType == dtypes.InvalidDType {
		p.DType = dtypes.Float32
	}
	if p.Backend == nil {
		if p.Backend, err = backend.New(); err != nil {
			return nil, fmt.Errorf("sd.LoadPipeline: %w", err)
		}
	}
	if single != nil {
		err = p.loadSingleFileModels(single, opts)
	} else {
		err = p.loadModels(comps, opts)
	}
	if err != nil {
		return nil, err
	}
	if err := p.checkShapes(); err != nil {
		return nil, fmt.Errorf("sd.LoadPipeline %s: %w", dir, err)
	}
	if err := p.loadTokenizers(comps, opts.Tokenizer); err != nil {
		return nil, fmt.Errorf("sd.LoadPipeline %s: %w", dir, err)
	}
	if opts.SkipTextEncoders {
		p.TextEncoders = nil // configs only: checked above, no weights
	}
	if err := p.loadScheduler(comps, opts); err != nil {
		return nil, fmt.Errorf("sd.LoadPipeline %s: %w", dir, err)
	}
	return p, nil
}

// modelIndex is a pipeline folder's components by name (model_index.json).
type modelIndex struct {
	dir    string
	byName map[string]Component
}

// readModelIndex reads dir/model_index.json.
func readModelIndex(dir string) (modelIndex, error) {
	if _, err := os.Stat(filepath.Join(dir, "model_index.json")); err != nil {
		return modelIndex{}, fmt.Errorf("sd.LoadPipeline: %s has no model_index.json (want a diffusers pipeline folder)", dir)
	}
	comps, err := ReadComponents(dir)
	if err != nil {
		return modelIndex{}, err
	}
	m := modelIndex{dir: dir, byName: map[string]Component{}}
	for _, c := range comps {
		m.byName[c.Name] = c
	}
	return m, nil
}

// folder is the folder of the named component.
func (m modelIndex) folder(name string) (string, error) {
	c, ok := m.byName[name]
	if !ok || c.Dir == "" {
		return "", fmt.Errorf("sd.LoadPipeline: %s: model_index.json has no %q component with a folder", m.dir, name)
	}
	return c.Dir, nil
}

// loadModels reads the UNet, the VAE (or the toy latent map) and the text encoders.
func (p *Pipeline) loadModels(comps modelIndex, opts PipelineOptions) error {
	unetDir, err := comps.folder("unet")
	if err != nil {
		return err
	}
	if p.UNet, err = loadUNet(p.Ctx.At("%s", ScopeUNet), unetDir, p.DType); err != nil {
		return err
	}
	p.Kind = KindSD15
	if p.UNet.Config.IsSDXL() {
		p.Kind = KindSDXL
	}
	vaeDir, err := comps.folder("vae")
	if err != nil {
		return err
	}
	if comps.byName["vae"].Class == ToyLatentMapClass {
		// The toy world's fixed latent↔RGB map (models/toyworld) stands in for the VAE: no weights.
		if err := checkToyLatentMap(vaeDir); err != nil {
			return err
		}
	} else if p.VAEConfig, err = vae.LoadConfig(filepath.Join(vaeDir, "config.json")); err != nil {
		return err
	} else if !opts.SkipVAE {
		if err := p.loadVAE(vaeDir, opts); err != nil {
			return err
		}
	}
	teNames := textEncoderScopes[:1]
	if p.Kind == KindSDXL {
		teNames = textEncoderScopes
	}
	for _, name := range teNames {
		teDir, err := comps.folder(name)
		if err != nil {
			return err
		}
		te, err := loadTextEncoder(p.Ctx.At("%s", name), teDir, opts.Variant, p.DType, !opts.SkipTextEncoders)
		if err != nil {
			return err
		}
		p.TextEncoders = append(p.TextEncoders, te)
	}
	return nil
}

// loadUNet reads a UNet folder into ctx (the UNet's scope): the plain weight files, else the fp16
// ones (a UNet is often published in one of them only).
func loadUNet(ctx *model.Scope, dir string, dtype dtypes.DType) (*unet.UNet2DConditionModel, error) {
	cfg, err := unet.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	m, err := unet.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("unet.Load %s: %w", dir, err)
	}
	files, err := unet.WeightFiles(dir, "")
	if err != nil {
		return nil, err
	}
	return m, m.LoadWeights(ctx, files, dtype)
}

// loadVAE reads vae/ into Ctx.At("vae"), float32 when force_upcast is set.
func (p *Pipeline) loadVAE(dir string, opts PipelineOptions) error {
	cfg := p.VAEConfig
	var err error
	if p.VAE, err = vae.New(cfg); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	files, err := weights.FindWeightFiles(dir, opts.Variant)
	if err != nil {
		return fmt.Errorf("sd.LoadPipeline: %w", err)
	}
	return p.VAE.LoadWeights(p.Ctx.At("%s", ScopeVAE), files, p.VAEDType())
}

// loadTextEncoder reads a text-encoder folder into ctx (the encoder's scope); with withWeights
// false only its config.
func loadTextEncoder(ctx *model.Scope, dir, variant string, dtype dtypes.DType, withWeights bool) (*clip.TextModel, error) {
	cfg, err := clip.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	m, err := clip.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if !withWeights {
		return m, nil
	}
	files, err := weights.FindWeightFiles(dir, variant)
	if err != nil {
		return nil, fmt.Errorf("sd.LoadPipeline: %w", err)
	}
	if err := m.LoadWeights(ctx, files, dtype); err != nil {
		return nil, err
	}
	return m, nil
}

// checkShapes verifies the components fit together: text hidden sizes against the UNet's
// cross_attention_dim, SDXL's pooled projection and time ids against
// projection_class_embeddings_input_dim, and the VAE's latent channels against the UNet's.
func (p *Pipeline) checkShapes() error {
	ucfg := p.UNet.Config
	cross := ucfg.CrossAttentionDim.At(0)
	for i := 1; i < ucfg.Levels(); i++ {
		if ucfg.CrossAttentionDim.At(i) != cross {
			return fmt.Errorf("unet cross_attention_dim %s: per-level sizes are not supported by the pipeline", ucfg.CrossAttentionDim)
		}
	}
	hidden := 0
	var sizes []string
	for i, te := range p.TextEncoders {
		hidden += te.Config.HiddenSize
		sizes = append(sizes, fmt.Sprintf("%s hidden_size %d", textEncoderScopes[i], te.Config.HiddenSize))
	}
	if hidden != cross {
		return fmt.Errorf("unet cross_attention_dim %d does not match the text encoders (%s)", cross, strings.Join(sizes, " + "))
	}
	if p.Kind == KindSDXL {
		te2 := p.TextEncoders[1]
		if !te2.Config.WithProjection() {
			return fmt.Errorf("text_encoder_2 must be a %s (SDXL's pooled text_embeds), got architectures %v",
				clip.ArchTextModelWithProjection, te2.Config.Architectures)
		}
		if ucfg.ProjectionClassEmbeddingsInputDim == nil || ucfg.AdditionTimeEmbedDim == nil {
			return fmt.Errorf("unet addition_embed_type text_time needs projection_class_embeddings_input_dim and addition_time_embed_dim")
		}
		want := te2.Config.ProjectionDim + numTimeIDs*(*ucfg.AdditionTimeEmbedDim)
		if *ucfg.ProjectionClassEmbeddingsInputDim != want {
			return fmt.Errorf("unet projection_class_embeddings_input_dim %d != text_encoder_2 projection_dim %d + %d time ids × addition_time_embed_dim %d",
				*ucfg.ProjectionClassEmbeddingsInputDim, te2.Config.ProjectionDim, numTimeIDs, *ucfg.AdditionTimeEmbedDim)
		}
	}
	if p.ToyLatents() && (ucfg.InChannels != toyworld.LatentChannels || ucfg.OutChannels != toyworld.LatentChannels) {
		return fmt.Errorf("the toy latent map has %d channels but unet in_channels/out_channels are %d/%d",
			toyworld.LatentChannels, ucfg.InChannels, ucfg.OutChannels)
	}
	if p.VAE != nil && (p.VAE.Config.LatentChannels != ucfg.InChannels || p.VAE.Config.LatentChannels != ucfg.OutChannels) {
		return fmt.Errorf("vae latent_channels %d does not match unet in_channels %d / out_channels %d",
			p.VAE.Config.LatentChannels, ucfg.InChannels, ucfg.OutChannels)
	}
	return nil
}

// loadTokenizers reads tokenizer/ (and tokenizer_2/) or the override.
func (p *Pipeline) loadTokenizers(comps modelIndex, override string) error {
	n := len(p.TextEncoders)
	if override != "" {
		var tok *clip.Tokenizer
		var err error
		if st, serr := os.Stat(override); serr == nil && st.IsDir() {
			tok, err = clip.LoadTokenizer(override)
		} else {
			tok, err = clip.LoadBPE(override)
		}
		if err != nil {
			return err
		}
		for i := range n {
			p.Tokenizers = append(p.Tokenizers, tok)
			pad := tok.EOS
			if i == 1 {
				pad = 0
				if id, ok := tok.TokenID("!"); ok {
					pad = id
				}
			}
			p.PadIDs = append(p.PadIDs, pad)
		}
		return nil
	}
	for _, name := range []string{"tokenizer", "tokenizer_2"}[:n] {
		c, ok := comps.byName[name]
		if !ok || c.Dir == "" {
			return fmt.Errorf("no %s/ folder (set PipelineOptions.Tokenizer to a tokenizer folder or a BPE merges file)", name)
		}
		tok, err := clip.LoadTokenizer(c.Dir)
		if err != nil {
			return err
		}
		p.Tokenizers = append(p.Tokenizers, tok)
		p.PadIDs = append(p.PadIDs, tok.Pad)
	}
	return nil
}

// loadScheduler reads the scheduler config and picks the default sampler.
func (p *Pipeline) loadScheduler(comps modelIndex, opts PipelineOptions) error {
	path := opts.SchedulerConfig
	if path == "" {
		c, ok := comps.byName["scheduler"]
		if !ok || c.Dir == "" {
			return fmt.Errorf("no scheduler/ folder (set PipelineOptions.SchedulerConfig)")
		}
		path = filepath.Join(c.Dir, "scheduler_config.json")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	p.graphs.schedulerJSON = data
	p.Sampler = opts.Sampler
	if p.Sampler == "" {
		var head struct {
			ClassName string `json:"_class_name"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		p.Sampler = SamplerDDIM
		if head.ClassName == schedulers.ClassEulerDiscrete {
			p.Sampler = SamplerEuler
		}
	}
	if p.SchedulerConfig, err = p.schedulerConfig(p.Sampler); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// schedulerConfig reads the pipeline's scheduler config as the class of sampler.
func (p *Pipeline) schedulerConfig(sampler string) (*schedulers.Config, error) {
	class, ok := samplerClasses[sampler]
	if !ok {
		return nil, fmt.Errorf("sampler %q is not supported; valid: %s, %s", sampler, SamplerDDIM, SamplerEuler)
	}
	return schedulers.ParseConfigAs(p.graphs.schedulerJSON, class)
}

// NewScheduler builds a fresh scheduler of the given sampler ("" = the default) from the
// pipeline's scheduler config (e.g. SD1.5's PNDMScheduler config as a DDIMScheduler).
func (p *Pipeline) NewScheduler(sampler string) (schedulers.Scheduler, error) {
	if sampler == "" {
		sampler = p.Sampler
	}
	cfg, err := p.schedulerConfig(sampler)
	if err != nil {
		return nil, err
	}
	return schedulers.New(cfg)
}

// SetAdapter installs the adapter the sampling graphs build into the UNet (nil: none), e.g. the
// trainer's LoRA network, and drops the step graphs compiled for the previous one. The adapter's
// weights are read from Ctx at every run, so training updates need no new SetAdapter.
func (p *Pipeline) SetAdapter(f AdapterFactory) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.graphs.adapter = f
	p.graphs.adapterGen++
	for k, e := range p.graphs.step {
		e.exec.Finalize()
		delete(p.graphs.step, k)
	}
}

// SetTextAdapter installs the adapter the sampling entry points (Sample, SampleRows, SaveGrid) build
// into the text encoders (nil: none), e.g. a text-encoder LoRA (UseLoRA). Each image's prompt, and
// with classifier-free guidance its negative prompt, is then encoded with the adapter at the
// image's strength (SampleRequest.Strengths, the multiplier the UNet adapter gets; strength 0 is
// the frozen encoding). The factory gets a [N] multiplier, one value per encoded prompt window. It
// drops the encoding graphs compiled for the previous one; EncodePrompts stays the frozen encoding.
func (p *Pipeline) SetTextAdapter(f AdapterFactory) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.graphs.textAdapter = f
	p.dropTextAdapterGraphs()
}

// dropTextAdapterGraphs frees the encoding graphs built with the text adapter; p.mu is held.
func (p *Pipeline) dropTextAdapterGraphs() {
	for k, e := range p.graphs.encodeText {
		e.Finalize()
		delete(p.graphs.encodeText, k)
	}
}

// FreeTextEncoders deletes the text encoders' weights and compiled graphs (the trainer encodes its
// prompts once, then frees them). EncodePrompts fails afterwards, and so does sampling from prompts
// (pass conditionings).
func (p *Pipeline) FreeTextEncoders() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, e := range p.graphs.encode {
		e.Finalize()
		delete(p.graphs.encode, k)
	}
	p.dropTextAdapterGraphs()
	for i := range p.TextEncoders {
		if err := p.Ctx.At("%s", textEncoderScopes[i]).DeleteVariablesInScope(); err != nil {
			return fmt.Errorf("sd.FreeTextEncoders: %w", err)
		}
	}
	p.TextEncoders = nil
	return nil
}

// Close frees the compiled graphs and every weight of Ctx (the adapter's too); the pipeline is
// unusable afterwards.
func (p *Pipeline) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, e := range p.graphs.encode {
		e.Finalize()
		delete(p.graphs.encode, k)
	}
	p.dropTextAdapterGraphs()
	for k, e := range p.graphs.step {
		e.exec.Finalize()
		delete(p.graphs.step, k)
	}
	if p.graphs.decode != nil {
		p.graphs.decode.Finalize()
		p.graphs.decode = nil
	}
	p.Ctx.Store().Finalize()
	p.TextEncoders, p.UNet, p.VAE = nil, nil, nil
}

// LatentScale is the ratio between image pixels and latents (the VAE's downsampling factor, 8 for
// SD), from the VAE config (also with SkipVAE).
func (p *Pipeline) LatentScale() int {
	if p.ToyLatents() {
		return toyworld.DownFactor
	}
	return p.VAEConfig.DownsampleFactor()
}
