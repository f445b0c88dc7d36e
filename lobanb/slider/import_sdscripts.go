package slider

// Importer for sd-scripts' LECO prompt TOML (kohya-ss/sd-scripts library/leco_train_util.py
// load_prompt_settings, docs/train_leco.md): [[prompts]] LECO pairs and/or [[targets]] slider targets
// (at the top level or in a [slider] table) with top-level defaults, neutrals / neutral /
// neutral_prompt_file / prompt_file. sd-scripts ignores unknown keys of slider targets and of the top
// level; here they are errors naming the key and the valid keys.

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
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
func ImportSDScriptsTOML(path string) (*Preset, []string, error) {
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
	lines := tomlLines(string(data))
	root := tomlNode(raw, "", lines)
	var f sdFile
	d := &decoder{src: newSource(path), hint: "sd-scripts ignores it"}
	d.decode(root, reflect.ValueOf(&f).Elem(), "")
	if err := d.err(); err != nil {
		return nil, nil, err
	}
	imp := &importer{file: path, src: d.src}
	p := &Preset{}
	if err := imp.sdEntries(&f, filepath.Dir(path), p); err != nil {
		return nil, nil, err
	}
	imp.sdSettings(p, path)
	return finishImport(p, path, imp.warnings)
}

// sdDefaults are load_prompt_settings' defaults of every item.
func sdDefaults() sdItem {
	return sdItem{GuidanceScale: ptr(1.0), Resolution: &sdRes{Square(512)}, DynamicResolution: ptr(false),
		BatchSize: ptr(1), DynamicCrops: ptr(false), Multiplier: ptr(1.0), Weight: ptr(1.0)}
}

// sdSection is where the slider settings are read from: the top level, or the [slider] table.
type sdSection struct {
	item        *sdItem  // the section's own keys: defaults, neutrals, or a single item
	path        string   // "" (top level) or "slider"
	targets     []sdItem // its [[targets]]; nil when absent
	targetsPath string   // the key path of targets (path itself for a single top-level target)
}

// sdEntries is load_prompt_settings, producing LOBA prompts and targets with every value explicit.
func (imp *importer) sdEntries(f *sdFile, dir string, p *Preset) error {
	defaults := sdDefaults()
	sec, err := imp.sdSliderSection(f)
	if err != nil {
		return err
	}
	if f.Prompts != nil {
		if err := imp.sdPromptsTable(f, defaults, p); err != nil {
			return err
		}
		if sec.targets != nil {
			imp.warn("%s: sd-scripts reads only [[prompts]] when both [[prompts]] and [[targets]] are given (its [[targets]] are silently dropped); LOBA imports both", imp.file)
		}
	}
	if sec.targets == nil && f.Prompts == nil {
		switch {
		case sec.item.TargetClass != nil:
			sec.targets = []sdItem{*sec.item} // a single slider target given at the top level
			sec.targetsPath = sec.path
		case sec.item.Target != nil: // a single LECO pair given at the top level
			return imp.sdAddPrompt(filterItem(*sec.item, sdPromptKeys), defaults, sec.path, p)
		default:
			return fmt.Errorf("%s: the file contains no [[prompts]] and no slider [[targets]]", imp.file)
		}
	}
	if sec.targets == nil {
		return nil
	}
	if len(sec.targets) == 0 {
		return imp.errAt(sec.targetsPath, "the targets list is empty")
	}
	if sec.targets[0].Target != nil {
		// LECO pairs written as [[targets]].
		pdefs := mergeItems(defaults, filterItem(*sec.item, sdPromptKeys))
		for i, it := range sec.targets {
			if err := imp.sdAddPrompt(it, pdefs, fmt.Sprintf("%s[%d]", sec.targetsPath, i), p); err != nil {
				return err
			}
		}
		return nil
	}
	return imp.sdSliderTargets(sec, defaults, dir, p)
}

// sdSliderSection picks the section the slider settings come from: the [slider] table when present
// (slider_config = data["slider"]: the top-level targets and slider keys are then not read, so they
// are errors), else the top level.
func (imp *importer) sdSliderSection(f *sdFile) (*sdSection, error) {
	if f.Slider == nil {
		return &sdSection{item: &f.Item, targets: f.Targets, targetsPath: "targets"}, nil
	}
	for _, k := range append(append([]string{"target_class", "negative", "resolutions"}, sdNeutralKeys...), "targets") {
		if k == "targets" && f.Targets != nil || k != "targets" && slices.Contains(presentKeys(&f.Item), k) {
			return nil, imp.errAt(k, "sd-scripts ignores top-level %s when a [slider] table is present; move it into [slider]", k)
		}
	}
	return &sdSection{item: &f.Slider.Item, path: "slider", targets: f.Slider.Targets, targetsPath: "slider.targets"}, nil
}

// sdPromptsTable reads [[prompts]] over the top-level prompt defaults: LECO pairs, and slider targets
// (items with target_class) with their own neutral only (append_slider_item).
func (imp *importer) sdPromptsTable(f *sdFile, defaults sdItem, p *Preset) error {
	pdefs := mergeItems(defaults, filterItem(f.Item, sdPromptKeys))
	for i, it := range f.Prompts {
		path := fmt.Sprintf("prompts[%d]", i)
		if it.TargetClass == nil {
			if err := imp.sdAddPrompt(it, pdefs, path, p); err != nil {
				return err
			}
			continue
		}
		if err := imp.checkKeys(&it, path, sdSliderKeys); err != nil {
			return err
		}
		merged := mergeItems(filterItem(pdefs, sdSliderKeys), it)
		t, err := imp.sdTarget(merged, []string{derefStr(it.Neutral)}, path)
		if err != nil {
			return err
		}
		p.Targets = append(p.Targets, t)
	}
	return nil
}

// sdAddPrompt checks the keys of the LECO pair it, merges it over defs and appends it to p.Prompts.
func (imp *importer) sdAddPrompt(it, defs sdItem, path string, p *Preset) error {
	if err := imp.checkKeys(&it, path, sdPromptKeys); err != nil {
		return err
	}
	e, err := imp.sdPrompt(mergeItems(defs, it), path)
	if err != nil {
		return err
	}
	p.Prompts = append(p.Prompts, e)
	return nil
}

// sdSliderTargets reads the section's slider targets over its slider defaults, each expanded over its
// own neutrals, else the section's, else its (merged) neutral.
func (imp *importer) sdSliderTargets(sec *sdSection, defaults sdItem, dir string, p *Preset) error {
	sdefs := mergeItems(defaults, filterItem(*sec.item, sdSliderKeys))
	neutrals, err := imp.sdNeutrals(sec.item, dir, sec.path)
	if err != nil {
		return err
	}
	if len(neutrals) == 0 {
		neutrals = []string{derefStr(sec.item.Neutral)}
	}
	for i, it := range sec.targets {
		path := fmt.Sprintf("%s[%d]", sec.targetsPath, i)
		if sec.targetsPath == sec.path {
			path = sec.path
		} else if err := imp.checkKeys(&it, path, append(slices.Clone(sdSliderKeys), sdNeutralKeys...)); err != nil {
			return err
		}
		itemNeutrals, err := imp.sdTargetNeutrals(&it, neutrals, dir, path)
		if err != nil {
			return err
		}
		merged := mergeItems(sdefs, it)
		if len(itemNeutrals) == 0 {
			itemNeutrals = []string{derefStr(merged.Neutral)}
		}
		t, err := imp.sdTarget(merged, itemNeutrals, path)
		if err != nil {
			return err
		}
		p.Targets = append(p.Targets, t)
	}
	return nil
}

// sdTargetNeutrals picks a slider target's neutrals: its own neutrals / neutral_prompt_file /
// prompt_file, else its neutral, else the section's neutrals.
func (imp *importer) sdTargetNeutrals(it *sdItem, section []string, dir, path string) ([]string, error) {
	switch {
	case it.Neutrals != nil || it.NeutralPromptFile != nil || it.PromptFile != nil:
		return imp.sdItemNeutrals(it, dir, path)
	case it.Neutral != nil:
		return []string{*it.Neutral}, nil
	}
	return section, nil
}

// sdNeutrals collects the slider-level neutral prompts: neutrals, then neutral_prompt_file, then
// prompt_file, concatenated; nil when none is given.
func (imp *importer) sdNeutrals(it *sdItem, dir, path string) ([]string, error) {
	var out []string
	if it.Neutrals != nil {
		out = append(out, *it.Neutrals...)
	}
	for _, f := range []*string{it.NeutralPromptFile, it.PromptFile} {
		if f != nil {
			lines, err := readNonEmptyLines(filepath.Join(dir, *f))
			if err != nil {
				return nil, imp.errAt(path, "%v", err)
			}
			out = append(out, lines...)
		}
	}
	return out, nil
}

// sdItemNeutrals is a target's own override: neutrals, else neutral_prompt_file, else prompt_file.
func (imp *importer) sdItemNeutrals(it *sdItem, dir, path string) ([]string, error) {
	if it.Neutrals != nil {
		return *it.Neutrals, nil
	}
	f := it.NeutralPromptFile
	if f == nil {
		f = it.PromptFile
	}
	lines, err := readNonEmptyLines(filepath.Join(dir, *f))
	if err != nil {
		return nil, imp.errAt(path, "%v", err)
	}
	return lines, nil
}

func readNonEmptyLines(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, l := range strings.Split(string(data), "\n") {
		if s := strings.TrimSpace(l); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
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

// checkKeys reports keys present in it that sd-scripts does not read for this kind of item.
func (imp *importer) checkKeys(it *sdItem, path string, valid []string) error {
	for _, k := range presentKeys(it) {
		if !slices.Contains(valid, k) {
			return fmt.Errorf("%sunknown key %q (sd-scripts does not read it here); valid keys in %s: %s",
				imp.src.where(joinPath(path, k)), joinPath(path, k), path, strings.Join(valid, ", "))
		}
	}
	return nil
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

// tomlLines maps key paths ("guidance_scale", "targets[1].positive", "slider.neutral") to their line
// numbers by scanning the TOML text (BurntSushi/toml does not export key positions).
func tomlLines(text string) map[string]int {
	lines := map[string]int{}
	counts := map[string]int{}
	cur := ""
	for i, raw := range strings.Split(text, "\n") {
		ln, s := i+1, strings.TrimSpace(raw)
		if s == "" || s[0] == '#' {
			continue
		}
		if strings.HasPrefix(s, "[[") {
			name, _, _ := strings.Cut(s[2:], "]]")
			name = strings.TrimSpace(name)
			cur = fmt.Sprintf("%s[%d]", name, counts[name])
			counts[name]++
			lines[cur] = ln
			if _, ok := lines[name]; !ok {
				lines[name] = ln
			}
			continue
		}
		if s[0] == '[' {
			name, _, _ := strings.Cut(s[1:], "]")
			cur = strings.TrimSpace(name)
			lines[cur] = ln
			continue
		}
		if k, _, ok := strings.Cut(s, "="); ok {
			p := joinPath(cur, strings.Trim(strings.TrimSpace(k), `"'`))
			if _, ok := lines[p]; !ok {
				lines[p] = ln
			}
		}
	}
	return lines
}

// tomlNode converts a decoded TOML value into a yaml.Node tree (so the strict decoder serves TOML too),
// with the line of each key from lines.
func tomlNode(v any, path string, lines map[string]int) *yaml.Node {
	line := 0
	for p := path; ; p = parentPath(p) {
		if l, ok := lines[p]; ok {
			line = l
			break
		}
		if p == "" {
			break
		}
	}
	scalar := func(tag, value string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value, Line: line}
	}
	switch x := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: line}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if la, lb := lines[joinPath(path, a)], lines[joinPath(path, b)]; la != lb {
				return la - lb
			}
			return strings.Compare(a, b)
		})
		for _, k := range keys {
			kp := joinPath(path, k)
			val := tomlNode(x[k], kp, lines)
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k, Line: val.Line}, val)
		}
		return n
	case []map[string]any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: line}
		for i, e := range x {
			n.Content = append(n.Content, tomlNode(e, fmt.Sprintf("%s[%d]", path, i), lines))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: line}
		for i, e := range x {
			n.Content = append(n.Content, tomlNode(e, fmt.Sprintf("%s[%d]", path, i), lines))
		}
		return n
	case string:
		return scalar("!!str", x)
	case int64:
		return scalar("!!int", strconv.FormatInt(x, 10))
	case float64:
		switch {
		case math.IsNaN(x):
			return scalar("!!float", ".nan")
		case math.IsInf(x, 1):
			return scalar("!!float", ".inf")
		case math.IsInf(x, -1):
			return scalar("!!float", "-.inf")
		}
		return scalar("!!float", strconv.FormatFloat(x, 'g', -1, 64))
	case bool:
		return scalar("!!bool", strconv.FormatBool(x))
	}
	return scalar("!!str", fmt.Sprint(v))
}
