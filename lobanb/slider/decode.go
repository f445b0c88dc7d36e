package slider

// Strict decoding of YAML nodes (and of TOML converted to YAML nodes) into typed structs: every key is
// checked against the struct's yaml tags, so an unknown key anywhere is reported with its key path, its
// line and the valid keys at that level, and every type error names the key path and line. yaml.v3's
// own KnownFields reports neither the path nor the valid keys, hence this walk.

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// source remembers where a preset came from: the file name and the line of every key path decoded
// from it ("train.optimizer", "prompts[0].action"), so that later validation errors can point at it.
type source struct {
	file  string
	lines map[string]int
}

func newSource(file string) *source { return &source{file: file, lines: map[string]int{}} }

// where returns "file:line: " for path (or for its nearest ancestor with a known line), "file: " when
// no line is known, and "" without a source.
func (s *source) where(path string) string {
	if s == nil {
		return ""
	}
	for p := path; ; p = parentPath(p) {
		if line, ok := s.lines[p]; ok && line > 0 {
			if s.file == "" {
				return fmt.Sprintf("line %d: ", line)
			}
			return fmt.Sprintf("%s:%d: ", s.file, line)
		}
		if p == "" {
			break
		}
	}
	if s.file == "" {
		return ""
	}
	return s.file + ": "
}

// parentPath strips the last element of a key path: "a.b[2].c" → "a.b[2]" → "a.b" → "a" → "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decoder walks a yaml.Node tree into a Go value.
type decoder struct {
	src *source
	// lenient accepts numeric strings for numeric fields (pydantic coerces "1e-4", which PyYAML reads
	// as a string, into a float): used for the anchors' files, never for LOBA presets.
	lenient bool
	// hint is appended to unknown-key messages (e.g. "LECO's pydantic config ignores it, and so does the import").
	hint string
	// warnUnknown makes an unknown key a warning instead of an error: the anchors' files, whose
	// parsers ignore unknown keys (so the import, ignoring them too, trains what the anchor trains).
	warnUnknown bool
	// collect records unknown keys in unknown instead of reporting them, for an importer that decides
	// per key (sd-scripts ignores some and stops on others).
	collect bool
	unknown []unknownHit
	// ignored, when set, reports whether an unknown key is one the anchor is known to ignore; it then
	// returns the warning to record instead of an error.
	ignored func(path, key string) (warning string, ok bool)

	warnings []string
	errs     []error
}

func (d *decoder) errorf(path string, format string, args ...any) {
	d.errs = append(d.errs, fmt.Errorf("%s%s: %s", d.src.where(path), path, fmt.Sprintf(format, args...)))
}

func (d *decoder) err() error { return errors.Join(d.errs...) }

// decode decodes n into v (settable), at key path path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if _, seen := d.src.lines[path]; !seen {
		d.src.lines[path] = n.Line
	}
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if v.Kind() == reflect.Pointer {
		e := reflect.New(v.Type().Elem())
		d.decode(n, e.Elem(), path)
		v.Set(e)
		return
	}
	if v.CanAddr() {
		if u, ok := v.Addr().Interface().(yaml.Unmarshaler); ok {
			if err := u.UnmarshalYAML(n); err != nil {
				d.errorf(path, "%v", err)
			}
			return
		}
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Array:
		d.decodeArray(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

// decodeArray decodes a list of exactly v.Len() items (a box [x0, y0, x1, y1]).
func (d *decoder) decodeArray(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode || len(n.Content) != v.Len() {
		got := describe(n)
		if n.Kind == yaml.SequenceNode {
			got = fmt.Sprintf("a list of %d", len(n.Content))
		}
		d.errorf(path, "expected a list of %d, got %s", v.Len(), got)
		return
	}
	for i, c := range n.Content {
		d.decode(c, v.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
}

// decodeMap decodes a mapping with string keys (network.layer_multipliers); the key path of a value is
// path["key"], as its keys may hold dots.
func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if v.Type().Key().Kind() != reflect.String {
		d.errorf(path, "internal: unsupported map key type %s", v.Type().Key())
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(path, "expected a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := fmt.Sprintf("%s[%q]", path, k.Value)
		d.src.lines[kp] = k.Line
		if k.Value == "<<" {
			d.errorf(kp, "YAML merge keys (<<) are not supported; write the keys out")
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(kp, "expected a key that is a string, got %s", describe(k))
			continue
		}
		key := reflect.ValueOf(k.Value).Convert(v.Type().Key())
		if m.MapIndex(key).IsValid() {
			d.errorf(kp, "key %q is given twice", k.Value)
			continue
		}
		if isNull(val) { // a zero would pass for a value (a layer multiplier of 0 disables the layer)
			d.errorf(kp, "expected a value, got null")
			continue
		}
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, e, kp)
		m.SetMapIndex(key, e)
	}
	v.Set(m)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node for error messages: `"abc" (a string)`, "a list", "a mapping".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		kind := map[string]string{"!!str": "a string", "!!int": "an integer", "!!float": "a number",
			"!!bool": "a boolean", "!!null": "null"}[n.ShortTag()]
		if kind == "" {
			kind = n.ShortTag()
		}
		return fmt.Sprintf("%q (%s)", n.Value, kind)
	}
	return "an unsupported node"
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	want := map[reflect.Kind]string{reflect.String: "a string", reflect.Bool: "a boolean (true or false)",
		reflect.Int: "an integer", reflect.Int64: "an integer", reflect.Float64: "a number"}[v.Kind()]
	if want == "" {
		d.errorf(path, "internal: unsupported field type %s", v.Type())
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(path, "expected %s, got %s", want, describe(n))
		return
	}
	tag := n.ShortTag()
	bad := func() { d.errorf(path, "expected %s, got %s", want, describe(n)) }
	switch v.Kind() {
	case reflect.String:
		if tag == "!!str" || tag == "!!int" || tag == "!!float" || tag == "!!bool" {
			v.SetString(n.Value)
			return
		}
		bad()
	case reflect.Bool:
		if tag != "!!bool" {
			bad()
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			bad()
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		f, ok := d.number(n)
		if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			bad()
			return
		}
		v.SetInt(int64(f))
	case reflect.Float64:
		f, ok := d.number(n)
		if !ok {
			bad()
			return
		}
		v.SetFloat(f)
	}
}

// number parses an int or float scalar (and, when lenient, a numeric string).
func (d *decoder) number(n *yaml.Node) (float64, bool) {
	switch n.ShortTag() {
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return 0, false
		}
		return float64(i), true
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return 0, false
		}
		return f, true
	case "!!str":
		if d.lenient {
			f, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64)
			return f, err == nil
		}
	}
	return 0, false
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		what := "a mapping of keys"
		if path == "" {
			what = "a mapping of keys at the top level"
		}
		d.errorf(path, "expected %s, got %s", what, describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		kp := joinPath(path, key)
		d.src.lines[kp] = k.Line
		if key == "<<" {
			d.errorf(kp, "YAML merge keys (<<) are not supported; write the keys out")
			continue
		}
		if seen[key] {
			d.errorf(kp, "key %q is given twice", key)
			continue
		}
		seen[key] = true
		f, ok := fields.byName[key]
		if !ok {
			if d.ignored != nil {
				if w, ok := d.ignored(path, key); ok {
					d.warnings = append(d.warnings, d.src.where(kp)+w)
					continue
				}
			}
			d.unknownKey(kp, path, key, fields.names)
			continue
		}
		d.decode(val, v.FieldByIndex(f.index), kp)
	}
	for _, name := range fields.names {
		if fields.byName[name].required && !seen[name] {
			d.errs = append(d.errs, fmt.Errorf("%smissing required key %q", d.src.where(path), joinPath(path, name)))
		}
	}
}

// unknownHit is an unknown key met while decoding: its full path, the path of the mapping holding it
// (its "level"), the key and the valid keys at that level.
type unknownHit struct {
	kp, path, key string
	valid         []string
}

// unknownKey records an unknown key: an error, a warning (warnUnknown) or a hit (collect).
func (d *decoder) unknownKey(kp, path, key string, valid []string) {
	u := unknownHit{kp: kp, path: path, key: key, valid: valid}
	switch {
	case d.collect:
		d.unknown = append(d.unknown, u)
	case d.warnUnknown:
		d.warnings = append(d.warnings, d.unknownMessage(u, true))
	default:
		d.errs = append(d.errs, errors.New(d.unknownMessage(u, false)))
	}
}

// unknownMessage describes an unknown key: its file and line, full path, "ignored" when it is only a
// warning, a suggestion when a valid key (or a well-known synonym from the anchors) is close, the
// decoder's hint, and every valid key at that level.
func (d *decoder) unknownMessage(u unknownHit, ignored bool) string {
	level := "at the top level"
	if u.path != "" {
		level = "in " + u.path
	}
	msg := fmt.Sprintf("%sunknown key %q", d.src.where(u.kp), u.kp)
	if ignored {
		msg += " ignored"
	}
	if s := suggest(u.key, u.valid); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	if d.hint != "" {
		msg += " (" + d.hint + ")"
	}
	return msg + fmt.Sprintf("; valid keys %s: %s", level, strings.Join(u.valid, ", "))
}

// synonyms maps key names used by the anchors (and common misspellings' targets) to LOBA's names.
var synonyms = map[string]string{
	"learning_rate": "lr", "unet_lr": "lr", "iterations": "steps", "max_train_steps": "steps",
	"optimizer_type": "optimizer", "network_dim": "rank", "dim": "rank", "network_alpha": "alpha",
	"linear": "rank", "linear_alpha": "alpha", "precision": "dtype", "mixed_precision": "dtype",
	"noise_scheduler": "denoise_scheduler", "guidance": "guidance_scale", "training_method": "targets",
	"type": "targets", "per_steps": "save_every", "save_every_n_steps": "save_every",
	"sample_every": "every", "sample_steps": "steps", "pretrained_model": "model", "save": "output",
	"lr_warmup_steps": "warmup_steps", "v_pred": "prediction_type", "batch": "batch_size",
}

// suggest returns the valid key closest to key (by edit distance, or through a synonym), or "".
func suggest(key string, valid []string) string {
	best, bestD := "", 1<<30
	try := func(cand, target string) {
		if !slices.Contains(valid, target) {
			return
		}
		dist := editDistance(key, cand)
		limit := 2
		if len(cand) <= 4 {
			limit = 1
		}
		if dist <= limit && dist < bestD {
			best, bestD = target, dist
		}
	}
	for _, v := range valid {
		try(v, v)
	}
	for syn, target := range synonyms {
		try(syn, target)
	}
	return best
}

// editDistance is the optimal-string-alignment distance (Levenshtein plus adjacent transpositions).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// structFields lists a struct's keys in declaration order, following `yaml:",inline"` embeds.
type structFields struct {
	names  []string
	byName map[string]fieldInfo
}

type fieldInfo struct {
	index    []int
	required bool
}

var fieldsCache sync.Map // reflect.Type → *structFields

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldsCache.Load(t); ok {
		return f.(*structFields)
	}
	fs := &structFields{byName: map[string]fieldInfo{}}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			tag := sf.Tag.Get("yaml")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			index := append(slices.Clone(prefix), i)
			if strings.Contains(opts, "inline") {
				walk(sf.Type, index)
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name)
			}
			fs.names = append(fs.names, name)
			fs.byName[name] = fieldInfo{index: index, required: sf.Tag.Get("slider") == "required"}
		}
	}
	walk(t, nil)
	fieldsCache.Store(t, fs)
	return fs
}

// parseYAML parses data into a node tree; an empty document, or one whose aliases expand past
// aliasBudget (checkAliasBudget), is an error naming the file.
func parseYAML(data []byte, file string) (*yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if err := checkAliasBudget(&root, file); err != nil {
		return nil, err
	}
	n := &root
	for n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil, fmt.Errorf("%s: the file is empty", file)
		}
		n = n.Content[0]
	}
	if isNull(n) {
		return nil, fmt.Errorf("%s: the file is empty", file)
	}
	return n, nil
}
