package slider

// Importers for LECO (p1atdev/LECO config_util.py RootConfig + prompt_util.py PromptSettings) and
// Concept Sliders' text sliders (rohitgandikota/sliders trainscripts/textsliders: the same config schema
// and prompt list, read by LECO's loop verbatim). Both anchors parse with pydantic, which silently ignores
// unknown keys; the import ignores them too, so it trains what the anchor trains, and warns for each
// (file, line, key, the valid keys and the key probably meant). Every known key is honoured, ignored
// with a warning (no effect on the result, or one LOBA does better), or an error when it changes the
// trained result and cannot be honoured: the table in SCHEMA.md, made in import_leco_map.go.

import (
	"fmt"
	"os"
	"reflect"
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

// possessive is "LECO's", "Concept Sliders'".
func (a anchor) possessive() string {
	if a == anchorConceptSliders {
		return "Concept Sliders'"
	}
	return "LECO's"
}

// ImportLECO reads a LECO run config and the prompts YAML it names (prompts_file: see findPromptsFile).
// The preset reproduces LECO: objective leco, mode leco (t* off-by-19, adapter on during the partial
// denoise, CFG 3), LECO's own scheduler construction, LECO's module selection.
func ImportLECO(configPath string) (*Preset, []string, error) {
	cfg, d, err := readLECOConfig(configPath, anchorLECO)
	if err != nil {
		return nil, nil, err
	}
	imp := &importer{file: configPath, src: d.src, warnings: d.warnings}
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
		c, d, err := readLECOConfig(configPath, anchorConceptSliders)
		if err != nil {
			return nil, nil, err
		}
		cfg, imp.src, imp.file, imp.warnings = c, d.src, configPath, d.warnings
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

// readLECOConfig decodes a LECO-schema run config; the decoder it returns holds the line of every key
// and the warnings for the keys pydantic ignores.
func readLECOConfig(path string, a anchor) (*lecoConfig, *decoder, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	n, err := parseYAML(data, path)
	if err != nil {
		return nil, nil, err
	}
	cfg := &lecoConfig{}
	d := &decoder{src: newSource(path), lenient: true, warnUnknown: true,
		hint: a.possessive() + " pydantic config ignores it, and so does the import"}
	d.decode(n, reflect.ValueOf(cfg).Elem(), "")
	if err := d.err(); err != nil {
		return nil, nil, err
	}
	return cfg, d, nil
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
	d := &decoder{src: newSource(path), lenient: true, warnUnknown: true,
		hint: a.possessive() + " pydantic prompt settings ignore it, and so does the import"}
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
