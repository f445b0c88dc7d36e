package slider

// TOML files read by the strict YAML-node decoder: the decoded TOML value converted into a yaml.Node
// tree, with the line of every key found by scanning the text.

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

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
