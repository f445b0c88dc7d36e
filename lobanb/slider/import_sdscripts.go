package slider

// Importer for sd-scripts' LECO prompt TOML (kohya-ss/sd-scripts library/leco_train_util.py
// load_prompt_settings, docs/train_leco.md): [[prompts]] LECO pairs and/or [[targets]] slider targets
// (at the top level or in a [slider] table) with top-level defaults, neutrals / neutral /
// neutral_prompt_file / prompt_file. sd-scripts ignores unknown keys of slider targets and of the top
// level, and stops on an unknown key of a LECO pair; the import does the same, with a warning for each
// ignored key.

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"
)

// sdItem is the union of the keys of a sd-scripts prompt item and slider target (and of the top-level
// defaults); pointers tell given keys from absent ones.
type sdItem struct {
	Target            *string   `yaml:"target"`
	Positive          *string   `yaml:"positive"`
	Unconditional     *string   `yaml:"unconditional"`
	Neutral           *string   `yaml:"neutral"`
	Action            *string   `yaml:"action"`
	GuidanceScale     *float64  `yaml:"guidance_scale"`
	Resolution        *sdRes    `yaml:"resolution"`
	DynamicResolution *bool     `yaml:"dynamic_resolution"`
	BatchSize         *int      `yaml:"batch_size"`
	DynamicCrops      *bool     `yaml:"dynamic_crops"`
	Multiplier        *float64  `yaml:"multiplier"`
	Weight            *float64  `yaml:"weight"`
	TargetClass       *string   `yaml:"target_class"`
	Negative          *string   `yaml:"negative"`
	Resolutions       *sdRes    `yaml:"resolutions"`
	Neutrals          *[]string `yaml:"neutrals"`
	NeutralPromptFile *string   `yaml:"neutral_prompt_file"`
	PromptFile        *string   `yaml:"prompt_file"`
}

type sdFile struct {
	Item    sdItem    `yaml:",inline"`
	Prompts []sdItem  `yaml:"prompts"`
	Targets []sdItem  `yaml:"targets"`
	Slider  *sdSlider `yaml:"slider"`
}

type sdSlider struct {
	Item    sdItem   `yaml:",inline"`
	Targets []sdItem `yaml:"targets"`
}

// Key sets of leco_train_util.py.
var (
	sdPromptKeys = []string{"target", "positive", "unconditional", "neutral", "action", "guidance_scale",
		"resolution", "dynamic_resolution", "batch_size", "dynamic_crops", "multiplier", "weight"}
	sdSliderKeys = []string{"target_class", "positive", "negative", "neutral", "guidance_scale", "resolution",
		"resolutions", "dynamic_resolution", "batch_size", "dynamic_crops", "multiplier", "weight"}
	sdNeutralKeys = []string{"neutrals", "neutral_prompt_file", "prompt_file"}
)

// sdRes is a resolution value: an int, [h, w], or a list of those (sd-scripts
// _normalize_resolution_values).
type sdRes []Resolution

func (r *sdRes) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.SequenceNode && len(n.Content) > 0 && n.Content[0].Kind == yaml.SequenceNode {
		out := make(sdRes, len(n.Content))
		for i, c := range n.Content {
			if err := out[i].UnmarshalYAML(c); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		*r = out
		return nil
	}
	var one Resolution
	if err := one.UnmarshalYAML(n); err != nil {
		return err
	}
	*r = sdRes{one}
	return nil
}

// ImportSDScriptsTOML reads sd-scripts' LECO prompt TOML. The preset reproduces train_leco.py /
// sdxl_train_leco.py with their command-line defaults (the TOML holds prompts only): mode leco, DDPM
// partial denoise (40 steps, CFG 3) with the adapter at each entry's multiplier, references at 0;
// objective slider when slider targets are present (expanded as _expand_slider_target), else leco.
//
// A key sd-scripts ignores (a slider target's or a section's unknown or misplaced key) is ignored with
// a warning; a key sd-scripts stops on (any key of a LECO pair that PromptSettings does not take) is an
// error.
func ImportSDScriptsTOML(path string) (*Preset, []string, error) {
	f, d, err := readSDScriptsTOML(path)
	if err != nil {
		return nil, nil, err
	}
	imp := &sdImport{importer: &importer{file: path, src: d.src}, dir: filepath.Dir(path), strict: map[string]bool{}}
	p := &Preset{}
	if err := imp.entries(f, p); err != nil {
		return nil, nil, err
	}
	if err := imp.reportUnknown(d); err != nil {
		return nil, nil, err
	}
	imp.sdSettings(p, path)
	return finishImport(p, path, imp.warnings)
}

// readSDScriptsTOML decodes a prompt TOML; the decoder it returns holds the line of every key and the
// unknown keys met (collected: whether each is an error depends on the item holding it).
func readSDScriptsTOML(path string) (*sdFile, *decoder, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(raw) == 0 {
		return nil, nil, fmt.Errorf("%s: prompt file is empty", path)
	}
	root := tomlNode(raw, "", tomlLines(string(data)))
	var f sdFile
	d := &decoder{src: newSource(path), collect: true}
	d.decode(root, reflect.ValueOf(&f).Elem(), "")
	if err := d.err(); err != nil {
		return nil, nil, err
	}
	return &f, d, nil
}

// sdDefaults are load_prompt_settings' defaults of every item.
func sdDefaults() sdItem {
	return sdItem{GuidanceScale: ptr(1.0), Resolution: &sdRes{Square(512)}, DynamicResolution: ptr(false),
		BatchSize: ptr(1), DynamicCrops: ptr(false), Multiplier: ptr(1.0), Weight: ptr(1.0)}
}

// sdPrompt is PromptSettings(**merged): positive := target, neutral := unconditional.
func (imp *importer) sdPrompt(it sdItem, path string) (Prompt, error) {
	if it.Target == nil {
		return Prompt{}, imp.errAt(path, "missing required key %q", joinPath(path, "target"))
	}
	e := Prompt{Target: *it.Target, Positive: it.Positive, Unconditional: derefStr(it.Unconditional), Neutral: it.Neutral,
		Action: derefStr(it.Action), GuidanceScale: it.GuidanceScale, BatchSize: *it.BatchSize,
		DynamicResolution: *it.DynamicResolution, DynamicCrops: *it.DynamicCrops,
		Multiplier: it.Multiplier, Weight: it.Weight}
	if e.Positive == nil {
		e.Positive = ptr(e.Target)
	}
	if e.Neutral == nil {
		e.Neutral = ptr(e.Unconditional)
	}
	if e.Action == "" {
		e.Action = ActionErase
	}
	if e.Action != ActionErase && e.Action != ActionEnhance {
		return Prompt{}, imp.errAt(joinPath(path, "action"), "invalid value %q; valid values: erase, enhance", e.Action)
	}
	if len(*it.Resolution) != 1 {
		return Prompt{}, imp.errAt(joinPath(path, "resolution"), "a prompt entry takes one resolution (an integer or [height, width]), got %d", len(*it.Resolution))
	}
	e.Resolution = (*it.Resolution)[0]
	return e, nil
}

// sdTarget is _expand_slider_target's input: target_class, positive, negative, resolutions (from
// resolutions, else resolution), and the neutrals it is expanded over.
func (imp *importer) sdTarget(it sdItem, neutrals []string, path string) (Target, error) {
	t := Target{TargetClass: derefStr(it.TargetClass), Positive: derefStr(it.Positive), Negative: derefStr(it.Negative),
		Neutrals: slices.Clone(neutrals), GuidanceScale: it.GuidanceScale, Multiplier: it.Multiplier, Weight: it.Weight,
		BatchSize: *it.BatchSize, DynamicResolution: *it.DynamicResolution, DynamicCrops: *it.DynamicCrops}
	if strings.TrimSpace(t.Positive) == "" && strings.TrimSpace(t.Negative) == "" {
		return Target{}, imp.errAt(path, "slider target requires either positive or negative prompt")
	}
	res := it.Resolutions
	if res == nil {
		res = it.Resolution
	}
	t.Resolutions = slices.Clone([]Resolution(*res))
	return t, nil
}

// presentKeys lists the keys given in it (non-nil fields), in declaration order.
func presentKeys(it *sdItem) []string {
	v := reflect.ValueOf(it).Elem()
	fs := fieldsOf(v.Type())
	var out []string
	for _, name := range fs.names {
		if !v.FieldByIndex(fs.byName[name].index).IsNil() {
			out = append(out, name)
		}
	}
	return out
}

// filterItem keeps only the fields named in keys.
func filterItem(it sdItem, keys []string) sdItem {
	v := reflect.ValueOf(&it).Elem()
	fs := fieldsOf(v.Type())
	for _, name := range fs.names {
		if !slices.Contains(keys, name) {
			f := v.FieldByIndex(fs.byName[name].index)
			f.Set(reflect.Zero(f.Type()))
		}
	}
	return it
}

// mergeItems returns base with the fields given in over replaced (dict(base, **over)).
func mergeItems(base, over sdItem) sdItem {
	b, o := reflect.ValueOf(&base).Elem(), reflect.ValueOf(over)
	for i := 0; i < b.NumField(); i++ {
		if !o.Field(i).IsNil() {
			b.Field(i).Set(o.Field(i))
		}
	}
	return base
}

func derefStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// sdSettings sets what train_leco.py does with its command-line defaults (the TOML holds none of it).
func (imp *importer) sdSettings(p *Preset, path string) {
	p.Objective = ObjectiveLECO
	if len(p.Targets) > 0 {
		p.Objective = ObjectiveSlider // bidirectional pairs of _expand_slider_target
	}
	p.Mode = ModeLECO
	// set_multiplier(setting.multiplier) around diffusion(): the adapter is on, at ±m, while denoising.
	p.DenoiseWithAdapter = ptr(true)
	p.DenoiseGuidance = ptr(3.0) // --leco_denoise_guidance_scale
	p.MaxDenoisingSteps = 40     // --max_denoising_steps
	// DDPMScheduler(beta_start 0.00085, beta_end 0.012, scaled_linear, 1000, clip_sample False):
	// epsilon, leading spacing, steps_offset 0, built from scratch.
	p.DenoiseScheduler = "ddpm"
	p.DenoiseSchedulerConfig = "anchor"
	p.TimestepSpacing = "leading"
	p.Model.PredictionType = "epsilon"
	p.TargetNorm = "none"
	// networks.lora defaults (--network_dim 4, --network_alpha 1): LoRA on the Linear/1×1 modules
	// inside Transformer2DModel (LierLa).
	p.Network = Network{Targets: "lierla", Rank: 4, Alpha: ptr(1.0), Init: "zero"}
	// --max_train_steps 1600, --learning_rate 1e-4 (AdamW, torch defaults), constant, --max_grad_norm 1,
	// --mixed_precision no and --save_precision None (float32), no min-SNR, no noise offset.
	p.Train.Steps = 1600
	p.Train.LR = 1e-4
	p.Train.Optimizer = "adamw"
	p.Train.LRScheduler = "constant"
	p.Train.MaxGradNorm = 1
	p.Train.DType = "float32"
	p.Train.SaveDType = "float32"
	p.Output.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	imp.warn("%s: sd-scripts takes its training settings from the command line, not from this file; imported with its defaults (networks.lora rank 4 alpha 1, 1600 steps, lr 1e-4 AdamW constant, max_grad_norm 1, DDPM 40 partial-denoise steps, CFG 3, float32); model.name_or_path must be set", path)
}
