package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	gctx "github.com/gomlx/gomlx/ml/model"

	evalpkg "github.com/loba-dev/loba/lobanb/eval"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/hub"
	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/schedulers"
	"github.com/loba-dev/loba/models/sd"
	"github.com/loba-dev/loba/models/weights"
)

// Options tunes Setup.
type Options struct {
	// OutDir receives lora.safetensors, checkpoints/, loss.csv and samples/ (default: the preset's
	// output.dir, else "output/<output.name>").
	OutDir string
	// Backend computes everything; nil creates one with backend.New() (GOMLX_BACKEND).
	Backend compute.Backend
	// Tokenizer overrides the model folder's tokenizer (a folder or openai's BPE .gz).
	Tokenizer string
	// Log receives one-line messages (nil: quiet).
	Log io.Writer
	// SkipEval does not run the preset's eval section after training (the notebook helpers run it
	// in a cell of its own, lobanb.Eval).
	SkipEval bool
}

// Run is a training run set up from a preset: the pipeline, the adapter network, the compiled
// graphs and the loop.
type Run struct {
	*Loop
	Preset   *slider.Preset
	Pipeline *sd.Pipeline
	Net      *lora.Network

	// CondCached tells that the text conditioning came from the run folder's cache (CondCacheFile).
	CondCached bool

	sampleCond, sampleNeg *sd.Conditioning
	log                   io.Writer
	plan                  *Plan // what the run derives from its preset
}

func (r *Run) logf(format string, args ...any) {
	if r.log != nil {
		fmt.Fprintf(r.log, format+"\n", args...)
	}
}

// Plan is what a run derives from its preset before any I/O: the normalised preset (with the
// defaults it owns filled in: the sample prompts), its prompt groups, the weights' dtype, the run
// folder, every prompt whose conditioning the run needs, the optimizer and learning-rate schedule,
// the adapter's initialisation, and whether the evaluation runs after training.
type Plan struct {
	Preset    *slider.Preset
	Groups    [][]slider.Entry
	DType     dtypes.DType
	OutDir    string
	Prompts   []string
	Optimizer OptimizerConfig
	Schedule  ScheduleConfig
	UpInit    string // adapter up-projection init: zero | orthonormal
	EvalAfter bool
}

// NewPlan plans a run of p (pure: it reads no file and loads nothing). p is normalised in place.
func NewPlan(p *slider.Preset, opts Options) (*Plan, error) {
	if err := p.Normalize(); err != nil {
		return nil, err
	}
	groups, err := p.Groups()
	if err != nil {
		return nil, err
	}
	if e := p.Eval; e.Kind != "" { // checked now: a typo must not fail only after training
		if err := evalpkg.CheckNames(e.Kind, e.Target, e.OffTarget, e.Attribute, e.Value); err != nil {
			return nil, fmt.Errorf("preset %s: eval.%w", p.File(), err)
		}
	}
	plan := &Plan{Preset: p, Groups: groups, DType: dtypes.Float32, OutDir: opts.OutDir, UpInit: "zero",
		EvalAfter: p.Eval.Kind != "" && !opts.SkipEval}
	if p.Train.DType == "bfloat16" {
		plan.DType = dtypes.BFloat16
	}
	if plan.OutDir == "" {
		plan.OutDir = filepath.Join(p.Output.Dir, p.Output.Name)
	}
	if p.Network.Init == "orthonormal" {
		plan.UpInit = "orthonormal"
	}
	if sampling(p) && len(p.Sample.Prompts) == 0 { // default: each entry's target prompt
		seen := map[string]bool{}
		for _, g := range groups {
			for _, e := range g {
				if !seen[e.Target] {
					seen[e.Target] = true
					p.Sample.Prompts = append(p.Sample.Prompts, e.Target)
				}
			}
		}
	}
	plan.Prompts = p.UniquePrompts() // the entries' prompts, and the sample prompts when sampling
	if plan.Optimizer, err = DefaultOptimizerConfig(p.Train.Optimizer); err != nil {
		return nil, err
	}
	if len(p.Train.Betas) == 2 {
		plan.Optimizer.Beta1, plan.Optimizer.Beta2 = p.Train.Betas[0], p.Train.Betas[1]
	}
	if p.Train.Eps > 0 {
		plan.Optimizer.Eps = p.Train.Eps
	}
	if p.Train.WeightDecay != nil {
		plan.Optimizer.WeightDecay = *p.Train.WeightDecay
	}
	plan.Optimizer.Momentum = p.Train.Momentum
	plan.Schedule = ScheduleConfig{Name: p.Train.LRScheduler, BaseLR: p.Train.LR, MinLR: p.Train.MinLR,
		WarmupSteps: p.Train.WarmupSteps, TotalSteps: p.Train.Steps}
	return plan, nil
}

// Setup loads the model a preset names, caches the text conditioning of every prompt (then frees
// the text encoders), resolves and initialises the adapter, and compiles nothing yet: the step and
// denoise graphs compile on their first use, once per shape.
func Setup(p *slider.Preset, opts Options) (*Run, error) {
	plan, err := NewPlan(p, opts)
	if err != nil {
		return nil, err
	}
	r := &Run{Preset: p, log: opts.Log, plan: plan}
	dir, err := modelDir(p, opts)
	if err != nil {
		return nil, err
	}
	conds, err := r.loadConditioning(plan, dir, opts)
	if err != nil {
		return nil, err
	}
	vars, params, err := r.setupAdapter(plan)
	if err != nil {
		return nil, err
	}
	opt, err := NewOptimizer(plan.Optimizer)
	if err != nil {
		return nil, err
	}
	lr, err := NewSchedule(plan.Schedule)
	if err != nil {
		return nil, fmt.Errorf("preset %s: train.lr_scheduler: %w", p.File(), err)
	}
	if err := r.buildLoop(plan, conds, vars, params, opt, lr); err != nil {
		return nil, err
	}
	if sampling(p) {
		r.OnSample = r.sample
	}
	return r, nil
}

// loadConditioning loads the pipeline and the text conditioning of every prompt (docs/ALGORITHMS.md
// notation: E[p]): from the run folder's cache when it holds every prompt for this model and these
// settings — the text encoders are then not even loaded — else encoded and cached for the next run
// or cell. The text encoders are freed unless the evaluation after training needs them.
func (r *Run) loadConditioning(plan *Plan, dir string, opts Options) (map[string]CondTensors, error) {
	p := plan.Preset
	cachePath := filepath.Join(plan.OutDir, CondCacheFile)
	cacheKey, err := condCacheKey(dir, map[string]string{"variant": p.Model.Variant, "hidden_state": p.Model.HiddenState,
		"dtype": plan.DType.String(), "tokenizer": opts.Tokenizer})
	if err != nil {
		return nil, err
	}
	conds, cached, why := loadCondCache(cachePath, cacheKey, plan.Prompts)
	if !cached && why != "" {
		r.logf("text conditioning cache %s not used (%s): encoding again", cachePath, why)
	}
	pipe, err := sd.LoadPipeline(dir, sd.PipelineOptions{Backend: opts.Backend, DType: plan.DType, Variant: p.Model.Variant,
		Tokenizer: opts.Tokenizer, SkipVAE: !sampling(p) && !plan.EvalAfter, SkipTextEncoders: cached && !plan.EvalAfter})
	if err != nil {
		return nil, err
	}
	r.Pipeline = pipe
	sdxl := pipe.Kind == sd.KindSDXL
	if k := p.Model.Kind; k != "" && k != "auto" && k != pipe.Kind {
		return nil, fmt.Errorf("preset %s: model.kind is %s but %s is a %s model", p.File(), k, dir, pipe.Kind)
	}
	if p.Model.HiddenState == "last" && sdxl {
		return nil, fmt.Errorf("preset %s: model.hidden_state last is not supported for SDXL (diffusers and the anchors use the penultimate layer)", p.File())
	}
	if cached {
		r.CondCached = true
		r.logf("text conditioning of %d prompts read from %s", len(plan.Prompts), cachePath)
	} else {
		if conds, err = encodePrompts(pipe, plan.Prompts, p.Model.HiddenState == "penultimate" && !sdxl); err != nil {
			return nil, err
		}
		if err := saveCondCache(cachePath, cacheKey, conds); err != nil {
			return nil, fmt.Errorf("train: caching the text conditioning: %w", err)
		}
	}
	if sampling(p) {
		if r.sampleCond, err = conditioningOf(conds, p.Sample.Prompts); err != nil {
			return nil, err
		}
		if r.sampleNeg, err = conditioningOf(conds, []string{p.Sample.NegativePrompt}); err != nil {
			return nil, err
		}
	}
	if !plan.EvalAfter && len(pipe.TextEncoders) > 0 { // the evaluation encodes its own prompts after training
		if err := pipe.FreeTextEncoders(); err != nil {
			return nil, err
		}
	}
	return conds, nil
}

// encodePrompts encodes prompts with the pipeline's text encoders (clipSkip: SD1.5's penultimate
// hidden state).
func encodePrompts(pipe *sd.Pipeline, prompts []string, clipSkip bool) (map[string]CondTensors, error) {
	encode := sd.EncodeOptions{}
	if clipSkip {
		encode.ClipSkip = 1
	}
	cond, err := pipe.EncodePrompts(prompts, encode)
	if err != nil {
		return nil, err
	}
	conds := make(map[string]CondTensors, len(prompts))
	for i, prompt := range prompts {
		row, err := cond.Rows(i)
		if err != nil {
			return nil, err
		}
		conds[prompt] = CondTensors{Hidden: row.Hidden, TextEmbeds: row.Pooled}
	}
	return conds, nil
}

// setupAdapter merges the preset's base LoRAs into the frozen UNet, then resolves and initialises
// the adapter: its variables and the trainable ones with their lr scales.
func (r *Run) setupAdapter(plan *Plan) ([]*gctx.Variable, []Param, error) {
	p, pipe := plan.Preset, r.Pipeline
	decl, err := weights.Declared(pipe.UNet.Declare)
	if err != nil {
		return nil, nil, err
	}
	for i, ml := range p.Model.MergeLoRAs {
		path := ml.Path
		if !filepath.IsAbs(path) && !fileExists(path) && p.File() != "" {
			path = filepath.Join(filepath.Dir(p.File()), path)
		}
		loaded, err := lora.LoadKohya(path, lora.Base{Component: "unet", Declared: decl})
		if err != nil {
			return nil, nil, fmt.Errorf("preset %s: model.merge_loras[%d]: %w", p.File(), i, err)
		}
		base := loaded.Network("unet")
		if base == nil {
			return nil, nil, fmt.Errorf("preset %s: model.merge_loras[%d]: %s holds no UNet module", p.File(), i, path)
		}
		if err := lora.Merge(pipe.Ctx, "/unet", base, loaded.Weights["unet"], ml.Strength); err != nil {
			return nil, nil, fmt.Errorf("preset %s: model.merge_loras[%d]: %w", p.File(), i, err)
		}
		r.logf("merged %s (strength %g) into the base UNet", path, ml.Strength)
	}
	net, err := lora.Resolve("unet", decl, p.Network.LoRATargets())
	if err != nil {
		return nil, nil, fmt.Errorf("preset %s: network: %w", p.File(), err)
	}
	r.Net = net
	if err := net.Init(pipe.Ctx, lora.InitOptions{Seed: uint64(p.Train.Seed), UpInit: plan.UpInit}); err != nil {
		return nil, nil, err
	}
	vars, err := net.Variables(pipe.Ctx)
	if err != nil {
		return nil, nil, err
	}
	var params []Param
	for i, v := range vars {
		if v.Trainable {
			params = append(params, Param{Var: v, LRScale: net.Modules[i/2].LRScale})
		}
	}
	return vars, params, nil
}

// buildLoop builds the partial-denoise scheduler and t*, the step, evaluation and denoise graphs
// (compiled on first use) and the loop over the preset's entries.
func (r *Run) buildLoop(plan *Plan, conds map[string]CondTensors, vars []*gctx.Variable, params []Param, opt Optimizer, lr func(step int) float64) error {
	p, pipe := plan.Preset, r.Pipeline
	sdxl := pipe.Kind == sd.KindSDXL
	sched, tStar, err := denoiseScheduler(p, pipe)
	if err != nil {
		return err
	}
	ks, err := denoiseKs(p, tStar)
	if err != nil {
		return err
	}
	d := &Denoiser{UNet: pipe.UNet, Ctx: pipe.Ctx.At("unet"), DType: pipe.DType}
	adapters := func(m *Node) nn.Adapter { return r.Net.Adapter(pipe.Ctx, "/unet", m) }
	lossCfg := LossConfig{LossType: p.Train.LossType, HuberC: p.Train.HuberC, MinSNRGamma: p.Train.MinSNRGamma,
		VPrediction: sched.Config().PredictionType == "v_prediction", TargetNorm: p.TargetNorm, AlphasCumprod: sched.AlphasCumprod()}
	step, err := NewStepGraph(pipe.Backend, pipe.Ctx, d, sdxl, adapters, params, opt, lossCfg, p.Train.MaxGradNorm)
	if err != nil {
		return err
	}
	eval, err := NewStepGraph(pipe.Backend, pipe.Ctx, d, sdxl, adapters, nil, nil, lossCfg, 0)
	if err != nil {
		return err
	}
	var denoiseAdapters sd.AdapterFactory
	if *p.DenoiseWithAdapter {
		denoiseAdapters = adapters
	}
	denoise, err := NewDenoiseGraph(pipe.Backend, pipe.Ctx, d, sdxl, sched, *p.DenoiseGuidance, denoiseAdapters)
	if err != nil {
		return err
	}
	trainGroups, err := loopEntries(plan, pipe.LatentScale(), sdxl)
	if err != nil {
		return err
	}
	hash := sha256.Sum256([]byte(p.JSON()))
	r.Loop = &Loop{
		Backend: pipe.Backend, Ctx: pipe.Ctx,
		Groups: trainGroups, Conds: conds, LatentChannels: pipe.UNet.Config.InChannels, SDXL: sdxl,
		Sched: sched, Ks: ks, TStar: tStar,
		DenoiseWithAdapter: *p.DenoiseWithAdapter, NoiseOffset: p.Train.NoiseOffset,
		MultiresIterations: p.Train.MultiresNoiseIterations, MultiresDiscount: p.Train.MultiresNoiseDiscount,
		HuberC: p.Train.HuberC, HuberScale: p.Train.HuberScale,
		Denoise: denoise, Step: step, Eval: eval,
		Adapter:        vars,
		OptimizerState: func() []*gctx.Variable { return opt.StateVariables(pipe.Ctx) },
		LR:             lr, RNG: NewRNG(uint64(p.Train.Seed)),
		Steps: p.Train.Steps, CheckpointEvery: p.Train.CheckpointEvery, KeepCheckpoints: p.Train.KeepCheckpoints,
		OutDir: plan.OutDir, PresetHash: hex.EncodeToString(hash[:]),
		SampleEvery: p.Sample.Every,
	}
	if p.Train.LossType == "huber" || p.Train.LossType == "smooth_l1" {
		r.HuberSchedule = p.Train.HuberSchedule
	}
	return nil
}

// loopEntries turns the plan's prompt groups into the loop's entries at the model's latent scale.
func loopEntries(plan *Plan, latentScale int, sdxl bool) ([][]Entry, error) {
	p := plan.Preset
	var trainGroups [][]Entry
	for _, g := range plan.Groups {
		var tg []Entry
		for _, e := range g {
			if e.DynamicResolution || e.DynamicCrops {
				return nil, fmt.Errorf("preset %s: %s: dynamic_resolution and dynamic_crops are not supported yet by the trainer; "+
					"set them to false (or list several resolutions)", p.File(), e.Source)
			}
			h, w := e.Resolution[0], e.Resolution[1]
			if h%latentScale != 0 || w%latentScale != 0 {
				return nil, fmt.Errorf("preset %s: %s: resolution %dx%d is not a multiple of the model's latent scale %d", p.File(), e.Source, h, w, latentScale)
			}
			te := Entry{Target: e.Target, Positive: e.Positive, Neutral: e.Neutral, Unconditional: e.Unconditional,
				SignedGuidance: e.SignedGuidance(), Multiplier: e.Multiplier, Weight: e.Weight, BatchSize: e.BatchSize,
				LatentH: h / latentScale, LatentW: w / latentScale}
			if sdxl {
				te.TimeIDs = sd.TimeIDs(h, w, 0, 0, h, w)
			}
			tg = append(tg, te)
		}
		trainGroups = append(trainGroups, tg)
	}
	return trainGroups, nil
}

// sampling tells whether the preset samples during training.
func sampling(p *slider.Preset) bool { return p.Sample.Every > 0 }

// modelDir resolves model.name_or_path: the embedded toy world when empty, a local folder (also
// relative to the preset's folder, as presets are shared with their files), or a hub id.
func modelDir(p *slider.Preset, opts Options) (string, error) {
	ref := p.Model.NameOrPath
	if ref != "" && hub.IsLocal(ref) && p.File() != "" && !filepath.IsAbs(ref) {
		if _, err := os.Stat(ref); err != nil {
			if alt := filepath.Join(filepath.Dir(p.File()), ref); fileExists(alt) {
				return alt, nil
			}
		}
	}
	dir, err := sd.ResolveModel(ref, p.Model.Variant, opts.Log)
	if err != nil && ref == "" {
		return "", fmt.Errorf("preset %s: model.name_or_path is empty and %w", p.File(), err)
	}
	return dir, err
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// denoiseScheduler builds the partial-denoise scheduler (docs/ALGORITHMS.md §1 steps 1 and 4, §3) with
// SetTimesteps(N) done, and the map k → t* of the preset's mode.
func denoiseScheduler(p *slider.Preset, pipe *sd.Pipeline) (schedulers.Scheduler, func(int) int64, error) {
	class := map[string]string{"ddim": schedulers.ClassDDIM, "ddpm": schedulers.ClassDDPM, "euler": schedulers.ClassEulerDiscrete}[p.DenoiseScheduler]
	var cfg *schedulers.Config
	var err error
	if p.DenoiseSchedulerConfig == "anchor" {
		// How LECO and sd-scripts build it: SD's betas, diffusers' other defaults.
		if cfg, err = schedulers.DefaultConfig(class); err != nil {
			return nil, nil, err
		}
		cfg.BetaStart, cfg.BetaEnd, cfg.BetaSchedule, cfg.NumTrainTimesteps = 0.00085, 0.012, "scaled_linear", 1000
		cfg.ClipSample = false
		cfg.PredictionType = "epsilon"
	} else {
		base := *pipe.SchedulerConfig
		base.ClassName = class
		if cfg, err = schedulers.ParseConfigAs(mustJSON(&base), class); err != nil {
			return nil, nil, err
		}
	}
	if p.Model.PredictionType != "" {
		cfg.PredictionType = p.Model.PredictionType
	}
	if p.Model.RescaleBetasZeroSNR != nil {
		cfg.RescaleBetasZeroSNR = *p.Model.RescaleBetasZeroSNR
	}
	if p.TimestepSpacing != "" {
		cfg.TimestepSpacing = p.TimestepSpacing
	}
	sched, err := schedulers.New(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("preset %s: partial-denoise scheduler: %w", p.File(), err)
	}
	n := p.MaxDenoisingSteps
	if err := sched.SetTimesteps(n); err != nil {
		return nil, nil, err
	}
	stepsN := append([]float64(nil), sched.Timesteps()...)
	if p.Mode == slider.ModeLECO {
		// LECO: t* = timesteps_1000[int(k·1000/N)] (off by 19 from where the latents are, reproduced).
		full, err := schedulers.New(cfg)
		if err != nil {
			return nil, nil, err
		}
		if err := full.SetTimesteps(cfg.NumTrainTimesteps); err != nil {
			return nil, nil, err
		}
		ts1000 := full.Timesteps()
		return sched, func(k int) int64 { return int64(ts1000[k*cfg.NumTrainTimesteps/n]) }, nil
	}
	// LOBA: the timestep the latents reached after k steps.
	return sched, func(k int) int64 { return int64(stepsN[k]) }, nil
}

// sample writes the sample grid of the current adapter: rows = prompts, columns = strengths.
func (r *Run) sample(step int) error {
	p := r.Preset
	r.Pipeline.SetAdapter(func(m *Node) nn.Adapter { return r.Net.Adapter(r.Pipeline.Ctx, "/unet", m) })
	res := p.Train.Resolution
	if res.IsZero() && len(r.Groups) > 0 {
		e := r.Groups[0][0]
		res = slider.Resolution{e.LatentH * r.Pipeline.LatentScale(), e.LatentW * r.Pipeline.LatentScale()}
	}
	path := filepath.Join(r.OutDir, "samples", fmt.Sprintf("step-%06d.png", step))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return r.Pipeline.SaveGrid(path, sd.SampleRequest{Cond: r.sampleCond, NegativeCond: r.sampleNeg,
		Height: res[0], Width: res[1], Steps: p.Sample.Steps, GuidanceScale: p.Sample.GuidanceScale,
		Seed: uint64(p.Sample.Seed), Strengths: p.Sample.Strengths, StartNoise: float64(p.Sample.StartNoise)})
}

// mustJSON marshals a value that always marshals (a config struct).
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// denoiseKs lists the k (partial-denoise steps) a run draws from: [min_denoising_steps, N−1], keeping
// only those whose t* is inside timestep_range when one is given.
func denoiseKs(p *slider.Preset, tStar func(int) int64) ([]int, error) {
	var ks []int
	var all []int64
	for k := *p.MinDenoisingSteps; k < p.MaxDenoisingSteps; k++ {
		t := tStar(k)
		all = append(all, t)
		if r := p.TimestepRange; len(r) == 2 && (t < int64(r[0]) || t > int64(r[1])) {
			continue
		}
		ks = append(ks, k)
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("preset %s: timestep_range %v holds none of the partial denoise's timesteps %v "+
			"(max_denoising_steps %d, min_denoising_steps %d); widen it or raise max_denoising_steps",
			p.File(), p.TimestepRange, all, p.MaxDenoisingSteps, *p.MinDenoisingSteps)
	}
	return ks, nil
}

// conditioningOf stacks the cached conditionings of prompts into one sd.Conditioning (row i =
// prompts[i]).
func conditioningOf(conds map[string]CondTensors, prompts []string) (*sd.Conditioning, error) {
	rows := make([]CondTensors, len(prompts))
	for i, p := range prompts {
		c, ok := conds[p]
		if !ok {
			return nil, fmt.Errorf("train: prompt %q has no cached conditioning", p)
		}
		rows[i] = c
	}
	hidden, err := concatBatch(rows, func(c CondTensors) *tensors.Tensor { return c.Hidden })
	if err != nil {
		return nil, err
	}
	out := &sd.Conditioning{Hidden: hidden}
	if rows[0].TextEmbeds != nil { // SDXL; the time ids are the sampler's, per resolution
		if out.Pooled, err = concatBatch(rows, func(c CondTensors) *tensors.Tensor { return c.TextEmbeds }); err != nil {
			return nil, err
		}
	}
	return out, nil
}
