package slider

// Mapping of an ai-toolkit slider process's train section (TrainConfig as TrainSliderProcess and
// BaseSDTrainProcess use it; toolkit/optimizer.py get_optimizer; toolkit/scheduler.py
// get_lr_scheduler) onto a preset.

import (
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// mapTrain maps train onto p (TrainConfig defaults: steps 1000, lr 1e-6, adamw, constant, ddpm,
// max_denoising_steps 999, batch_size 1, fp32).
func (imp *aitkImport) mapTrain(t *aitkTrain, p *Preset) error {
	path := imp.pp + ".train"
	if err := imp.checkTrainUnsupported(t, path); err != nil {
		return err
	}
	n := deref(t.MaxDenoisingSteps, 999)
	if n < 3 {
		return imp.errAt(path+".max_denoising_steps", "invalid value %d; want >= 3 (ai-toolkit draws k with torch.randint(1, max_denoising_steps - 1), which stops below 3)", n)
	}
	mapAIToolkitLoop(p, n)
	switch s := deref(t.NoiseScheduler, "ddpm"); s {
	case "ddpm", "ddim", "euler":
		p.DenoiseScheduler = s
	default:
		return imp.errAt(path+".noise_scheduler", "%q is not supported: it is the partial denoise's sampler, and LOBA ports ddpm, ddim and euler; valid values: ddpm, ddim, euler", s)
	}
	tr := &p.Train
	tr.Steps = deref(t.Steps, 1000)
	tr.LR = deref(t.LR, 1e-6)
	tr.BatchSize = deref(t.BatchSize, 1)
	dtype, err := imp.aitkDType(deref(t.DType, "fp32"), path+".dtype")
	if err != nil {
		return err
	}
	tr.DType = dtype
	tr.GradientCheckpointing = "on"
	if t.GradCheckpointing != nil && !*t.GradCheckpointing {
		tr.GradientCheckpointing = "off"
	}
	tr.NoiseOffset = deref(t.NoiseOffset, 0) // apply_noise_offset: + offset·N(0,1) per sample and channel
	if g := deref(t.MinSNRGamma, 0); g > 0 {
		tr.MinSNRGamma = g
		imp.warnAt(path+".min_snr_gamma", "imported as intended: LOBA weights each loss by min(SNR(t*), γ)/SNR(t*) (divided by SNR+1 for v-prediction); ai-toolkit's slider process passes apply_snr_weight the schedule index int(k·1000/N) for the timestep, so it weights by the SNR of 999 − t* (low-noise weights at high noise), with the ε formula for v-prediction too")
	}
	if t.TrainTextEncoder {
		imp.warnAt(path+".train_text_encoder", "ignored: the slider process encodes every prompt once before its loop, so text-encoder LoRA modules get no gradient and stay zero; LOBA trains the UNet's")
	}
	if err := imp.mapOptimizer(t, path, p); err != nil {
		return err
	}
	return imp.mapLRScheduler(t, path, p)
}

// checkTrainUnsupported rejects the train keys that change the result and LOBA cannot honour.
func (imp *aitkImport) checkTrainUnsupported(t *aitkTrain, path string) error {
	for _, c := range []struct {
		key string
		bad bool
		why string
	}{
		{"train_unet", t.TrainUNet != nil && !*t.TrainUNet, "false trains no UNet module, and the slider process trains nothing else"},
		{"learnable_snr_gos", t.LearnableSNRGOS, "LOBA has no learnable SNR weighting"},
		{"ema_config.use_ema", t.EMAConfig != nil && t.EMAConfig.UseEMA, "LOBA keeps no EMA of the adapter"},
		{"gradient_accumulation", deref(t.GradAccumulation, 1) != 1, "LOBA does not accumulate gradients; raise train.batch_size instead"},
		{"gradient_accumulation_steps", deref(t.GradAccumSteps, 1) != 1, "LOBA does not accumulate gradients; raise train.batch_size instead"},
		{"do_paramiter_swapping", t.DoParamSwapping, "LOBA trains every adapter parameter at every step"},
		{"start_step", t.StartStep != nil, "LOBA has no start step; set train.steps to the steps left (steps − start_step)"},
		{"free_u", t.FreeU, "LOBA has no FreeU"},
		{"merge_network_on_save", t.MergeNetworkOnSave, "LOBA saves the adapter, not a merged model"},
	} {
		if c.bad {
			return imp.errAt(path+"."+c.key, "not supported: %s", c.why)
		}
	}
	return nil
}

// mapOptimizer maps train.optimizer and optimizer_params (get_optimizer, lower-cased): adamw and adam
// (torch, eps 1e-6) and lion (lion-pytorch) are honoured; the 8-bit Adam / AdamW / Lion train with
// float32 states (a warning); the learning-rate-free and other optimizers are errors.
func (imp *aitkImport) mapOptimizer(t *aitkTrain, path string, p *Preset) error {
	name := strings.ToLower(deref(t.Optimizer, "adamw"))
	tr := &p.Train
	switch name {
	case "adamw", "adamw8bit":
		tr.Optimizer, tr.Eps = "adamw", 1e-6 // torch / bitsandbytes AdamW defaults otherwise: weight decay 1e-2
	case "adam", "adam8bit", "adam8", "adamw8":
		// Adam = AdamW without weight decay; ai-toolkit's own Adam8bit (adam8, adamw8) defaults to
		// weight_decay 0 either way.
		tr.Optimizer, tr.Eps, tr.WeightDecay = "adamw", 1e-6, ptr(0.0)
	case "lion", "lion8bit":
		tr.Optimizer = "lion"
	default:
		return imp.errAt(path+".optimizer", "%q is not supported: LOBA has AdamW and Lion (no learning-rate-free D-Adaptation / Prodigy / Automagic, no Adafactor, Adagrad or AdEMAMix), and the update changes the trained result; valid values: adamw, adam, lion, adamw8bit, adam8bit, lion8bit, adamw8, adam8", *t.Optimizer)
	}
	if strings.HasSuffix(name, "8bit") || strings.HasSuffix(name, "8") {
		imp.warnAt(path+".optimizer", "%s: 8-bit optimizer states are not ported; imported with float32 states (the same update without the 8-bit rounding)", *t.Optimizer)
	}
	keys := make([]string, 0, len(t.OptimizerParams))
	for k := range t.OptimizerParams {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := imp.optimizerParam(tr, k, t.OptimizerParams[k].node, path+`.optimizer_params["`+k+`"]`); err != nil {
			return err
		}
	}
	return nil
}

// optimizerParam maps one keyword argument of optimizer_params: weight_decay, betas and (Adam) eps
// are honoured; torch's implementation switches warn; amsgrad / maximize are honoured when false;
// anything else is an error (torch or lion-pytorch stop on an argument they do not take).
func (imp *aitkImport) optimizerParam(tr *Train, key string, v *yaml.Node, path string) error {
	adam := tr.Optimizer == "adamw"
	switch {
	case key == "weight_decay" || key == "eps" && adam:
		f, err := strconv.ParseFloat(v.Value, 64)
		if err != nil || v.Kind != yaml.ScalarNode {
			return imp.errAt(path, "expected a number, got %s", describe(v))
		}
		if key == "eps" {
			tr.Eps = f
		} else {
			tr.WeightDecay = ptr(f)
		}
	case key == "betas":
		var b []float64
		if v.Kind != yaml.SequenceNode || v.Decode(&b) != nil || len(b) != 2 {
			return imp.errAt(path, "expected a list of two numbers, got %s", describe(v))
		}
		tr.Betas = b
	case (key == "amsgrad" || key == "maximize") && adam:
		if v.Value != "false" && v.Value != "False" {
			return imp.errAt(path, "%s %s is not supported: it changes the update and LOBA's AdamW has no %s; leave it out", key, v.Value, key)
		}
	case slices.Contains([]string{"foreach", "fused", "capturable", "differentiable"}, key) && adam, key == "use_triton" && !adam:
		imp.warnAt(path, "ignored: it picks how torch computes the update, not the update; LOBA compiles its own")
	default:
		valid := "weight_decay, betas, use_triton"
		if adam {
			valid = "weight_decay, betas, eps, amsgrad (false), maximize (false), foreach, fused, capturable, differentiable"
		}
		return imp.errAt(path, "unsupported optimizer argument %q for %s; valid arguments: %s", key, tr.Optimizer, valid)
	}
	return nil
}

// mapLRScheduler maps train.lr_scheduler and lr_scheduler_params (get_lr_scheduler, with total_iters
// = steps): constant (torch ConstantLR, factor 1), cosine and cosine_with_restarts (CosineAnnealingLR
// / CosineAnnealingWarmRestarts over all steps: one half cosine to eta_min) and constant_with_warmup
// (diffusers, num_warmup_steps default 1000) are honoured; linear (torch LinearLR: a ramp up from
// lr/3) and step have no LOBA equivalent; other names stop ai-toolkit.
func (imp *aitkImport) mapLRScheduler(t *aitkTrain, path string, p *Preset) error {
	tr := &p.Train
	name := deref(t.LRScheduler, "constant")
	valid := map[string][]string{"constant": nil, "cosine": {"eta_min"}, "cosine_with_restarts": {"eta_min"},
		"constant_with_warmup": {"num_warmup_steps"}}
	allowed, ok := valid[name]
	switch {
	case name == "linear" || name == "step":
		return imp.errAt(path+".lr_scheduler", "%q is not supported: ai-toolkit's %s has no LOBA schedule; valid values: constant, cosine, cosine_with_restarts, constant_with_warmup", name,
			map[string]string{"linear": "torch LinearLR (lr ramps from lr/3 up to lr over the run)", "step": "torch StepLR"}[name])
	case !ok:
		return imp.errAt(path+".lr_scheduler", "invalid value %q (ai-toolkit stops on it too); valid values: constant, cosine, cosine_with_restarts, constant_with_warmup", name)
	}
	tr.LRScheduler = name
	if name == "cosine_with_restarts" {
		tr.LRScheduler = "cosine" // T_0 = steps: the first restart would come after the last step
	}
	if name == "constant_with_warmup" {
		tr.WarmupSteps = 1000
	}
	keys := make([]string, 0, len(t.LRSchedulerParams))
	for k := range t.LRSchedulerParams {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := t.LRSchedulerParams[k]
		kp := path + `.lr_scheduler_params["` + k + `"]`
		if !slices.Contains(allowed, k) {
			return imp.errAt(kp, "unsupported argument %q for %s: it changes the schedule and LOBA has no such setting; valid arguments: %s", k, name, quoteList(allowed))
		}
		f, err := strconv.ParseFloat(v.node.Value, 64)
		if err != nil || v.node.Kind != yaml.ScalarNode {
			return imp.errAt(kp, "expected a number, got %s", describe(v.node))
		}
		if k == "eta_min" {
			tr.MinLR = f
		} else if tr.WarmupSteps = int(f); float64(tr.WarmupSteps) != f {
			return imp.errAt(kp, "expected an integer, got %s", describe(v.node))
		}
	}
	return nil
}
