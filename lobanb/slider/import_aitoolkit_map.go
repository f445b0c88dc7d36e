package slider

// Mapping of an ai-toolkit slider process (jobs/process/TrainSliderProcess.py on BaseSDTrainProcess)
// onto a preset: the loop, the model, the network and the output. The train, slider and sample
// sections are in import_aitoolkit_train.go, import_aitoolkit_slider.go and import_aitoolkit_sample.go.

import (
	"strings"
)

// mapProcess maps the one slider process of f onto p.
func (imp *aitkImport) mapProcess(f *aitkFile, p *Preset) error {
	pr := &f.Config.Process[0]
	if err := imp.checkUnsupported(pr); err != nil {
		return err
	}
	p.Output.Name = f.Config.Name
	if pr.Name != nil {
		p.Output.Name = *pr.Name // BaseProcess: get_conf('name', job.name)
	}
	p.Output.Dir = f.Config.TrainingFolder // <training_folder>/<name>/ holds ai-toolkit's LoRA files
	if pr.TrainingFolder != nil {
		p.Output.Dir = *pr.TrainingFolder
	}
	if pr.TrainingSeed != nil {
		p.Train.Seed = *pr.TrainingSeed // BaseTrainProcess seeds torch and random with it
	}
	if err := imp.mapModel(pr.Model, p); err != nil {
		return err
	}
	if err := imp.mapNetwork(pr.Network, p); err != nil {
		return err
	}
	if err := imp.mapTrain(&pr.Train, p); err != nil {
		return err
	}
	if err := imp.mapSave(pr.Save, p); err != nil {
		return err
	}
	if err := imp.mapSlider(&pr.Slider, p); err != nil {
		return err
	}
	return imp.mapSample(&pr.Sample, pr.Train.DisableSampling, p)
}

// checkUnsupported rejects the process sections that train something else than the slider's
// adapter (a dataset, an embedding, an adapter, a decorator, LoRM).
func (imp *aitkImport) checkUnsupported(pr *aitkProcess) error {
	for _, s := range []struct {
		key string
		set bool
		why string
	}{
		{"datasets", pr.Datasets.set, "with a dataset the slider process trains on images (process_general_training_batch), which LOBA's slider objective does not; leave datasets out to train from prompts"},
		{"embedding", pr.Embedding.set, "LOBA trains no textual-inversion embedding"},
		{"adapter", pr.Adapter.set, "LOBA trains no IP/T2I adapter"},
		{"decorator", pr.Decorator.set, "LOBA trains no decorator"},
		{"do_lorm", pr.DoLorm, "LOBA trains no LoRM"},
	} {
		if s.set {
			return imp.errAt(imp.pp+"."+s.key, "not supported: %s", s.why)
		}
	}
	if pr.Network == nil {
		return imp.errAt(imp.pp, "missing key %q: without a network ai-toolkit fine-tunes the whole UNet, and LOBA trains adapters only", imp.pp+".network")
	}
	return nil
}

// mapAIToolkitLoop sets what TrainSliderProcess hard-codes (n is train.max_denoising_steps, >= 3).
func mapAIToolkitLoop(p *Preset, n int) {
	p.Objective = ObjectiveSlider // build_prompt_pair_batch_from_cache's four pairs = LOBA's bidirectional entries
	// current_timestep = timesteps_1000[int(k·1000/N)] after the k-step partial denoise: LECO's form.
	p.Mode = ModeLECO
	p.DenoiseWithAdapter = ptr(false) // `assert not self.network.is_active` around diffuse_some_steps
	// diffuse_some_steps(..., guidance_scale=3) gets the target-class embeddings alone (no
	// unconditional half), so predict_noise skips classifier-free guidance: the denoise runs at CFG 1.
	p.DenoiseGuidance = ptr(1.0)
	// toolkit/sampler.py sd_config: scaled_linear 0.00085–0.012, 1000 steps, clip_sample false,
	// steps_offset 0, leading spacing, built from scratch (set_alpha_to_one false only matters at a
	// DDIM step to t < 0, which a partial denoise never takes); the prediction type from is_v_pred.
	p.DenoiseSchedulerConfig = "anchor"
	p.TimestepSpacing = "leading"
	p.TargetNorm = "none"
	p.MaxDenoisingSteps = n
	p.MinDenoisingSteps = ptr(1)
	// torch.randint(1, N-1) draws k in [1, N-2]; LOBA draws it in [1, N-1], so the range keeps every
	// t* = 999 − int(k·1000/N) but the one of k = N−1.
	p.TimestepRange = []int{999 - (n-2)*1000/n, 999}
}

// mapModel maps model (ModelConfig) onto p.Model. LOBA trains SD 1.x/2.x and SDXL UNets.
func (imp *aitkImport) mapModel(m *aitkModel, p *Preset) error {
	path := imp.pp + ".model"
	for _, o := range []struct {
		key string
		set bool
	}{{"is_v3", m.IsV3}, {"is_flux", m.IsFlux}, {"is_pixart", m.IsPixart}, {"is_pixart_sigma", m.IsPixartSigma},
		{"is_auraflow", m.IsAuraflow}, {"is_lumina2", m.IsLumina2}} {
		if o.set {
			return imp.errAt(path+"."+o.key, "not supported: LOBA trains SD 1.x/2.x and SDXL UNets only")
		}
	}
	for _, o := range []struct {
		key, why string
		v        *string
	}{{"refiner_name_or_path", "LOBA trains no SDXL refiner", m.RefinerNameOrPath},
		{"assistant_lora_path", "ai-toolkit stops on it for SD/SDXL models (Flux only)", m.AssistantLoRAPath},
		{"inference_lora_path", "ai-toolkit stops on it for SD/SDXL models (Flux only)", m.InferenceLoRAPath}} {
		if o.v != nil && *o.v != "" {
			return imp.errAt(path+"."+o.key, "not supported: %s", o.why)
		}
	}
	p.Model.NameOrPath = m.NameOrPath
	p.Model.Kind = "auto" // SD 1.x / 2.x (is_v2) are told apart by the model's configs
	arch := ""
	if m.Arch != nil {
		arch, _, _ = strings.Cut(*m.Arch, ":") // ModelConfig drops an "arch:tag" suffix
	}
	switch arch {
	case "sdxl":
		p.Model.Kind = "sdxl"
	case "":
		if m.IsXL {
			p.Model.Kind = "sdxl"
		}
	case "sd1", "sd2", "ssd", "vega":
	default:
		return imp.errAt(path+".arch", "invalid value %q: LOBA trains SD 1.x/2.x and SDXL UNets only; valid values: sd1, sd2, sdxl, ssd, vega", *m.Arch)
	}
	if m.IsSSD || m.IsVega || arch == "ssd" || arch == "vega" {
		imp.warnAt(path, "SSD-1B / Vega (distilled SDXL UNets): imported as model.kind auto, which reads the UNet's layout from the model's configs")
		p.Model.Kind = "auto"
	}
	p.Model.PredictionType = "epsilon"
	if m.IsVPred {
		p.Model.PredictionType = "v_prediction" // get_sampler(..., {"prediction_type": ...})
	}
	p.Model.HiddenState = "auto" // SD 1.x/2.x: text_encoder(...)[0]; SDXL: hidden_states[-2]
	return nil
}

// mapNetwork maps network (NetworkConfig) onto p.Network. ai-toolkit adapts, in an SD/SDXL UNet:
//   - LoRASpecialNetwork (every type but locon/lycoris; UNET_TARGET_REPLACE_MODULE is the whole
//     UNet2DConditionModel): every Linear and 1×1 Conv2d, and the 3×3 Conv2d when conv is set;
//   - LycorisSpecialNetwork (locon, lycoris): the same inside Transformer2DModel, ResnetBlock2D and
//     Down/Upsample2D, plus conv_in, conv_out and time_embedding: all but SDXL's add_embedding.
//
// LOBA's preset full (every Linear and Conv2d) with the 3×3 convolutions excluded when conv is unset
// selects the same modules.
func (imp *aitkImport) mapNetwork(n *aitkNetwork, p *Preset) error {
	path := imp.pp + ".network"
	typ := strings.ToLower(deref(n.Type, "lora"))
	switch typ {
	case "lorm", "lokr", "dora", "fullrank":
		return imp.errAt(path+".type", "%q is not supported: LOBA trains LoRA and LoCon; valid values: lora, locon, lycoris", *n.Type)
	case "lora", "locon", "lycoris":
	default:
		imp.warnAt(path+".type", "%q is read by ai-toolkit as plain LoRA on every Linear and 1×1 Conv2d of the UNet (not kohya's LierLa / C3Lier module sets); imported as ai-toolkit trains it", *n.Type)
	}
	if err := imp.checkNetworkExtras(n, path); err != nil {
		return err
	}
	nw := &p.Network
	nw.Targets, nw.Init = "full", "zero"        // kaiming-uniform down, zero up, as LoRAModule / LoConModule
	nw.Rank = deref(n.Rank, deref(n.Linear, 4)) // rank (legacy) wins over linear
	alpha := deref(n.LinearAlpha, deref(n.Alpha, 1.0))
	if alpha == 0 {
		alpha = float64(nw.Rank) // LoRAModule: alpha 0 means alpha = rank
	}
	nw.Alpha = ptr(alpha)
	if typ == "locon" || typ == "lycoris" {
		nw.Selectors = append(nw.Selectors, Selector{Match: "add_embedding", Exclude: true})
	}
	if conv := deref(n.Conv, 0); conv > 0 {
		nw.ConvRank = conv
		nw.ConvAlpha = deref(n.ConvAlpha, float64(conv)) // NetworkConfig: conv_alpha defaults to conv
		if nw.ConvAlpha == 0 {
			nw.ConvAlpha = float64(conv)
		}
	} else {
		// conv unset or 0: no 3×3 convolution is adapted (conv_in, conv_out, the resnets' conv1/conv2,
		// the down/upsamplers); 1×1 ones (conv_shortcut, SD 1.x's proj_in/proj_out) are.
		nw.Selectors = append(nw.Selectors, Selector{Match: `re:(^conv_in$|^conv_out$|\.conv[12]$|samplers\.[0-9]+\.conv$)`, Exclude: true})
	}
	return nil
}

// checkNetworkExtras rejects the network keys that change the trained modules or their training in
// a way LOBA cannot reproduce.
func (imp *aitkImport) checkNetworkExtras(n *aitkNetwork, path string) error {
	switch {
	case n.Dropout != nil && *n.Dropout != 0:
		return imp.errAt(path+".dropout", "%g is not supported: LOBA's adapters have no dropout; leave it out or set 0", *n.Dropout)
	case n.NetworkKwargs.set:
		return imp.errAt(path+".network_kwargs", "not supported: its keys (only_if_contains, ignore_if_contains, ...) change the adapted modules; write network.selectors in a LOBA preset instead")
	case n.PretrainedLoRAPath != nil && *n.PretrainedLoRAPath != "":
		return imp.errAt(path+".pretrained_lora_path", "not supported: LOBA starts every adapter from its initialisation (a LoRA can be merged into the base instead: model.merge_loras)")
	case n.AllLayers:
		return imp.errAt(path+".all_layers", "not supported: LOBA trains no full-weight modules")
	}
	return nil
}

// mapSave maps save (SaveConfig) onto the saved LoRAs.
func (imp *aitkImport) mapSave(s aitkSave, p *Preset) error {
	path := imp.pp + ".save"
	dtype, err := imp.aitkDType(deref(s.DType, "float16"), path+".dtype")
	if err != nil {
		return err
	}
	p.Train.SaveDType = dtype
	p.Train.SaveEvery = deref(s.SaveEvery, 1000)
	if p.Train.SaveEvery <= 0 {
		return imp.errAt(path+".save_every", "invalid value %d; want >= 1 (the steps between saved LoRAs; ai-toolkit divides by it)", p.Train.SaveEvery)
	}
	return nil
}

// aitkDType maps get_torch_dtype's names onto LOBA's.
func (imp *aitkImport) aitkDType(s, path string) (string, error) {
	switch s {
	case "float", "fp32", "single", "float32":
		return "float32", nil
	case "fp16", "half", "float16":
		return "float16", nil
	case "bf16", "bfloat16":
		return "bfloat16", nil
	}
	return "", imp.errAt(path, "invalid value %q; valid values: fp32, float32, float, single, fp16, float16, half, bf16, bfloat16", s)
}
