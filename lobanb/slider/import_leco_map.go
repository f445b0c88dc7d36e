package slider

// Mapping of LECO's run config (config_util.py RootConfig, as train_lora.py uses it) onto a preset:
// every key is honoured, ignored with a warning (no effect on the result, or one LOBA does better), or
// an error (it changes the trained result and cannot be honoured, or the anchor itself stops on it).
// SCHEMA.md's importer table lists them all.

import (
	"strings"
)

// mapConfig maps LECO's run config onto p (each mapping noted where it is made).
func (imp *importer) mapConfig(cfg *lecoConfig, a anchor, p *Preset) error {
	mapLoop(a, p)
	imp.mapModel(cfg.PretrainedModel, a, p)
	if err := imp.mapNetwork(cfg.Network, a, p); err != nil {
		return err
	}
	if err := imp.mapTrain(cfg.Train, p); err != nil {
		return err
	}
	if err := imp.mapSave(cfg.Save, a, p); err != nil {
		return err
	}
	imp.mapLoggingOther(cfg, a)
	p.Sample.Every = 0 // LECO renders no samples
	return nil
}

// mapLoop sets what the anchors' training loop hard-codes: the objective, the mode and the partial
// denoise.
func mapLoop(a anchor, p *Preset) {
	// LECO / Concept Sliders: the train_lora.py loop = docs/ALGORITHMS.md §1 in mode leco. Concept Sliders'
	// prompt entries are LECO entries with the slider meaning, used as they are (objective slider_text).
	p.Objective = ObjectiveLECO
	if a == anchorConceptSliders {
		p.Objective = ObjectiveSliderText
	}
	p.Mode = ModeLECO
	p.DenoiseWithAdapter = ptr(true) // `with network:` around train_util.diffusion (multiplier 1)
	p.DenoiseGuidance = ptr(3.0)     // diffusion(..., guidance_scale=3), hard-coded
	// model_util.create_noise_scheduler builds DDIM/DDPM from scratch (scaled_linear 0.00085–0.012,
	// clip_sample false, diffusers defaults otherwise: steps_offset 0, "leading"), ignoring the model's
	// scheduler config; the prediction type comes from pretrained_model.v_pred.
	p.DenoiseSchedulerConfig = "anchor"
	p.TimestepSpacing = "leading"
	p.TargetNorm = "none"
}

// mapModel maps pretrained_model onto p.Model.
func (imp *importer) mapModel(m lecoModel, a anchor, p *Preset) {
	p.Model.NameOrPath = m.NameOrPath
	// v2 / SDXL are told apart by the model's configs (LECO: v2 picks the tokenizer and the text
	// encoder's depth, the script picks SDXL); the model's own tokenizer and text encoder are used.
	p.Model.Kind = "auto"
	p.Model.PredictionType = "epsilon"
	if m.VPred {
		p.Model.PredictionType = "v_prediction"
	}
	// LECO SD1.x/2.x encodes with text_encoder(ids)[0] (last hidden state), SDXL with hidden_states[-2].
	p.Model.HiddenState = "auto"
	if m.ClipSkip != nil {
		imp.warnAt("pretrained_model.clip_skip", "%d is parsed but not used by %s; imported as hidden_state auto (what %s encodes with)", *m.ClipSkip, a, a)
	}
}

// mapTrain maps the train section (nil: LECO's defaults) onto p.
func (imp *importer) mapTrain(t *lecoTrain, p *Preset) error {
	if t == nil {
		t = &lecoTrain{}
	}
	p.Train.Steps = deref(t.Iterations, 500)
	p.Train.LR = deref(t.LR, 1e-4)
	p.MaxDenoisingSteps = deref(t.MaxDenoisingSteps, 50)
	switch sched := strings.ToLower(strings.ReplaceAll(orDefault(t.NoiseScheduler, "ddim"), " ", "_")); sched {
	case "ddim", "ddpm":
		p.DenoiseScheduler = sched
	default:
		return imp.errAt("train.noise_scheduler", "%q is not supported; valid values: ddim, ddpm (LECO also offers lms and euler_a, which LOBA does not port)", t.NoiseScheduler)
	}
	if err := imp.mapOptimizer(t, p); err != nil {
		return err
	}
	if err := imp.mapLRScheduler(t, p); err != nil {
		return err
	}
	return imp.mapTrainPrecision(t, p)
}

// mapLRScheduler maps train.lr_scheduler: train_util.get_lr_scheduler (lr_min = lr/100 as
// train_lora.py passes it). p.Train.LR must be set.
func (imp *importer) mapLRScheduler(t *lecoTrain, p *Preset) error {
	switch s := orDefault(t.LRScheduler, "constant"); s {
	case "constant":
		p.Train.LRScheduler = "constant" // torch ConstantLR(factor 1)
	case "cosine":
		// torch CosineAnnealingLR(T_max = iterations, eta_min = lr/100) = a half cosine to lr/100.
		p.Train.LRScheduler, p.Train.MinLR = "cosine", p.Train.LR/100
	case "linear":
		return imp.errAt("train.lr_scheduler", "LECO cannot run \"linear\": its get_lr_scheduler passes torch's LinearLR a keyword it does not take (factor=0.5), so train_lora.py stops with a TypeError before the first step; valid values that train: constant, cosine (write a LOBA preset for lr_scheduler: linear)")
	case "step", "cosine_with_restarts":
		return imp.errAt("train.lr_scheduler", "%q is not supported: LECO's torch %s has no LOBA equivalent and changes every step's learning rate; valid values: constant, cosine", s,
			map[string]string{"step": "StepLR(step_size = iterations/100, gamma 0.999)", "cosine_with_restarts": "CosineAnnealingWarmRestarts(T_0 = iterations/10, T_mult 2)"}[s])
	default:
		return imp.errAt("train.lr_scheduler", "invalid value %q (LECO stops on it too); valid values: constant, cosine", s)
	}
	return nil
}

// mapTrainPrecision maps train.precision, which is both the training dtype and (config quirk 3) the
// saved dtype.
func (imp *importer) mapTrainPrecision(t *lecoTrain, p *Preset) error {
	dtype, err := imp.precision(orDefault(t.Precision, "bfloat16"), "train.precision")
	if err != nil {
		return err
	}
	p.Train.SaveDType = dtype
	p.Train.DType = dtype
	if dtype == "float16" {
		p.Train.DType = "float32"
		imp.warnAt("train.precision", "float16 training is not supported (no loss scaling); the model runs in float32, the LoRA is still saved in float16")
	}
	return nil
}

// mapSave maps the save section (nil: LECO's defaults) onto p.Output and the intermediate LoRAs
// (per_steps → train.save_every); save.precision is unused by the anchors (the save dtype comes from
// train.precision).
func (imp *importer) mapSave(s *lecoSave, a anchor, p *Preset) error {
	if s == nil {
		s = &lecoSave{}
	}
	p.Output.Name = orDefault(s.Name, "untitled")
	p.Output.Dir = orDefault(s.Path, "./output")
	// LECO saves <name>_<i>steps.safetensors when i % per_steps == 0 (i the 0-based loop index, after
	// its update: i+1 updates), neither at i = 0 nor at the last step; LOBA writes lora-step-N after N
	// updates. The trained LoRA is the same.
	p.Train.SaveEvery = deref(s.PerSteps, 200)
	if p.Train.SaveEvery <= 0 {
		return imp.errAt("save.per_steps", "invalid value %d; want >= 1 (the steps between saved LoRAs; %s stops on 0 with a ZeroDivisionError)", p.Train.SaveEvery, a)
	}
	if s.Precision != "" {
		if sp, err := imp.precision(s.Precision, "save.precision"); err != nil {
			return err
		} else if sp != p.Train.SaveDType {
			imp.warnAt("save.precision", "%s is unused by %s (it saves in train.precision); imported as save_dtype %s", s.Precision, a, p.Train.SaveDType)
		}
	}
	return nil
}

// mapLoggingOther warns for the logging and other keys that are set: none changes the trained
// result, and LOBA replaces each.
func (imp *importer) mapLoggingOther(cfg *lecoConfig, a anchor) {
	if l := cfg.Logging; l != nil {
		if l.UseWandb {
			imp.warnAt("logging.use_wandb", "ignored: LOBA does not log to Weights & Biases; the run folder's loss.csv holds the loss of every step (lobanb.Chart plots it)")
		}
		if l.Verbose {
			imp.warnAt("logging.verbose", "ignored: %s verbose mode only prints more while training (settings, losses); the run folder holds the normalized preset.yaml and loss.csv", a.possessive())
		}
	}
	if o := cfg.Other; o != nil && o.UseXformers {
		imp.warnAt("other.use_xformers", "ignored: LOBA picks its attention implementation itself (train.attention: auto); the trained result is the same up to rounding")
	}
}

// mapNetwork maps network.type / training_method onto LOBA's targets preset and selectors.
func (imp *importer) mapNetwork(n *lecoNetwork, a anchor, p *Preset) error {
	if n == nil {
		n = &lecoNetwork{}
	}
	typ := orDefault(n.Type, "lierla")
	if typ != "lierla" && typ != "c3lier" {
		return imp.errAt("network.type", "invalid value %q; valid values: lierla, c3lier", n.Type)
	}
	p.Network.Targets = typ
	p.Network.Rank = deref(n.Rank, 4)
	p.Network.Alpha = ptr(deref(n.Alpha, 1.0))
	p.Network.Init = "zero"
	method := orDefault(n.TrainingMethod, "full")
	if a == anchorConceptSliders && imp.src != nil { // a config was read (else its defaults are the CLI's)
		imp.warnAt("network.rank", "Concept Sliders takes rank and alpha from its command line (--rank, default 4; --alpha, required), which override the config; imported rank %d, alpha %g from the config", p.Network.Rank, *p.Network.Alpha)
	}
	exclude := func(patterns ...string) {
		for _, pat := range patterns {
			p.Network.Selectors = append(p.Network.Selectors, Selector{Match: pat, Exclude: true})
		}
	}
	const (
		projFF  = `re:\.(proj_in|proj_out|ff\.net\.0\.proj|ff\.net\.2)$`
		attn1   = "attn1"
		attn2   = "attn2"
		convMod = `re:\.(resnets|downsamplers|upsamplers)\.`
	)
	if a == anchorLECO {
		// LECO (lora.py) targets every Linear/Conv inside Transformer2DModel (lierla; + ResnetBlock2D,
		// Down/Upsample2D for c3lier), and its training_method filters test the Transformer2DModel path,
		// which never contains attn1/attn2 (anchors b.1 quirk 2): noxattn / innoxattn exclude nothing,
		// xattn / selfattn select nothing.
		switch method {
		case "full":
		case "noxattn", "innoxattn":
			imp.warnAt("network.training_method", "%q excludes nothing in LECO (its filter tests the Transformer2DModel path, which never contains attn2); imported as LECO trains: every %s module. Set network.targets: noxattn for what the name intends", method, typ)
		case "xattn":
			imp.warnAt("network.training_method", "\"xattn\" selects no module at all in LECO (the run trains nothing); imported as intended: cross-attention (attn2) modules only")
			exclude(projFF, attn1, convMod)
		case "selfattn":
			imp.warnAt("network.training_method", "\"selfattn\" selects no module at all in LECO (the run trains nothing); imported as intended: self-attention (attn1) modules only")
			exclude(projFF, attn2, convMod)
		default:
			return imp.errAt("network.training_method", "invalid value %q; valid values: full, noxattn, innoxattn, selfattn, xattn", method)
		}
		return nil
	}
	// Concept Sliders (lora.py) targets the Attention modules (attn1/attn2 to_q, to_k, to_v, to_out.0),
	// + ResnetBlock2D / Down/Upsample2D for c3lier, and filters by module path.
	exclude(projFF)
	switch method {
	case "full":
	case "noxattn": // all but cross-attention
		exclude(attn2)
	case "selfattn":
		exclude(attn2, convMod)
	case "xattn":
		exclude(attn1, convMod)
	default:
		return imp.errAt("network.training_method", "%q is not supported by the importer; valid values: full, noxattn, selfattn, xattn (write selectors in a LOBA preset for the others)", method)
	}
	return nil
}

// precision maps config_util.PRECISION_TYPES onto LOBA dtype names.
func (imp *importer) precision(s, path string) (string, error) {
	switch s {
	case "fp32", "float32":
		return "float32", nil
	case "fp16", "float16":
		return "float16", nil
	case "bf16", "bfloat16":
		return "bfloat16", nil
	}
	return "", imp.errAt(path, "invalid value %q; valid values: fp32, fp16, bf16, float32, float16, bfloat16", s)
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
