package train

// NewRun's steps: the model and the text conditioning, the adapter, the loop.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	gctx "github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/hub"
	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/schedulers"
	"github.com/loba-dev/loba/models/sd"
)

// loadConditioning loads the pipeline and the text conditioning of every prompt (docs/ALGORITHMS.md
// notation: E[p]): from the run folder's cache when it holds every prompt for this model and these
// settings — the text encoders are then not even loaded — else encoded and cached for the next run
// or cell. The text encoders are freed unless the evaluation after training needs them.
func (r *Run) loadConditioning(dir string) (map[string]sd.Conditioning, error) {
	plan, p, opts := r.Plan, r.Plan.Preset, r.Plan.Options
	cachePath := r.Dir.CondCache()
	merged, err := mergeStamps(p)
	if err != nil {
		return nil, err
	}
	settings := map[string]string{"variant": p.Model.Variant, "hidden_state": p.Model.HiddenState,
		"dtype": plan.DType.String(), "tokenizer": opts.Tokenizer}
	if merged != "" { // text-encoder modules merged into the encoders change every encoding
		settings["merge_loras"] = merged
	}
	cacheKey, err := condCacheKey(dir, settings)
	if err != nil {
		return nil, err
	}
	conds, cached, why := loadCondCache(cachePath, cacheKey, plan.Prompts)
	// With a text-encoder adapter the encoders stay: the adapter's prediction encodes its prompt
	// in the train step (the cache still holds the frozen references' conditioning).
	textTrained := p.Network.TextEncoder.Enabled()
	if !cached && why != "" {
		r.logf("text conditioning cache %s not used (%s): encoding again", cachePath, why)
	}
	if r.Pipeline, err = sd.LoadPipeline(dir, sd.PipelineOptions{Backend: opts.Backend, DType: plan.DType, Variant: p.Model.Variant,
		Tokenizer: opts.Tokenizer, SkipVAE: !sampling(p) && !plan.EvalAfter, SkipTextEncoders: cached && !plan.EvalAfter && !textTrained}); err != nil {
		return nil, err
	}
	if err := checkModelKind(p, dir, r.Pipeline.Kind); err != nil {
		return nil, err
	}
	// The base LoRAs are merged before any prompt is encoded: the conditioning, cached or not, is
	// the merged encoders' (the text encoders' weights are not loaded on a cache hit: nothing to merge).
	if err := r.mergeLoRAs(!(cached && !plan.EvalAfter && !textTrained)); err != nil {
		return nil, err
	}
	if cached {
		r.CondCached = true
		r.logf("text conditioning of %d prompts read from %s", len(plan.Prompts), cachePath)
	} else {
		if conds, err = encodePrompts(r.Pipeline, plan.Prompts, clipSkipOf(p, r.Pipeline)); err != nil {
			return nil, err
		}
		if err := saveCondCache(cachePath, cacheKey, conds); err != nil {
			return nil, fmt.Errorf("train: caching the text conditioning: %w", err)
		}
	}
	if err := r.keepSampleConditioning(conds); err != nil {
		return nil, err
	}
	if !plan.EvalAfter && !textTrained && len(r.Pipeline.TextEncoders) > 0 { // the evaluation encodes its own prompts after training
		if err := r.Pipeline.FreeTextEncoders(); err != nil {
			return nil, err
		}
	}
	return conds, nil
}

// checkModelKind checks model.kind and model.hidden_state against the loaded model's kind.
func checkModelKind(p *slider.Preset, dir, kind string) error {
	if k := p.Model.Kind; k != "" && k != "auto" && k != kind {
		return fmt.Errorf("preset %s: model.kind is %s but %s is a %s model", p.File(), k, dir, kind)
	}
	if p.Model.HiddenState == "last" && kind == sd.KindSDXL {
		return fmt.Errorf("preset %s: model.hidden_state last is not supported for SDXL (diffusers and the anchors use the penultimate layer)", p.File())
	}
	return nil
}

// keepSampleConditioning keeps the sample prompts' and the negative prompt's conditioning when
// the run samples.
func (r *Run) keepSampleConditioning(conds map[string]sd.Conditioning) error {
	p := r.Plan.Preset
	if !sampling(p) {
		return nil
	}
	var err error
	if r.sampleCond, err = conditioningOf(conds, p.Sample.Prompts); err != nil {
		return err
	}
	r.sampleNeg, err = conditioningOf(conds, []string{p.Sample.NegativePrompt})
	return err
}

// clipSkipOf is the encoders' clip skip for model.hidden_state: 1 for SD1.x's penultimate layer,
// else 0 (SDXL's penultimate layer is its default).
func clipSkipOf(p *slider.Preset, pipe *sd.Pipeline) int {
	if p.Model.HiddenState == "penultimate" && pipe.Kind != sd.KindSDXL {
		return 1
	}
	return 0
}

// encodePrompts encodes prompts with the pipeline's text encoders at clip skip clipSkip.
func encodePrompts(pipe *sd.Pipeline, prompts []string, clipSkip int) (map[string]sd.Conditioning, error) {
	encode := sd.EncodeOptions{ClipSkip: clipSkip}
	cond, err := pipe.EncodePrompts(prompts, encode)
	if err != nil {
		return nil, err
	}
	conds := make(map[string]sd.Conditioning, len(prompts))
	for i, prompt := range prompts {
		row, err := sd.ConditioningRows(cond, i)
		if err != nil {
			return nil, err
		}
		conds[prompt] = *row
	}
	return conds, nil
}

// setupAdapter resolves and initialises the adapter (the base LoRAs are merged by then:
// loadConditioning) — the UNet's network and, with network.text_encoder, one per text encoder — its
// variables and the trainable ones with their lr scales.
func (r *Run) setupAdapter() ([]*gctx.Variable, []Param, error) {
	p, pipe := r.Plan.Preset, r.Pipeline
	decl, err := pipe.UNet.Declared()
	if err != nil {
		return nil, nil, err
	}
	net, err := resolveUNet(p, decl)
	if err != nil {
		return nil, nil, err
	}
	r.Net = net
	if len(p.Network.LayerMultipliers) > 0 { // applied in training, written into the alphas on save
		if err := net.SetLayerMultipliers(p.Network.LayerMultipliers); err != nil {
			return nil, nil, fmt.Errorf("preset %s: network.layer_multipliers: %w", p.File(), err)
		}
	}
	nets := []*lora.Network{net}
	lrScales := []float64{1}
	if te := p.Network.TextEncoder; te.Enabled() {
		if r.TextNets, err = resolveTextEncoders(p, pipe); err != nil {
			return nil, nil, err
		}
		for range r.TextNets {
			lrScales = append(lrScales, *te.LRScale)
		}
		nets = append(nets, r.TextNets...)
	}
	var vars []*gctx.Variable
	var params []Param
	for i, n := range nets {
		if err := n.Init(pipe.Ctx, lora.InitOptions{Seed: uint64(p.Train.Seed) + uint64(i), UpInit: r.Plan.UpInit}); err != nil {
			return nil, nil, err
		}
		nv, err := n.Variables(pipe.Ctx)
		if err != nil {
			return nil, nil, err
		}
		for j, v := range nv {
			if v.Trainable {
				params = append(params, Param{Var: v, LRScale: n.Modules[j/2].LRScale * lrScales[i]})
			}
		}
		vars = append(vars, nv...)
	}
	return vars, params, nil
}

// resolveUNet resolves the UNet's network (no module with network.targets none).
func resolveUNet(p *slider.Preset, decl map[string]shapes.Shape) (*lora.Network, error) {
	if p.Network.Targets == lora.PresetNone {
		return &lora.Network{Component: lora.UNet}, nil
	}
	net, err := lora.Resolve(lora.UNet, decl, p.Network.LoRATargets())
	if err != nil {
		return nil, fmt.Errorf("preset %s: network: %w", p.File(), err)
	}
	return net, nil
}

// resolveTextEncoders resolves network.text_encoder on each of the pipeline's text encoders
// (text_encoder, and SDXL's text_encoder_2).
func resolveTextEncoders(p *slider.Preset, pipe *sd.Pipeline) ([]*lora.Network, error) {
	if len(pipe.TextEncoders) == 0 {
		return nil, fmt.Errorf("preset %s: network.text_encoder: the model's text encoders are not loaded", p.File())
	}
	var out []*lora.Network
	for i, te := range pipe.TextEncoders {
		comp := sd.TextEncoderScope(i)
		decl, err := te.Declared()
		if err != nil {
			return nil, err
		}
		net, err := lora.Resolve(comp, decl, p.Network.TextEncoder.LoRATargets())
		if err != nil {
			return nil, fmt.Errorf("preset %s: network.text_encoder: %w", p.File(), err)
		}
		out = append(out, net)
	}
	return out, nil
}

// mergePath is a model.merge_loras path, also tried next to the preset when relative.
func mergePath(p *slider.Preset, ml slider.MergeLoRA) string {
	path := ml.Path
	if !filepath.IsAbs(path) && !fileExists(path) && p.File() != "" {
		path = filepath.Join(filepath.Dir(p.File()), path)
	}
	return path
}

// mergeLoRA merges the modules of one of model.merge_loras that belong to the components (the UNet,
// the text encoders) into their frozen weights. The file may hold modules of the UNet and of every
// text encoder of the model (kohya lora_unet_, lora_te_, lora_te1_, lora_te2_); a key that fits none
// is an error.
func (r *Run) mergeLoRA(bases []lora.Base, ml slider.MergeLoRA, components ...string) error {
	path := mergePath(r.Plan.Preset, ml)
	loaded, err := lora.LoadKohya(path, bases...)
	if err != nil {
		return err
	}
	if len(loaded.Networks) == 0 {
		return fmt.Errorf("%s holds no module", path)
	}
	for _, comp := range components {
		net := loaded.Network(comp)
		if net == nil {
			continue
		}
		if err := lora.Merge(r.Pipeline.Ctx, "/"+comp, net, loaded.Weights[comp], ml.Strength); err != nil {
			return err
		}
		r.logf("merged %s's %s modules (strength %g) into the base %s", path, comp, ml.Strength, comp)
	}
	return nil
}

// mergeLoRAs merges model.merge_loras into the frozen UNet and, when their weights are loaded
// (textLoaded), the text encoders.
func (r *Run) mergeLoRAs(textLoaded bool) error {
	p := r.Plan.Preset
	if len(p.Model.MergeLoRAs) == 0 {
		return nil
	}
	bases, err := r.Pipeline.LoRABases()
	if err != nil {
		return err
	}
	components := []string{lora.UNet}
	if textLoaded {
		components = append(components, lora.TextEncoder, lora.TextEncoder2)
	}
	for i, ml := range p.Model.MergeLoRAs {
		if err := r.mergeLoRA(bases, ml, components...); err != nil {
			return fmt.Errorf("preset %s: model.merge_loras[%d]: %w", p.File(), i, err)
		}
	}
	return nil
}

// mergeStamps identifies the model.merge_loras files (path, size, modification time, strength), for
// the conditioning cache's key: their text-encoder modules change the encodings.
func mergeStamps(p *slider.Preset) (string, error) {
	var stamps []string
	for i, ml := range p.Model.MergeLoRAs {
		path := mergePath(p, ml)
		info, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("preset %s: model.merge_loras[%d]: %w", p.File(), i, err)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", err
		}
		stamps = append(stamps, fmt.Sprintf("%s:%d:%d:%g", abs, info.Size(), info.ModTime().UnixNano(), ml.Strength))
	}
	return strings.Join(stamps, ";"), nil
}

// buildLoop builds the partial-denoise scheduler and t*, the step, evaluation and denoise graphs
// (compiled on first use) and the loop over the preset's entries.
func (r *Run) buildLoop(dir string, conds map[string]sd.Conditioning, vars []*gctx.Variable, params []Param, opt Optimizer, lr func(step int) float64) (*loop, error) {
	p, pipe := r.Plan.Preset, r.Pipeline
	draw, err := drawSettingsOf(p, pipe)
	if err != nil {
		return nil, err
	}
	seqLen := 0
	for _, c := range conds {
		seqLen = c.Hidden.Shape().Dim(1)
		break
	}
	concept := func(e slider.Entry) ([]float32, error) {
		if len(pipe.Tokenizers) == 0 {
			return nil, fmt.Errorf("train: concept_mask: the model has no tokenizer")
		}
		return conceptTokens(p, e, pipe.Tokenizers[0], seqLen)
	}
	groups, err := loopEntries(r.Plan, pipe.LatentScale(), pipe.Kind == sd.KindSDXL, concept)
	if err != nil {
		return nil, err
	}
	region := regionTermsFor(p, r.Plan.Groups)
	graphs, err := r.buildGraphs(draw.sched, draw.genSched, params, opt, region)
	if err != nil {
		return nil, err
	}
	fn, err := trainedFunction(p)
	if err != nil {
		return nil, err
	}
	traj, err := r.trajectoriesFor(dir, draw, fn)
	if err != nil {
		return nil, err
	}
	return &loop{
		ctx: pipe.Ctx, groups: groups, region: region, seqLen: seqLen, conds: conds, latentChannels: pipe.UNet.Config.InChannels,
		draw: draw, graphs: graphs, traj: traj, logf: r.logf, tokenIDs: r.targetTokenIDs(),
		denoiseText:    len(r.TextNets) > 0 && *p.DenoiseWithAdapter,
		adapter:        vars,
		optimizerState: func() []*gctx.Variable { return opt.StateVariables(pipe.Ctx) },
		lr:             lr, rng: NewRNG(uint64(p.Train.Seed)),
		steps: p.Train.Steps,
		ckpt: checkpointing{root: r.Dir.Checkpoints(), every: p.Train.CheckpointEvery, keep: p.Train.KeepCheckpoints,
			presetHash: presetHash(p), function: fn},
	}, nil
}

// trajectoriesFor sets up the fast mode's trajectory cache or x₀ pool (trajcache.go); nil when the
// preset uses neither. function is the preset's trainedFunction (part of the file's key).
func (r *Run) trajectoriesFor(dir string, draw drawSettings, function map[string]string) (*trajectories, error) {
	p := r.Plan.Preset
	c := &trajectories{gen: -1, path: r.Dir.Trajectories(), seed: uint64(p.Train.Seed)}
	switch {
	case p.Denoise == slider.DenoiseNone:
		c.pool, c.size, c.steps = true, p.X0Pool.Size, len(draw.genSched.Timesteps())
		c.poolNeutral = p.X0Pool.Prompt == slider.PoolNeutral
		c.uniformT = p.X0Pool.Timesteps == slider.PoolUniformTimesteps
	case p.TrajectoryCache.Size > 0:
		maxK := 0
		for _, k := range draw.ks {
			maxK = max(maxK, k)
		}
		for _, w := range draw.windows {
			for _, k := range w.Ks {
				maxK = max(maxK, k)
			}
		}
		c.size, c.refreshEvery, c.steps = p.TrajectoryCache.Size, p.TrajectoryCache.RefreshEvery, maxK
	default:
		return nil, nil
	}
	var err error
	if c.key, err = trajectoryKey(function, dir); err != nil {
		return nil, err
	}
	return c, nil
}

// targetTokenIDs tokenizes the adapter's prompts for the train step when text-encoder networks
// train (nil otherwise).
func (r *Run) targetTokenIDs() func(prompts []string) ([]*tensors.Tensor, error) {
	if len(r.TextNets) == 0 {
		return nil
	}
	return r.Pipeline.TokenIDs
}

// presetHash is the sha256 of p's JSON (hex), recorded in checkpoints.
func presetHash(p *slider.Preset) string {
	hash := sha256.Sum256([]byte(p.JSON()))
	return hex.EncodeToString(hash[:])
}

// drawSettingsOf builds the partial-denoise scheduler, t* and the k drawn from, and the preset's
// noise and huber settings.
func drawSettingsOf(p *slider.Preset, pipe *sd.Pipeline) (drawSettings, error) {
	sched, tStar, err := denoiseScheduler(p, pipe.SchedulerConfig)
	if err != nil {
		return drawSettings{}, err
	}
	ks, err := denoiseKs(p, tStar)
	if err != nil {
		return drawSettings{}, err
	}
	windows, err := scheduleWindows(p, tStar)
	if err != nil {
		return drawSettings{}, err
	}
	genSched := sched
	if p.Denoise == slider.DenoiseNone && p.X0Pool.Steps != p.MaxDenoisingSteps { // the pool's own sampler
		if genSched, err = schedulers.New(sched.Config()); err != nil {
			return drawSettings{}, err
		}
		if err := genSched.SetTimesteps(p.X0Pool.Steps); err != nil {
			return drawSettings{}, fmt.Errorf("preset %s: x0_pool.steps: %w", p.File(), err)
		}
	}
	numTrain := len(sched.AlphasCumprod())
	tRange := func(step int) (int, int) {
		if r := p.TimestepRangeAt(step - 1); r != nil {
			return r[0], min(r[1], numTrain-1)
		}
		return 0, numTrain - 1
	}
	d := drawSettings{sched: sched, genSched: genSched, ks: ks, windows: windows, tStar: tStar, tRange: tRange,
		denoiseWithAdapter: *p.DenoiseWithAdapter, noiseOffset: p.Train.NoiseOffset,
		multiresIterations: p.Train.MultiresNoiseIterations, multiresDiscount: p.Train.MultiresNoiseDiscount,
		huberC: p.Train.HuberC, huberScale: p.Train.HuberScale}
	if p.Train.LossType == "huber" || p.Train.LossType == "smooth_l1" {
		d.huberSchedule = p.Train.HuberSchedule
	}
	return d, nil
}

// buildGraphs prepares the train step, the loss-only evaluation graph and the partial denoise (a step
// of denoiseSched: the x₀ pool's sampler with denoise none).
func (r *Run) buildGraphs(sched, denoiseSched schedulers.Scheduler, params []Param, opt Optimizer, region regionTerms) (loopGraphs, error) {
	p, pipe := r.Plan.Preset, r.Pipeline
	mem, err := memoryOptions(p.Train, pipe)
	if err != nil {
		return loopGraphs{}, err
	}
	env := graphEnv{backend: pipe.Backend, ctx: pipe.Ctx, sdxl: pipe.Kind == sd.KindSDXL, mem: mem,
		d:        &denoiser{UNet: pipe.UNet, Ctx: pipe.Ctx.At("unet"), DType: pipe.DType},
		adapters: func(m *Node) nn.Adapter { return r.Net.Adapter(pipe.Ctx, "/unet", m) }, builds: &graphBuilds{}}
	if len(r.TextNets) > 0 {
		env.text = &textEncoding{pipe: pipe, clipSkip: clipSkipOf(p, pipe), adapters: pipe.TextAdapterOf(r.TextNets)}
	}
	lossCfg := lossConfig{LossType: p.Train.LossType, HuberC: p.Train.HuberC, MinSNRGamma: p.Train.MinSNRGamma,
		VPrediction: sched.Config().PredictionType == "v_prediction", TargetNorm: p.TargetNorm, AlphasCumprod: sched.AlphasCumprod(),
		Region: region}
	g := loopGraphs{builds: env.builds}
	if g.step, err = newStepGraph(env, lossCfg, params, opt, p.Train.MaxGradNorm); err != nil {
		return g, err
	}
	if g.eval, err = newStepGraph(env, lossCfg, nil, nil, 0); err != nil {
		return g, err
	}
	if !*p.DenoiseWithAdapter {
		env.adapters, env.text = nil, nil
	}
	g.denoise, err = newDenoiseGraph(env, denoiseSched, *p.DenoiseGuidance)
	return g, err
}

// loopEntries turns the plan's prompt groups into the loop's entries at the model's latent scale.
func loopEntries(plan *Plan, latentScale int, sdxl bool, concept func(slider.Entry) ([]float32, error)) ([][]entry, error) {
	p := plan.Preset
	var trainGroups [][]entry
	for _, g := range plan.Groups {
		var tg []entry
		for _, e := range g {
			if e.DynamicResolution || e.DynamicCrops {
				return nil, fmt.Errorf("preset %s: %s: dynamic_resolution and dynamic_crops are not supported yet by the trainer; "+
					"set them to false (or list several resolutions)", p.File(), e.Source)
			}
			h, w := e.Resolution[0], e.Resolution[1]
			if h%latentScale != 0 || w%latentScale != 0 {
				return nil, fmt.Errorf("preset %s: %s: resolution %dx%d is not a multiple of the model's latent scale %d", p.File(), e.Source, h, w, latentScale)
			}
			te := entry{Target: e.Target, Positive: e.Positive, Neutral: e.Neutral, Unconditional: e.Unconditional,
				SignedGuidance: e.SignedGuidance(), Multiplier: e.Multiplier, Weight: e.Weight, BatchSize: e.BatchSize,
				LatentH: h / latentScale, LatentW: w / latentScale}
			if sdxl {
				te.TimeIDs = sd.TimeIDs(h, w, 0, 0, h, w)
			}
			var err error
			if te.Region, err = regionOf(p, e, te.LatentH, te.LatentW, latentScale); err != nil {
				return nil, err
			}
			if te.Region.Concept, err = concept(e); err != nil {
				return nil, err
			}
			tg = append(tg, te)
		}
		anchors := anchorEntries(p, tg[0].LatentH, tg[0].LatentW, tg[0].TimeIDs)
		trainGroups = append(trainGroups, weighAnchors(tg, anchors, anchorWeight(p)))
	}
	return trainGroups, nil
}

// modelDir resolves model.name_or_path: the embedded toy world when empty, a local diffusers folder
// or .safetensors single-file checkpoint (also relative to the preset's folder, as presets are
// shared with their files), or a hub id. sd.LoadPipeline reads a single file with the configs of
// the diffusers folder holding it, else the built-in ones of its kind; pickle checkpoints (.ckpt,
// .pt, .bin) are refused.
func modelDir(p *slider.Preset, opts Options) (string, error) {
	ref := p.Model.NameOrPath
	if ref != "" && hub.IsLocal(ref) && p.File() != "" && !filepath.IsAbs(ref) {
		if _, err := os.Stat(ref); err != nil {
			if alt := filepath.Join(filepath.Dir(p.File()), ref); fileExists(alt) {
				ref = alt
			}
		}
	}
	dir, err := sd.ResolveModel(ref, p.Model.Variant, opts.Log)
	switch {
	case err != nil && ref == "":
		return "", fmt.Errorf("preset %s: model.name_or_path is empty and %w", p.File(), err)
	case err != nil:
		return "", fmt.Errorf("preset %s: model.name_or_path: %w", p.File(), err)
	}
	return dir, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// denoiseScheduler builds the partial-denoise scheduler (docs/ALGORITHMS.md §1 steps 1 and 4, §3) with
// SetTimesteps(N) done, and the map k → t* of the preset's mode. model is the model's scheduler config
// (sd.Pipeline.SchedulerConfig).
func denoiseScheduler(p *slider.Preset, model *schedulers.Config) (schedulers.Scheduler, func(int) int64, error) {
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
		base := *model
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

// conditioningOf stacks the cached conditionings of prompts into one (row i = prompts[i]).
func conditioningOf(conds map[string]sd.Conditioning, prompts []string) (*sd.Conditioning, error) {
	rows := make([]*sd.Conditioning, len(prompts))
	for i, p := range prompts {
		c, ok := conds[p]
		if !ok {
			return nil, fmt.Errorf("train: prompt %q has no cached conditioning", p)
		}
		rows[i] = &c
	}
	return sd.ConcatConditionings(rows...)
}

// realSizeParams is the UNet size from which a model is "real size": train.gradient_checkpointing
// auto turns checkpointing on and the garbage collector is tightened (tuneGC). Every SD/SDXL UNet
// (≥ 860M parameters) is far above it, the tiny fixtures and the toy world far below.
const realSizeParams = 100_000_000

// checkpointingFor resolves train.gradient_checkpointing for a UNet of unetParams parameters.
func checkpointingFor(setting string, unetParams int64) bool {
	return setting == "on" || ((setting == "auto" || setting == "") && unetParams >= realSizeParams)
}

// memoryOptions resolves train.gradient_checkpointing and train.attention for the loaded model.
func memoryOptions(t slider.Train, pipe *sd.Pipeline) (nn.MemoryOptions, error) {
	var o nn.MemoryOptions
	o.GradientCheckpointing = checkpointingFor(t.GradientCheckpointing, pipe.UNetParams())
	if t.Attention != "auto" {
		o.Attention = t.Attention
	}
	return o, nil
}
