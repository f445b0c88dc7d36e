package slider

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/loba-dev/loba/models/lora"
)

// Normalize fills every default (docs/ALGORITHMS.md §1–2 and SCHEMA.md) and validates every value. It is
// idempotent. Errors name the file and line (when the preset was read from a file), the key path, the
// bad value and the valid values; all problems are reported together.
func (p *Preset) Normalize() error {
	v := &validator{src: p.src}
	p.fold(v)
	p.fillDefaults()
	p.validate(v)
	return v.err()
}

// validator collects validation errors.
type validator struct {
	src  *source
	errs []error
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s%s: %s", v.src.where(path), path, fmt.Sprintf(format, args...)))
}

func (v *validator) err() error { return errors.Join(v.errs...) }

func (v *validator) enum(path, value string, valid []string) {
	if !slices.Contains(valid, value) {
		v.add(path, "invalid value %q; valid values: %s", value, quoteList(valid))
	}
}

func quoteList(vals []string) string {
	out := make([]string, len(vals))
	for i, s := range vals {
		if s == "" {
			s = `""`
		}
		out[i] = s
	}
	return strings.Join(out, ", ")
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// check records an error when ok is false: "<path>: <value> <want>".
func (v *validator) check(ok bool, path string, value any, want string) {
	if !ok {
		v.add(path, "invalid value %v; want %s", value, want)
	}
}

func (v *validator) resolution(path string, r Resolution) {
	if r[0] <= 0 || r[1] <= 0 || r[0]%8 != 0 || r[1]%8 != 0 {
		v.add(path, "invalid value %s; want positive sizes that are multiples of 8 (the VAE factor)", r)
	}
}

// fold merges the alternative spellings (clip_skip, target neutral / resolution, "~" in paths) into
// the canonical fields, reporting conflicts.
func (p *Preset) fold(v *validator) {
	p.explicitZeros(v)
	p.expandPaths(v)
	m := &p.Model
	if m.ClipSkip != 0 {
		var hs string
		switch m.ClipSkip {
		case 1:
			hs = "last"
		case 2:
			hs = "penultimate"
		default:
			v.add("model.clip_skip", "invalid value %d; valid values: 1 (last hidden state), 2 (penultimate)", m.ClipSkip)
		}
		if hs != "" {
			if m.HiddenState != "" && m.HiddenState != "auto" && m.HiddenState != hs {
				v.add("model.clip_skip", "clip_skip %d (%s) contradicts hidden_state %q; set only hidden_state", m.ClipSkip, hs, m.HiddenState)
			} else {
				m.HiddenState = hs
				m.ClipSkip = 0
			}
		}
	}
	for i := range p.Targets {
		t := &p.Targets[i]
		path := fmt.Sprintf("targets[%d]", i)
		if t.Neutral != nil {
			if len(t.Neutrals) > 0 {
				v.add(path+".neutral", "set neutral or neutrals, not both")
			} else {
				t.Neutrals = []string{*t.Neutral}
				t.Neutral = nil
			}
		}
		if !t.Resolution.IsZero() {
			if len(t.Resolutions) > 0 {
				v.add(path+".resolution", "set resolution or resolutions, not both")
			} else {
				t.Resolutions = []Resolution{t.Resolution}
				t.Resolution = Resolution{}
			}
		}
	}
}

// explicitZeros reports keys written in the file with a zero value where zero is not a valid value:
// in code a zero field means "default", in a file the key should then be left out.
func (p *Preset) explicitZeros(v *validator) {
	if p.src == nil {
		return
	}
	type zeroCheck struct {
		path string
		zero bool
		want string
	}
	n, t, s := p.Network, p.Train, p.Sample
	checks := []zeroCheck{
		{"max_denoising_steps", p.MaxDenoisingSteps == 0, ">= 2"},
		{"network.rank", n.Rank == 0, ">= 1"},
		{"network.conv_rank", n.ConvRank == 0, ">= 1"},
		{"network.conv_alpha", n.ConvAlpha == 0, "> 0"},
		{"train.steps", t.Steps == 0, ">= 1"},
		{"train.lr", t.LR == 0, "> 0"},
		{"train.eps", t.Eps == 0, "> 0"},
		{"train.huber_c", t.HuberC == 0, "> 0"},
		{"train.huber_scale", t.HuberScale == 0, "> 0"},
		{"train.multires_noise_discount", t.MultiresNoiseDiscount == 0, "in (0, 1]"},
		{"train.batch_size", t.BatchSize == 0, ">= 1"},
		{"train.resolution", t.Resolution.IsZero(), "positive sizes"},
		{"sample.steps", s.Steps == 0, ">= 1"},
		{"sample.guidance_scale", s.GuidanceScale == 0, "> 0 (1 = no classifier-free guidance)"},
	}
	for i, e := range p.Prompts {
		checks = append(checks,
			zeroCheck{fmt.Sprintf("prompts[%d].batch_size", i), e.BatchSize == 0, ">= 1"},
			zeroCheck{fmt.Sprintf("prompts[%d].resolution", i), e.Resolution.IsZero(), "positive sizes"})
	}
	for i, e := range p.Targets {
		checks = append(checks, zeroCheck{fmt.Sprintf("targets[%d].batch_size", i), e.BatchSize == 0, ">= 1"})
	}
	for _, c := range checks {
		if _, given := p.src.lines[c.path]; given && c.zero {
			v.add(c.path, "invalid value 0; want %s (leave the key out for the default)", c.want)
		}
	}
}

// fillDefaults sets every unset field to its default. The order matters: the mode decides the
// denoise defaults, and train's batch size and resolution are the defaults of the entries.
func (p *Preset) fillDefaults() {
	p.Model.fillDefaults()
	p.fillLoopDefaults()
	p.fillFastDefaults()
	p.Network.fillDefaults()
	p.Train.fillDefaults()
	p.Sample.fillDefaults()
	setStr(&p.Output.Name, "loba")
	setStr(&p.Output.Dir, "output")
	p.fillPromptDefaults()
	p.fillTargetDefaults()
	p.fillObjectiveDefaults()
}

// fillDefaults sets the model's defaults: detected kind and hidden state, merged LoRAs at strength 1.
func (m *Model) fillDefaults() {
	setStr(&m.Kind, "auto")
	setStr(&m.HiddenState, "auto")
	for i := range m.MergeLoRAs {
		if m.MergeLoRAs[i].Strength == 0 {
			m.MergeLoRAs[i].Strength = 1
		}
	}
}

// fillLoopDefaults sets the top-level training-loop defaults: mode, objective (slider when targets
// are given) and the partial denoise, whose adapter and scheduler config follow the mode.
func (p *Preset) fillLoopDefaults() {
	setStr(&p.Mode, ModeLOBA)
	if p.Objective == "" {
		p.Objective = ObjectiveLECO
		if len(p.Targets) > 0 {
			p.Objective = ObjectiveSlider
		}
	}
	if p.DenoiseWithAdapter == nil {
		p.DenoiseWithAdapter = ptr(p.Mode == ModeLECO)
	}
	setPtr(&p.DenoiseGuidance, 3)
	setInt(&p.MaxDenoisingSteps, 50)
	if p.MinDenoisingSteps == nil {
		p.MinDenoisingSteps = ptr(1)
	}
	setStr(&p.DenoiseScheduler, "ddim")
	if p.DenoiseSchedulerConfig == "" {
		p.DenoiseSchedulerConfig = "model"
		if p.Mode == ModeLECO {
			p.DenoiseSchedulerConfig = "anchor"
		}
	}
	setStr(&p.TargetNorm, "none")
}

// fillDefaults sets the adapter's defaults; the conv rank and alpha default to the rank and alpha.
func (n *Network) fillDefaults() {
	setStr(&n.Targets, "lierla")
	setInt(&n.Rank, 4)
	setPtr(&n.Alpha, 1)
	setInt(&n.ConvRank, n.Rank)
	if n.ConvAlpha == 0 {
		n.ConvAlpha = *n.Alpha
	}
	setStr(&n.Init, "zero")
	if len(n.Selectors) == 0 {
		n.Selectors = nil
	}
	n.TextEncoder.fillDefaults(n)
}

// fillDefaults sets the optimization defaults.
func (t *Train) fillDefaults() {
	setInt(&t.Steps, 500)
	setFloat(&t.LR, 1e-4)
	t.fillOptimizerDefaults()
	setStr(&t.LRScheduler, "constant")
	setStr(&t.LossType, "l2")
	setFloat(&t.HuberC, 0.1)
	setStr(&t.HuberSchedule, "snr")
	setFloat(&t.HuberScale, 1)
	setFloat(&t.MultiresNoiseDiscount, 0.3)
	setInt(&t.BatchSize, 1)
	if t.Resolution.IsZero() {
		t.Resolution = Square(512)
	}
	setStr(&t.DType, "auto")
	switch t.GradientCheckpointing { // YAML booleans read into the string
	case "true":
		t.GradientCheckpointing = "on"
	case "false":
		t.GradientCheckpointing = "off"
	}
	setStr(&t.GradientCheckpointing, "auto")
	setStr(&t.Attention, "auto")
	setStr(&t.SaveDType, "float16")
	setStr(&t.SaveLayout, "diffusers")
}

// fillOptimizerDefaults sets the optimizer (adamw) and the defaults that depend on it: weight decay,
// betas and adamw's epsilon.
func (t *Train) fillOptimizerDefaults() {
	setStr(&t.Optimizer, "adamw")
	switch t.Optimizer {
	case "adamw":
		setPtr(&t.WeightDecay, 1e-2)
		if len(t.Betas) == 0 {
			t.Betas = []float64{0.9, 0.999}
		}
		setFloat(&t.Eps, 1e-8)
	case "lion":
		setPtr(&t.WeightDecay, 0)
		if len(t.Betas) == 0 {
			t.Betas = []float64{0.9, 0.99}
		}
	default:
		setPtr(&t.WeightDecay, 0)
	}
	if len(t.Betas) == 0 {
		t.Betas = nil
	}
}

// fillDefaults sets the preview-sample defaults.
func (s *Sample) fillDefaults() {
	if len(s.Strengths) == 0 {
		s.Strengths = []float64{-2, 0, 2}
	}
	if len(s.Prompts) == 0 {
		s.Prompts = nil
	}
	setInt(&s.Steps, 20)
	setFloat(&s.GuidanceScale, 7)
}

// fillPromptDefaults sets the defaults of every LECO prompt entry (train's batch size and resolution
// among them); action keep defaults neutral to the target and g to 0.
func (p *Preset) fillPromptDefaults() {
	if len(p.Prompts) == 0 {
		p.Prompts = nil
	}
	t := &p.Train
	for i := range p.Prompts {
		e := &p.Prompts[i]
		if e.Positive == nil {
			e.Positive = ptr(e.Target)
		}
		setStr(&e.Action, ActionErase)
		neutral, g := e.Unconditional, 1.0
		if e.Action == ActionKeep { // the frozen model's own prediction for the prompt
			neutral, g = e.Target, 0
		}
		if e.Neutral == nil {
			e.Neutral = ptr(neutral)
		}
		setPtr(&e.GuidanceScale, g)
		if e.Resolution.IsZero() {
			e.Resolution = t.Resolution
		}
		setInt(&e.BatchSize, t.BatchSize)
		setPtr(&e.Multiplier, 1)
		setPtr(&e.Weight, 1)
	}
}

// fillTargetDefaults sets the defaults of every slider target (train's batch size and resolution
// among them); η depends on the objective.
func (p *Preset) fillTargetDefaults() {
	if len(p.Targets) == 0 {
		p.Targets = nil
	}
	t := &p.Train
	eta := 1.0 // sd-scripts' default for bidirectional sliders
	if p.Objective == ObjectiveSliderText {
		eta = 4 // Concept Sliders' text sliders (docs/ALGORITHMS.md §2)
	}
	for i := range p.Targets {
		e := &p.Targets[i]
		if len(e.Neutrals) == 0 && e.Neutral == nil {
			e.Neutrals = []string{e.TargetClass}
		}
		setPtr(&e.GuidanceScale, eta)
		setPtr(&e.Multiplier, 1)
		setPtr(&e.Weight, 1)
		if len(e.Resolutions) == 0 && e.Resolution.IsZero() {
			e.Resolutions = []Resolution{t.Resolution}
		}
		setInt(&e.BatchSize, t.BatchSize)
	}
}

func setStr(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func setInt(i *int, def int) {
	if *i == 0 {
		*i = def
	}
}

func setFloat(f *float64, def float64) {
	if *f == 0 {
		*f = def
	}
}

func setPtr(f **float64, def float64) {
	if *f == nil {
		*f = ptr(def)
	}
}

// validate checks every value of a defaulted preset.
func (p *Preset) validate(v *validator) {
	p.validateEval(v)
	m := p.Model
	v.enum("model.kind", m.Kind, validKinds)
	v.enum("model.prediction_type", m.PredictionType, validPredictionTypes)
	v.enum("model.hidden_state", m.HiddenState, validHiddenStates)
	for i, ml := range m.MergeLoRAs {
		path := fmt.Sprintf("model.merge_loras[%d]", i)
		if ml.Path == "" {
			v.add(path+".path", "empty; want a kohya LoRA .safetensors file")
		}
		v.check(finite(ml.Strength), path+".strength", ml.Strength, "a finite number")
	}

	v.enum("objective", p.Objective, validObjectives)
	v.enum("mode", p.Mode, validModes)
	v.check(finite(*p.DenoiseGuidance) && *p.DenoiseGuidance >= 0, "denoise_guidance", *p.DenoiseGuidance, ">= 0")
	v.check(p.MaxDenoisingSteps >= 2, "max_denoising_steps", p.MaxDenoisingSteps, ">= 2 (k is drawn in [min_denoising_steps, N-1])")
	v.check(*p.MinDenoisingSteps >= 0 && *p.MinDenoisingSteps < p.MaxDenoisingSteps, "min_denoising_steps", *p.MinDenoisingSteps,
		fmt.Sprintf("in [0, max_denoising_steps-1 = %d]", p.MaxDenoisingSteps-1))
	if r := p.TimestepRange; len(r) != 0 {
		v.check(len(r) == 2 && r[0] >= 0 && r[0] <= r[1], "timestep_range", r, "[lo, hi] with 0 <= lo <= hi (model timesteps)")
	}
	v.enum("denoise_scheduler", p.DenoiseScheduler, validSchedulers)
	v.enum("denoise_scheduler_config", p.DenoiseSchedulerConfig, validSchedulerConfig)
	v.enum("timestep_spacing", p.TimestepSpacing, validSpacings)
	v.enum("target_norm", p.TargetNorm, validTargetNorms)
	p.validateFast(v)

	p.validateNetwork(v)
	p.validateTrain(v)
	p.validateObjectives(v)

	s := p.Sample
	for i, x := range s.Strengths {
		v.check(finite(x), fmt.Sprintf("sample.strengths[%d]", i), x, "a finite number")
	}
	v.check(s.Steps >= 1, "sample.steps", s.Steps, ">= 1")
	v.check(finite(s.GuidanceScale) && s.GuidanceScale >= 0, "sample.guidance_scale", s.GuidanceScale, ">= 0")
	v.check(s.Every >= 0, "sample.every", s.Every, ">= 0 (0 = only after training)")
	v.check(s.StartNoise >= 0 && s.StartNoise <= 1000, "sample.start_noise", s.StartNoise, "in [0, 1000] (0 = off)")
	v.check(p.Output.Name != "" && !strings.ContainsAny(p.Output.Name, `/\`), "output.name", fmt.Sprintf("%q", p.Output.Name), "a file name without path separators")

	if len(p.Prompts) == 0 && len(p.Targets) == 0 {
		v.add("prompts", "no training entries: give prompts (LECO entries) or targets (slider targets)")
	}
	if p.Objective == ObjectiveLECO && len(p.Targets) > 0 {
		v.add("objective", "objective leco trains prompts only; targets need objective slider or slider_text")
	}
	for i, e := range p.Prompts {
		path := fmt.Sprintf("prompts[%d]", i)
		v.enum(path+".action", e.Action, validActions)
		if e.Action == ActionKeep {
			v.check(*e.GuidanceScale == 0, path+".guidance_scale", *e.GuidanceScale, "0 with action keep (the target is the frozen model's own prediction)")
			v.check(*e.Neutral == e.Target, path+".neutral", fmt.Sprintf("%q", *e.Neutral), "left out or the target with action keep")
		}
		p.validateCommon(v, path, *e.GuidanceScale, *e.Multiplier, *e.Weight, e.BatchSize)
		v.resolution(path+".resolution", e.Resolution)
	}
	for i, e := range p.Targets {
		path := fmt.Sprintf("targets[%d]", i)
		if strings.TrimSpace(e.Positive) == "" && strings.TrimSpace(e.Negative) == "" {
			v.add(path, "a slider target needs a positive or a negative prompt (or both)")
		}
		p.validateCommon(v, path, *e.GuidanceScale, *e.Multiplier, *e.Weight, e.BatchSize)
		for j, r := range e.Resolutions {
			v.resolution(fmt.Sprintf("%s.resolutions[%d]", path, j), r)
		}
	}
}

func (p *Preset) validateCommon(v *validator, path string, g, mult, weight float64, batch int) {
	v.check(finite(g) && g >= 0, path+".guidance_scale", g, ">= 0")
	v.check(finite(mult) && mult != 0, path+".multiplier", mult, "a nonzero number (the sign is the slider direction)")
	v.check(finite(weight) && weight >= 0, path+".weight", weight, ">= 0")
	v.check(batch >= 1, path+".batch_size", batch, ">= 1")
}

func (p *Preset) validateNetwork(v *validator) {
	n := p.Network
	v.enum("network.targets", n.Targets, validNetworkTargets)
	v.check(n.Rank >= 1, "network.rank", n.Rank, ">= 1")
	v.check(finite(*n.Alpha) && *n.Alpha > 0, "network.alpha", *n.Alpha, "> 0")
	v.check(n.ConvRank >= 1, "network.conv_rank", n.ConvRank, ">= 1")
	v.check(finite(n.ConvAlpha) && n.ConvAlpha > 0, "network.conv_alpha", n.ConvAlpha, "> 0")
	v.enum("network.init", n.Init, validInits)
	p.validateTextEncoder(v)
	for i, s := range n.Selectors {
		path := fmt.Sprintf("network.selectors[%d]", i)
		if s.Match == "" {
			v.add(path+".match", "empty selector; want a module type (attn1, attn2, ff, proj, resnet, sampler, ...), a block path (down_blocks.1, up_blocks.*) or re:<regexp>")
		} else if err := (lora.Selector{Match: s.Match}).Validate(); err != nil {
			v.add(path+".match", "%v", err)
		}
		v.check(s.Rank >= 0, path+".rank", s.Rank, ">= 0 (0 = inherit)")
		if s.Alpha != nil {
			v.check(finite(*s.Alpha) && *s.Alpha > 0, path+".alpha", *s.Alpha, "> 0")
		}
		if s.LRScale != nil {
			v.check(finite(*s.LRScale) && *s.LRScale >= 0, path+".lr_scale", *s.LRScale, ">= 0")
		}
		if s.Exclude && (s.Rank != 0 || s.Alpha != nil || s.LRScale != nil) {
			v.add(path, "exclude drops the matching modules; rank, alpha and lr_scale would be ignored")
		}
	}
}

func (p *Preset) validateTrain(v *validator) {
	t := p.Train
	v.check(t.Steps >= 1, "train.steps", t.Steps, ">= 1")
	v.check(finite(t.LR) && t.LR > 0, "train.lr", t.LR, "> 0")
	v.enum("train.optimizer", t.Optimizer, validOptimizers)
	v.check(finite(*t.WeightDecay) && *t.WeightDecay >= 0, "train.weight_decay", *t.WeightDecay, ">= 0")
	if t.Betas != nil {
		ok := len(t.Betas) == 2
		for _, b := range t.Betas {
			ok = ok && b >= 0 && b < 1
		}
		v.check(ok, "train.betas", t.Betas, "two numbers in [0, 1)")
	}
	if t.Optimizer == "adamw" {
		v.check(finite(t.Eps) && t.Eps > 0, "train.eps", t.Eps, "> 0")
	}
	v.check(finite(t.Momentum) && t.Momentum >= 0, "train.momentum", t.Momentum, ">= 0")
	if t.Momentum != 0 && t.Optimizer != "sgd" {
		v.add("train.momentum", "momentum applies to optimizer sgd only (optimizer is %q)", t.Optimizer)
	}
	v.enum("train.lr_scheduler", t.LRScheduler, validLRSchedulers)
	v.check(t.WarmupSteps >= 0 && t.WarmupSteps <= t.Steps, "train.warmup_steps", t.WarmupSteps, fmt.Sprintf("in [0, steps = %d]", t.Steps))
	if t.LRScheduler == "constant" && t.WarmupSteps > 0 {
		v.add("train.warmup_steps", "lr_scheduler constant has no warmup; use constant_with_warmup")
	}
	if t.LR > 0 {
		v.check(finite(t.MinLR) && t.MinLR >= 0 && t.MinLR < t.LR, "train.min_lr", t.MinLR, fmt.Sprintf("in [0, lr = %g)", t.LR))
	}
	v.check(finite(t.MaxGradNorm) && t.MaxGradNorm >= 0, "train.max_grad_norm", t.MaxGradNorm, ">= 0 (0 = off)")
	v.enum("train.loss_type", t.LossType, validLossTypes)
	v.check(finite(t.HuberC) && t.HuberC > 0, "train.huber_c", t.HuberC, "> 0")
	v.enum("train.huber_schedule", t.HuberSchedule, validHuberSchedules)
	v.check(finite(t.HuberScale) && t.HuberScale > 0, "train.huber_scale", t.HuberScale, "> 0")
	v.check(finite(t.MinSNRGamma) && t.MinSNRGamma >= 0, "train.min_snr_gamma", t.MinSNRGamma, ">= 0 (0 = off)")
	v.check(finite(t.NoiseOffset) && t.NoiseOffset >= 0, "train.noise_offset", t.NoiseOffset, ">= 0")
	v.check(t.MultiresNoiseIterations >= 0, "train.multires_noise_iterations", t.MultiresNoiseIterations, ">= 0 (0 = off)")
	v.check(t.MultiresNoiseDiscount > 0 && t.MultiresNoiseDiscount <= 1, "train.multires_noise_discount", t.MultiresNoiseDiscount, "in (0, 1]")
	v.check(t.BatchSize >= 1, "train.batch_size", t.BatchSize, ">= 1")
	v.resolution("train.resolution", t.Resolution)
	v.enum("train.dtype", t.DType, validDTypes)
	v.enum("train.gradient_checkpointing", t.GradientCheckpointing, validCheckpointing)
	v.enum("train.attention", t.Attention, validAttention)
	v.check(t.CheckpointEvery >= 0, "train.checkpoint_every", t.CheckpointEvery, ">= 0 (0 = only at the end)")
	v.check(t.KeepCheckpoints >= 0, "train.keep_checkpoints", t.KeepCheckpoints, ">= 0 (0 = all)")
	v.check(t.SaveEvery >= 0, "train.save_every", t.SaveEvery, ">= 0 (0 = off)")
	v.enum("train.save_dtype", t.SaveDType, validSaveDTypes)
	v.enum("train.save_layout", t.SaveLayout, validSaveLayouts)
}

var selectorCache sync.Map // pattern → *regexp.Regexp
