package slider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/loba-dev/loba/internal/atomicfile"
)

// Load reads a preset file of any supported format, detected as follows:
//
//   - *.toml: sd-scripts' LECO prompt TOML (ImportSDScriptsTOML);
//   - YAML with a top-level prompts_file key: a LECO run config (ImportLECO), or Concept Sliders' one
//     (ImportConceptSliders) when its prompts file lies in Concept Sliders' trainscripts/textsliders/
//     folder or carries a key only Concept Sliders' files use (guidance, rank);
//   - YAML with top-level job and config keys: an ai-toolkit slider config (ImportAIToolkit);
//   - a YAML list of prompt entries: a bare prompts file, read as Concept Sliders' when an entry carries
//     one of the keys only Concept Sliders' files use (guidance, rank), else as LECO's; the run
//     settings are then the anchor's defaults;
//   - any other YAML mapping: a LOBA preset (ParsePreset).
//
// The preset comes back normalized; warnings list what an importer mapped approximately or ignored.
func Load(path string) (*Preset, []string, error) {
	if strings.EqualFold(filepath.Ext(path), ".toml") {
		return ImportSDScriptsTOML(path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	n, err := parseYAML(data, path)
	if err != nil {
		return nil, nil, err
	}
	switch n.Kind {
	case yaml.SequenceNode:
		if hasEntryKey(n, "guidance", "rank") {
			return ImportConceptSliders(path, "")
		}
		return importLECOPromptsOnly(path)
	case yaml.MappingNode:
		if isAIToolkitConfig(n) {
			return ImportAIToolkit(path)
		}
		if hasKey(n, "prompts_file") {
			if isConceptSlidersConfig(path) {
				return ImportConceptSliders("", path)
			}
			return ImportLECO(path)
		}
	}
	p, err := parsePreset(n, path)
	return p, nil, err
}

// isConceptSlidersConfig tells a Concept Sliders config from a LECO one (same schema) by its prompts
// file: one in Concept Sliders' trainscripts/textsliders/ folder, or carrying a key only Concept
// Sliders' files use (guidance, rank).
func isConceptSlidersConfig(configPath string) bool {
	cfg, d, err := readLECOConfig(configPath, anchorLECO)
	if err != nil {
		return false
	}
	imp := &importer{src: d.src}
	promptsPath, err := imp.findPromptsFile(cfg.PromptsFile, configPath)
	if err != nil {
		return false
	}
	if strings.Contains(filepath.ToSlash(promptsPath), "trainscripts/textsliders/") {
		return true
	}
	data, err := os.ReadFile(promptsPath)
	if err != nil {
		return false
	}
	n, err := parseYAML(data, promptsPath)
	return err == nil && n.Kind == yaml.SequenceNode && hasEntryKey(n, "guidance", "rank")
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

func hasEntryKey(seq *yaml.Node, keys ...string) bool {
	for _, e := range seq.Content {
		if e.Kind != yaml.MappingNode {
			continue
		}
		for _, k := range keys {
			if hasKey(e, k) {
				return true
			}
		}
	}
	return false
}

// ParsePreset reads a LOBA preset (the YAML schema of SCHEMA.md) from data; file names the source in
// error messages. The result is normalized.
func ParsePreset(data []byte, file string) (*Preset, error) {
	n, err := parseYAML(data, file)
	if err != nil {
		return nil, err
	}
	return parsePreset(n, file)
}

// LoadPreset reads a LOBA preset file (no format detection, see Load).
func LoadPreset(path string) (*Preset, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePreset(data, path)
}

func parsePreset(n *yaml.Node, file string) (*Preset, error) {
	p := &Preset{src: newSource(file)}
	d := &decoder{src: p.src}
	d.decode(n, reflect.ValueOf(p).Elem(), "")
	if err := d.err(); err != nil {
		return nil, err
	}
	if err := p.Normalize(); err != nil {
		return nil, err
	}
	return p, nil
}

// Save normalizes p and writes it as a LOBA preset YAML (every setting spelled out), atomically.
// Load(Save(p)) gives back p.
func (p *Preset) Save(path string) error {
	data, err := p.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data)
}

// Marshal normalizes p and returns it as LOBA preset YAML.
func (p *Preset) Marshal() ([]byte, error) {
	if err := p.Normalize(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteString("# LOBA preset (schema: lobanb/slider/SCHEMA.md)\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("slider: encoding preset: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// JSON returns the preset as compact JSON (the keys of the YAML schema), for the LoRA file's metadata.
// Call it on a normalized preset (Load, Normalize).
func (p *Preset) JSON() string {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Sprintf(`{"error": %q}`, err.Error())
	}
	return string(b)
}

// File is the file the preset was read from ("" when built in code or imported from several files,
// then the first of them).
func (p *Preset) File() string {
	if p.src == nil {
		return ""
	}
	return p.src.file
}
