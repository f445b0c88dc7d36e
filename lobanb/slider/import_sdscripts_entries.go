package slider

// load_prompt_settings of sd-scripts' leco_train_util.py, key by key: what it reads becomes LOBA prompts
// and targets; what it ignores is ignored with a warning; what it stops on is an error.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// sdImport is one import of a sd-scripts prompt TOML.
type sdImport struct {
	*importer
	dir string // the TOML's folder: neutral prompt files are read relative to it
	// strict holds the key paths of the LECO pairs (PromptSettings(**item): an unknown key stops
	// sd-scripts); every other item ignores unknown keys.
	strict map[string]bool
}

// sdSection is where the slider settings are read from: the top level, or the [slider] table.
type sdSection struct {
	item        *sdItem  // the section's own keys: defaults, neutrals, or a single item
	path        string   // "" (top level) or "slider"
	targets     []sdItem // its [[targets]]; nil when absent
	targetsPath string   // the key path of targets (path itself for a single top-level target)
}

// entries is load_prompt_settings, producing LOBA prompts and targets with every value explicit.
func (imp *sdImport) entries(f *sdFile, p *Preset) error {
	defaults := sdDefaults()
	if f.Prompts != nil {
		imp.ignoreKeys(&f.Item, "", sdPromptKeys, "with [[prompts]], sd-scripts reads only the prompt defaults at the top level")
		if f.Targets != nil {
			imp.warnAt("targets", "ignored, as sd-scripts ignores [[targets]] when the file has [[prompts]]; give slider targets as [[prompts]] items with target_class, or in a file of their own")
		}
		if f.Slider != nil {
			imp.warnAt("slider", "ignored, as sd-scripts ignores the [slider] table when the file has [[prompts]]")
		}
		return imp.promptsTable(f, defaults, p)
	}
	sec := imp.sliderSection(f)
	if sec.targets == nil {
		switch {
		case sec.item.TargetClass != nil:
			sec.targets = []sdItem{*sec.item} // a single slider target given in the section
			sec.targetsPath = sec.path
		case sec.item.Target != nil: // a single LECO pair given in the section
			imp.strict[sec.path] = true
			return imp.addPrompt(*sec.item, defaults, sec.path, p)
		default:
			return fmt.Errorf("%s: the file contains no [[prompts]] and no slider [[targets]]", imp.file)
		}
	}
	if len(sec.targets) == 0 {
		return imp.errAt(sec.targetsPath, "the targets list is empty")
	}
	if sec.targets[0].Target != nil { // LECO pairs written as [[targets]]
		imp.ignoreKeys(sec.item, sec.path, sdPromptKeys, "with LECO pairs as targets, sd-scripts reads only the prompt defaults here")
		pdefs := mergeItems(defaults, filterItem(*sec.item, sdPromptKeys))
		for i, it := range sec.targets {
			path := fmt.Sprintf("%s[%d]", sec.targetsPath, i)
			imp.strict[path] = true
			if err := imp.addPrompt(it, pdefs, path, p); err != nil {
				return err
			}
		}
		return nil
	}
	imp.ignoreKeys(sec.item, sec.path, sdSliderItemKeys(), "sd-scripts reads only the slider keys and the neutrals here")
	return imp.sliderTargets(sec, defaults, p)
}

// sdSliderItemKeys are the keys a slider target (or the slider section) is read with.
func sdSliderItemKeys() []string { return append(slices.Clone(sdSliderKeys), sdNeutralKeys...) }

// sliderSection picks the section the slider settings come from: the [slider] table when present
// (slider_config = data["slider"]: the top-level keys and targets are then ignored, with a warning),
// else the top level.
func (imp *sdImport) sliderSection(f *sdFile) *sdSection {
	if f.Slider == nil {
		return &sdSection{item: &f.Item, targets: f.Targets, targetsPath: "targets"}
	}
	imp.ignoreKeys(&f.Item, "", nil, "with a [slider] table, sd-scripts reads the slider settings from it only; move the key into [slider]")
	if f.Targets != nil {
		imp.warnAt("targets", "ignored, as sd-scripts reads the targets of the [slider] table only when it is present; move them into [slider]")
	}
	return &sdSection{item: &f.Slider.Item, path: "slider", targets: f.Slider.Targets, targetsPath: "slider.targets"}
}

// promptsTable reads [[prompts]] over the top-level prompt defaults: LECO pairs, and slider targets
// (items with target_class) with their own neutral only (append_slider_item).
func (imp *sdImport) promptsTable(f *sdFile, defaults sdItem, p *Preset) error {
	pdefs := mergeItems(defaults, filterItem(f.Item, sdPromptKeys))
	for i, it := range f.Prompts {
		path := fmt.Sprintf("prompts[%d]", i)
		if it.TargetClass == nil {
			imp.strict[path] = true
			if err := imp.addPrompt(it, pdefs, path, p); err != nil {
				return err
			}
			continue
		}
		imp.ignoreKeys(&it, path, sdSliderKeys, "a slider item of [[prompts]] is read with the slider keys and its own neutral only")
		merged := mergeItems(filterItem(pdefs, sdSliderKeys), filterItem(it, sdSliderKeys))
		t, err := imp.sdTarget(merged, []string{derefStr(it.Neutral)}, path)
		if err != nil {
			return err
		}
		p.Targets = append(p.Targets, t)
	}
	return nil
}

// addPrompt checks the keys of the LECO pair it (PromptSettings(**merged) stops on any other key),
// merges it over defs and appends it to p.Prompts.
func (imp *sdImport) addPrompt(it, defs sdItem, path string, p *Preset) error {
	for _, k := range presentKeys(&it) {
		if !slices.Contains(sdPromptKeys, k) {
			return fmt.Errorf("%sunknown key %q (sd-scripts stops on it: its PromptSettings takes no such argument); valid keys in %s: %s",
				imp.src.where(joinPath(path, k)), joinPath(path, k), path, strings.Join(sdPromptKeys, ", "))
		}
	}
	e, err := imp.sdPrompt(mergeItems(defs, it), path)
	if err != nil {
		return err
	}
	p.Prompts = append(p.Prompts, e)
	return nil
}

// ignoreKeys warns for each key given in it that is not in read (the keys sd-scripts reads there).
func (imp *sdImport) ignoreKeys(it *sdItem, path string, read []string, why string) {
	for _, k := range presentKeys(it) {
		if !slices.Contains(read, k) {
			imp.warnAt(joinPath(path, k), "ignored, as sd-scripts ignores it (%s)", why)
		}
	}
}

// reportUnknown reports the unknown keys the decoder met: an error in a LECO pair (sd-scripts stops on
// it), else a warning (sd-scripts ignores it).
func (imp *sdImport) reportUnknown(d *decoder) error {
	var errs []error
	for _, u := range d.unknown {
		if imp.strict[u.path] {
			d.hint = "sd-scripts stops on it: its PromptSettings takes no such argument"
			errs = append(errs, errors.New(d.unknownMessage(u, false)))
			continue
		}
		d.hint = "sd-scripts ignores it, and so does the import"
		imp.warnings = append(imp.warnings, d.unknownMessage(u, true))
	}
	return errors.Join(errs...)
}

// sliderTargets reads the section's slider targets over its slider defaults, each expanded over its
// own neutrals, else the section's, else its (merged) neutral.
func (imp *sdImport) sliderTargets(sec *sdSection, defaults sdItem, p *Preset) error {
	sdefs := mergeItems(defaults, filterItem(*sec.item, sdSliderKeys))
	neutrals, err := imp.sdNeutrals(sec.item, sec.path)
	if err != nil {
		return err
	}
	if len(neutrals) == 0 {
		neutrals = []string{derefStr(sec.item.Neutral)}
	}
	for i, it := range sec.targets {
		path := fmt.Sprintf("%s[%d]", sec.targetsPath, i)
		if sec.targetsPath == sec.path {
			path = sec.path // the section itself, its keys checked above
		} else {
			imp.ignoreKeys(&it, path, sdSliderItemKeys(), "a slider target is read with the slider keys and its neutrals only")
		}
		itemNeutrals, err := imp.sdTargetNeutrals(&it, neutrals, path)
		if err != nil {
			return err
		}
		merged := mergeItems(sdefs, filterItem(it, sdSliderKeys))
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
func (imp *sdImport) sdTargetNeutrals(it *sdItem, section []string, path string) ([]string, error) {
	switch {
	case it.Neutrals != nil || it.NeutralPromptFile != nil || it.PromptFile != nil:
		return imp.sdItemNeutrals(it, path)
	case it.Neutral != nil:
		return []string{*it.Neutral}, nil
	}
	return section, nil
}

// sdNeutrals collects the slider-level neutral prompts: neutrals, then neutral_prompt_file, then
// prompt_file, concatenated; nil when none is given.
func (imp *sdImport) sdNeutrals(it *sdItem, path string) ([]string, error) {
	var out []string
	if it.Neutrals != nil {
		out = append(out, *it.Neutrals...)
	}
	for _, f := range []*string{it.NeutralPromptFile, it.PromptFile} {
		if f != nil {
			lines, err := imp.readNeutrals(*f, path)
			if err != nil {
				return nil, err
			}
			out = append(out, lines...)
		}
	}
	return out, nil
}

// sdItemNeutrals is a target's own override: neutrals, else neutral_prompt_file, else prompt_file.
func (imp *sdImport) sdItemNeutrals(it *sdItem, path string) ([]string, error) {
	if it.Neutrals != nil {
		return *it.Neutrals, nil
	}
	f := it.NeutralPromptFile
	if f == nil {
		f = it.PromptFile
	}
	return imp.readNeutrals(*f, path)
}

// readNeutrals reads a neutral prompt file ("~" expanded, relative to the TOML's folder as sd-scripts
// reads it): its non-empty lines, trimmed.
func (imp *sdImport) readNeutrals(name, path string) ([]string, error) {
	file, err := ExpandHome(name)
	if err != nil {
		return nil, imp.errAt(path, "%v", err)
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(imp.dir, file)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, imp.errAt(path, "%v", err)
	}
	out := []string{}
	for _, l := range strings.Split(string(data), "\n") {
		if s := strings.TrimSpace(l); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}
