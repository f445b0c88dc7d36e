package slider

// Importers for LECO (p1atdev/LECO config_util.py RootConfig + prompt_util.py PromptSettings) and
// Concept Sliders' text sliders (rohitgandikota/sliders trainscripts/textsliders: the same config schema
// and prompt list, read by LECO's loop verbatim). Both anchors parse with pydantic, which silently ignores
// unknown keys; here an unknown key is an error naming it and the valid keys, except the two keys
// Concept Sliders' own prompt files carry (guidance, rank), which are ignored with a warning, as Concept
// Sliders ignores them.

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
)

// lecoConfig is LECO's run config (config_util.py RootConfig). Pointers tell unset fields (pydantic
// defaults) from given ones.
type lecoConfig struct {
	PromptsFile     string       `yaml:"prompts_file" slider:"required"`
	PretrainedModel lecoModel    `yaml:"pretrained_model" slider:"required"`
	Network         *lecoNetwork `yaml:"network" slider:"required"`
	Train           *lecoTrain   `yaml:"train"`
	Save            *lecoSave    `yaml:"save"`
	Logging         *lecoLogging `yaml:"logging"`
	Other           *lecoOther   `yaml:"other"`
}

type lecoModel struct {
	NameOrPath string `yaml:"name_or_path" slider:"required"`
	V2         bool   `yaml:"v2"`
	VPred      bool   `yaml:"v_pred"`
	ClipSkip   *int   `yaml:"clip_skip"`
}

type lecoNetwork struct {
	Type           string   `yaml:"type"`
	Rank           *int     `yaml:"rank"`
	Alpha          *float64 `yaml:"alpha"`
	TrainingMethod string   `yaml:"training_method"`
}

type lecoTrain struct {
	Precision         string   `yaml:"precision"`
	NoiseScheduler    string   `yaml:"noise_scheduler"`
	Iterations        *int     `yaml:"iterations"`
	LR                *float64 `yaml:"lr"`
	Optimizer         string   `yaml:"optimizer"`
	OptimizerArgs     string   `yaml:"optimizer_args"`
	LRScheduler       string   `yaml:"lr_scheduler"`
	MaxDenoisingSteps *int     `yaml:"max_denoising_steps"`
}

type lecoSave struct {
	Name      string `yaml:"name"`
	Path      string `yaml:"path"`
	PerSteps  *int   `yaml:"per_steps"`
	Precision string `yaml:"precision"`
}

type lecoLogging struct {
	UseWandb bool `yaml:"use_wandb"`
	Verbose  bool `yaml:"verbose"`
}

type lecoOther struct {
	UseXformers bool `yaml:"use_xformers"`
}

// lecoPrompt is one entry of LECO's prompts YAML (prompt_util.py PromptSettings).
type lecoPrompt struct {
	Target            string     `yaml:"target" slider:"required"`
	Positive          *string    `yaml:"positive"`
	Unconditional     *string    `yaml:"unconditional"`
	Neutral           *string    `yaml:"neutral"`
	Action            string     `yaml:"action"`
	GuidanceScale     *float64   `yaml:"guidance_scale"`
	Resolution        Resolution `yaml:"resolution"`
	DynamicResolution bool       `yaml:"dynamic_resolution"`
	BatchSize         *int       `yaml:"batch_size"`
	DynamicCrops      bool       `yaml:"dynamic_crops"`
}

// anchor tells the two flavours of the LECO schema apart.
type anchor int

const (
	anchorLECO anchor = iota
	anchorConceptSliders
)

func (a anchor) String() string {
	if a == anchorConceptSliders {
		return "Concept Sliders"
	}
	return "LECO"
}

// ImportLECO reads a LECO run config and the prompts YAML it names (prompts_file, relative to the
// config's folder; LECO itself opens it relative to the working directory, which is tried second). The
// preset reproduces LECO: objective leco, mode leco (t* off-by-19, adapter on during the partial
// denoise, CFG 3), LECO's own scheduler construction, LECO's module selection.
func ImportLECO(configPath string) (*Preset, []string, error) {
	cfg, src, err := readLECOConfig(configPath)
	if err != nil {
		return nil, nil, err
	}
	imp := &importer{file: configPath, src: src}
	promptsPath, err := imp.findPromptsFile(cfg.PromptsFile, configPath)
	if err != nil {
		return nil, nil, err
	}
	return imp.finish(cfg, promptsPath, anchorLECO, nil)
}

// ImportConceptSliders reads Concept Sliders' text-slider prompts YAML (LECO's prompt schema with the
// slider meaning of docs/ALGORITHMS.md §2: target = c_t, positive = c_+, unconditional = c_−) and its run config
// (LECO's schema; "" = Concept Sliders' data/config.yaml defaults). promptsPath "" takes the config's
// prompts_file. attributes, when given, repeat every prompt once per attribute with the attribute
// prepended to its four prompts (train_lora.py --attributes 'male, female').
//
// A prompt's `guidance:` key (Concept Sliders' *_GPT.yaml files) is ignored by Concept Sliders, so
// guidance_scale stays 1.0; it is imported the same way, with a warning. The preset reproduces Concept
// Sliders: objective slider_text, mode leco with the adapter on during the partial denoise.
func ImportConceptSliders(promptsPath, configPath string, attributes ...string) (*Preset, []string, error) {
	imp := &importer{file: promptsPath}
	var cfg *lecoConfig
	if configPath != "" {
		c, src, err := readLECOConfig(configPath)
		if err != nil {
			return nil, nil, err
		}
		cfg, imp.src, imp.file = c, src, configPath
		if promptsPath == "" {
			if promptsPath, err = imp.findPromptsFile(c.PromptsFile, configPath); err != nil {
				return nil, nil, err
			}
		}
	} else {
		if promptsPath == "" {
			return nil, nil, fmt.Errorf("slider: ImportConceptSliders needs a prompts file or a config")
		}
		cfg = conceptSlidersDefaultConfig()
		imp.warn("no config given: Concept Sliders' trainscripts/textsliders/data/config.yaml settings are used (c3lier noxattn, rank 4, alpha 1, 1000 iterations, lr 2e-4, AdamW, DDIM 50, bfloat16)")
	}
	return imp.finish(cfg, promptsPath, anchorConceptSliders, attributes)
}

// importLECOPromptsOnly imports a bare LECO prompts list with LECO's default run settings.
func importLECOPromptsOnly(promptsPath string) (*Preset, []string, error) {
	imp := &importer{file: promptsPath}
	imp.warn("bare prompts list: LECO's default run settings are used (lierla, rank 4, alpha 1, 500 iterations, lr 1e-4, AdamW, DDIM 50, bfloat16); model.name_or_path must be set")
	cfg := &lecoConfig{PretrainedModel: lecoModel{}, Network: &lecoNetwork{}}
	return imp.finish(cfg, promptsPath, anchorLECO, nil)
}

// conceptSlidersDefaultConfig is trainscripts/textsliders/data/config.yaml.
func conceptSlidersDefaultConfig() *lecoConfig {
	return &lecoConfig{
		PretrainedModel: lecoModel{NameOrPath: "CompVis/stable-diffusion-v1-4"},
		Network:         &lecoNetwork{Type: "c3lier", Rank: ptr(4), Alpha: ptr(1.0), TrainingMethod: "noxattn"},
		Train: &lecoTrain{Precision: "bfloat16", NoiseScheduler: "ddim", Iterations: ptr(1000), LR: ptr(2e-4),
			Optimizer: "AdamW", LRScheduler: "constant", MaxDenoisingSteps: ptr(50)},
		Save: &lecoSave{Name: "temp", Path: "./models", PerSteps: ptr(500), Precision: "bfloat16"},
	}
}

func readLECOConfig(path string) (*lecoConfig, *source, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	n, err := parseYAML(data, path)
	if err != nil {
		return nil, nil, err
	}
	cfg := &lecoConfig{}
	d := &decoder{src: newSource(path), lenient: true, hint: "LECO's pydantic config silently ignores it"}
	d.decode(n, reflect.ValueOf(cfg).Elem(), "")
	if err := d.err(); err != nil {
		return nil, nil, err
	}
	return cfg, d.src, nil
}

// importer accumulates the warnings of one import.
type importer struct {
	file     string
	src      *source
	warnings []string
}

func (imp *importer) warn(format string, args ...any) {
	imp.warnings = append(imp.warnings, fmt.Sprintf(format, args...))
}

// warnAt prefixes a warning with file:line of a key path of the config.
func (imp *importer) warnAt(path, format string, args ...any) {
	imp.warnings = append(imp.warnings, imp.src.where(path)+path+": "+fmt.Sprintf(format, args...))
}

func (imp *importer) errAt(path, format string, args ...any) error {
	return fmt.Errorf("%s%s: %s", imp.src.where(path), path, fmt.Sprintf(format, args...))
}

// findPromptsFile resolves prompts_file: relative to the config's folder first, then (as LECO and
// Concept Sliders do) relative to the working directory.
func (imp *importer) findPromptsFile(name, configPath string) (string, error) {
	if filepath.IsAbs(name) {
		return name, nil
	}
	rel := filepath.Join(filepath.Dir(configPath), name)
	if _, err := os.Stat(rel); err == nil {
		return rel, nil
	}
	if _, err := os.Stat(name); err == nil {
		imp.warnAt("prompts_file", "%q found relative to the working directory (as LECO opens it), not to the config's folder", name)
		return name, nil
	}
	return "", imp.errAt("prompts_file", "prompts file %q not found (tried %s and %s)", name, rel, name)
}

// finish reads the prompts and maps the config onto a preset.
func (imp *importer) finish(cfg *lecoConfig, promptsPath string, a anchor, attributes []string) (*Preset, []string, error) {
	prompts, err := imp.readPrompts(promptsPath, a)
	if err != nil {
		return nil, nil, err
	}
	if len(attributes) > 0 {
		prompts = expandAttributes(prompts, attributes)
	}
	p := &Preset{Prompts: prompts}
	if err := imp.mapConfig(cfg, a, p); err != nil {
		return nil, nil, err
	}
	return finishImport(p, imp.file, imp.warnings)
}

// finishImport normalizes an imported preset; validation errors name LOBA key paths, so they are
// prefixed with the imported file.
func finishImport(p *Preset, file string, warnings []string) (*Preset, []string, error) {
	if err := p.Normalize(); err != nil {
		return nil, nil, fmt.Errorf("%s: the imported preset is invalid: %w", file, err)
	}
	p.src = newSource(file)
	return p, warnings, nil
}

// readPrompts reads LECO's prompts list, filling LECO's defaults explicitly (prompt_util.py:
// positive := target, unconditional := "", neutral := unconditional, action erase, guidance_scale 1,
// resolution 512, batch_size 1), plus multiplier 1 and weight 1, which is what LECO trains at.
func (imp *importer) readPrompts(path string, a anchor) ([]Prompt, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	n, err := parseYAML(data, path)
	if err != nil {
		return nil, err
	}
	var raw []lecoPrompt
	d := &decoder{src: newSource(path), lenient: true, hint: a.String() + "'s pydantic prompt settings silently ignore it"}
	if a == anchorConceptSliders {
		d.ignored = func(path, key string) (string, bool) {
			switch key {
			case "guidance":
				return fmt.Sprintf("%s.guidance: ignored, as Concept Sliders ignores it (its pydantic PromptSettings has no `guidance` field, so guidance_scale stays 1.0); rename it to guidance_scale to use it", path), true
			case "rank":
				return fmt.Sprintf("%s.rank: ignored, as Concept Sliders ignores it (the rank comes from --rank / network.rank)", path), true
			}
			return "", false
		}
	}
	d.decode(n, reflect.ValueOf(&raw).Elem(), "prompts")
	if err := d.err(); err != nil {
		return nil, err
	}
	imp.warnings = append(imp.warnings, d.warnings...)
	if len(raw) == 0 {
		return nil, fmt.Errorf("%s: prompts file is empty", path)
	}
	out := make([]Prompt, len(raw))
	for i, r := range raw {
		e := Prompt{Target: r.Target, Action: r.Action, Resolution: r.Resolution,
			DynamicResolution: r.DynamicResolution, DynamicCrops: r.DynamicCrops,
			Positive: r.Positive, Neutral: r.Neutral, GuidanceScale: r.GuidanceScale,
			Multiplier: ptr(1.0), Weight: ptr(1.0)}
		if e.Positive == nil {
			e.Positive = ptr(r.Target)
		}
		if r.Unconditional != nil {
			e.Unconditional = *r.Unconditional
		}
		if e.Neutral == nil {
			e.Neutral = ptr(e.Unconditional)
		}
		if e.Action == "" {
			e.Action = ActionErase
		}
		if e.Action != ActionErase && e.Action != ActionEnhance {
			return nil, fmt.Errorf("%sprompts[%d].action: invalid value %q; valid values: erase, enhance", d.src.where(fmt.Sprintf("prompts[%d].action", i)), i, e.Action)
		}
		if e.GuidanceScale == nil {
			e.GuidanceScale = ptr(1.0)
		}
		if e.Resolution.IsZero() {
			e.Resolution = Square(512)
		}
		e.BatchSize = 1
		if r.BatchSize != nil {
			e.BatchSize = *r.BatchSize
		}
		out[i] = e
	}
	return out, nil
}

// expandAttributes is Concept Sliders' prompt_util.load_prompts_from_yaml with --attributes: one copy
// of every prompt per attribute, with "<attribute> " prepended to target, positive, neutral and
// unconditional, prompt-major.
func expandAttributes(prompts []Prompt, attributes []string) []Prompt {
	var out []Prompt
	for _, p := range prompts {
		for _, att := range attributes {
			q := p
			q.Target = att + " " + p.Target
			q.Positive = ptr(att + " " + *p.Positive)
			q.Neutral = ptr(att + " " + *p.Neutral)
			q.Unconditional = att + " " + p.Unconditional
			out = append(out, q)
		}
	}
	return out
}

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
	p.Model.Kind = "auto" // v2 / SDXL are told apart by the model's configs (LECO: by the script run)
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
		p.Train.LRScheduler = "constant"
	case "cosine":
		// torch CosineAnnealingLR(T_max = iterations, eta_min = lr/100) = a half cosine to lr/100.
		p.Train.LRScheduler, p.Train.MinLR = "cosine", p.Train.LR/100
	case "linear":
		p.Train.LRScheduler = "linear"
		imp.warnAt("train.lr_scheduler", "LECO's linear is torch LinearLR(factor 0.5, total_iters = iterations/100), a short ramp from lr/2 to lr; imported as LOBA's linear decay to 0")
	default:
		return imp.errAt("train.lr_scheduler", "%q is not supported; valid values: constant, cosine, linear", s)
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

// mapSave maps the save section (nil: LECO's defaults) onto p.Output and the checkpoint interval;
// save.precision is unused by the anchors (the save dtype comes from train.precision).
func (imp *importer) mapSave(s *lecoSave, a anchor, p *Preset) error {
	if s == nil {
		s = &lecoSave{}
	}
	p.Output.Name = orDefault(s.Name, "untitled")
	p.Output.Dir = orDefault(s.Path, "./output")
	p.Train.CheckpointEvery = deref(s.PerSteps, 200)
	if s.Precision != "" {
		if sp, err := imp.precision(s.Precision, "save.precision"); err != nil {
			return err
		} else if sp != p.Train.SaveDType {
			imp.warnAt("save.precision", "%s is unused by %s (it saves in train.precision); imported as save_dtype %s", s.Precision, a, p.Train.SaveDType)
		}
	}
	return nil
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
	if a == anchorConceptSliders {
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

// mapOptimizer maps train.optimizer (train_util.get_optimizer, lower-cased) and optimizer_args
// ("key=value key=value", values Python literals, as train_lora.py parses them).
func (imp *importer) mapOptimizer(t *lecoTrain, p *Preset) error {
	name := strings.ToLower(orDefault(t.Optimizer, "adamw"))
	tr := &p.Train
	switch name {
	case "adamw":
		tr.Optimizer = "adamw" // torch.optim.AdamW defaults: weight decay 1e-2
	case "adam":
		tr.Optimizer, tr.WeightDecay = "adamw", ptr(0.0) // Adam without weight decay = AdamW with 0
	case "adamw8bit", "adam8bit":
		tr.Optimizer = "adamw"
		if name == "adam8bit" {
			tr.WeightDecay = ptr(0.0)
		}
		imp.warnAt("train.optimizer", "%s: 8-bit optimizer states are not ported; imported as a float32 AdamW", t.Optimizer)
	case "lion", "lion8bit":
		tr.Optimizer = "lion"
		if name == "lion8bit" {
			imp.warnAt("train.optimizer", "lion8bit: 8-bit optimizer states are not ported; imported as a float32 Lion")
		}
	default:
		return imp.errAt("train.optimizer", "%q is not supported; valid values: adamw, adam, adamw8bit, adam8bit, lion, lion8bit", t.Optimizer)
	}
	if strings.TrimSpace(t.OptimizerArgs) == "" {
		return nil
	}
	for _, arg := range strings.Fields(t.OptimizerArgs) {
		key, value, ok := strings.Cut(arg, "=")
		if !ok {
			return imp.errAt("train.optimizer_args", "%q is not key=value", arg)
		}
		switch key {
		case "weight_decay", "eps":
			f, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return imp.errAt("train.optimizer_args", "%s=%s: not a number", key, value)
			}
			if key == "eps" {
				tr.Eps = f
			} else {
				tr.WeightDecay = ptr(f)
			}
		case "betas":
			parts := strings.Split(strings.Trim(value, "()[]"), ",")
			if len(parts) != 2 {
				return imp.errAt("train.optimizer_args", "betas=%s: want two numbers, e.g. betas=(0.9,0.999)", value)
			}
			tr.Betas = make([]float64, 2)
			for i, s := range parts {
				f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
				if err != nil {
					return imp.errAt("train.optimizer_args", "betas=%s: not a number: %q", value, s)
				}
				tr.Betas[i] = f
			}
		default:
			return imp.errAt("train.optimizer_args", "unsupported optimizer argument %q; valid arguments: weight_decay, betas, eps", key)
		}
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
