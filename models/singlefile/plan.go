package singlefile

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"

	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/weights"
)

// Options tunes Check, Load and LoadInto.
type Options struct {
	// DType is the compute dtype floating-point weights are converted to (default Float32).
	DType dtypes.DType
	// Layout is the layout the file is read with. nil detects the kind from the file's keys
	// (Detect) and uses the layout of the real hub configs of that kind (LayoutFor). Give it for
	// checkpoints of other sizes, e.g. built with LayoutFromDir from the pipeline folder the
	// checkpoint was trained from.
	Layout *Layout
	// Trainable marks the variables LoadInto sets trainable; by default they are frozen.
	Trainable bool
}

// Source is where one diffusers weight comes from in a single file: the table row and the stored
// tensor.
type Source struct {
	Row  Key
	Info safetensors.TensorInfo // the single-file tensor Row.From: stored dtype and shape
}

// Plan is a single file matched against the declared weights of the components asked for, before
// any tensor data is read.
type Plan struct {
	Path   string
	Kind   string // KindSD15, KindSDXLBase or the given layout's Kind
	Layout *Layout
	Table  *Table
	// Sources maps component → diffusers key → its source, for every declared key the file
	// provides.
	Sources map[string]map[string]Source
	// Skipped maps the file keys that are not loaded to the reason: ignored by the layout (schedule
	// buffers, EMA bookkeeping, ...) or belonging to a component that was not asked for.
	Skipped map[string]string
	// Problems holds what does not fit, per component; the key "" holds the file keys that belong
	// to no component of the layout. Only components with problems have an entry.
	Problems map[string]*weights.Problems
}

// noProblems reports whether p lists nothing.
func noProblems(p *weights.Problems) bool {
	return len(p.Missing)+len(p.Extra)+len(p.Mismatch)+len(p.Other) == 0
}

// Err joins every problem of the plan into one *weights.Problems naming the file, or returns nil.
func (p *Plan) Err() error {
	all := &weights.Problems{Files: []string{p.Path}}
	for _, comp := range weights.SortedKeys(p.Problems) {
		pr := p.Problems[comp]
		all.Missing = append(all.Missing, pr.Missing...)
		all.Extra = append(all.Extra, pr.Extra...)
		all.Mismatch = append(all.Mismatch, pr.Mismatch...)
		all.Other = append(all.Other, pr.Other...)
	}
	if noProblems(all) {
		return nil
	}
	return all
}

// ComponentErr returns the problems of one component ("" for the keys of no component), or nil.
func (p *Plan) ComponentErr(component string) error {
	if pr, ok := p.Problems[component]; ok && !noProblems(pr) {
		return pr
	}
	return nil
}

// openFile refuses pickles and opens (and fully validates the header of) a single file.
func openFile(path string) (*safetensors.File, error) {
	if err := weights.RefusePickle(path); err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("singlefile: single-file checkpoint: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("singlefile: %s is a folder, not a single-file checkpoint (load a diffusers folder per component)", path)
	}
	return safetensors.Open(path)
}

// DetectPath opens path (headers only) and returns its kind (see Detect). Errors name the file.
func DetectPath(path string) (string, error) {
	f, err := openFile(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	kind, err := Detect(f.Names())
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return kind, nil
}

// PlanFile matches the tensors of a single file (infos, e.g. safetensors.File.Infos(); path is
// only used in messages) against declared (component → diffusers key → shape) through the table
// of layout (nil: detected from the keys, real hub layout). The error return is for what makes
// matching impossible (unknown kind, bad layout); what does not fit is in plan.Problems.
func PlanFile(path string, infos []safetensors.TensorInfo, declared map[string]map[string]shapes.Shape,
	layout *Layout) (*Plan, error) {
	if len(declared) == 0 {
		return nil, fmt.Errorf("singlefile: %s: no component asked for", path)
	}
	byName := make(map[string]safetensors.TensorInfo, len(infos))
	names := make([]string, 0, len(infos))
	for _, ti := range infos {
		byName[ti.Name] = ti
		names = append(names, ti.Name)
	}
	sort.Strings(names)
	layout, err := detectedLayout(names, layout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	table, err := layout.Table()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	plan := &Plan{Path: path, Kind: layout.Kind, Layout: layout, Table: table,
		Sources: map[string]map[string]Source{}, Skipped: map[string]string{}, Problems: map[string]*weights.Problems{}}
	for _, comp := range weights.SortedKeys(declared) {
		if !slices.Contains(table.Components(), comp) {
			plan.problems(comp).Other = append(plan.problems(comp).Other, noComponent(layout.Kind, comp, table.Components()))
		}
	}
	plan.sortFileKeys(names, byName, declared)
	for _, comp := range table.Components() {
		if decl, asked := declared[comp]; asked {
			plan.matchComponent(comp, decl, byName)
		}
	}
	plan.dropEmptyProblems()
	return plan, nil
}

// detectedLayout is layout, or, when nil, the built-in layout of the kind Detect finds in names.
func detectedLayout(names []string, layout *Layout) (*Layout, error) {
	if layout != nil {
		return layout, nil
	}
	kind, err := Detect(names)
	if err != nil {
		return nil, err
	}
	return LayoutFor(kind)
}

func noComponent(kind, comp string, have []string) string {
	return fmt.Sprintf("the %s single-file layout has no component %q (its components: %s)", kind, comp, strings.Join(have, ", "))
}

// problems returns the problems of comp, adding an entry for it.
func (p *Plan) problems(comp string) *weights.Problems {
	pr, ok := p.Problems[comp]
	if !ok {
		pr = &weights.Problems{Files: []string{p.Path}}
		p.Problems[comp] = pr
	}
	return pr
}

// sortFileKeys files every key of the file: mapped, skipped (ignored, or of a component not asked
// for) or unexpected.
func (p *Plan) sortFileKeys(names []string, byName map[string]safetensors.TensorInfo, declared map[string]map[string]shapes.Shape) {
	base := filepath.Base(p.Path)
	for _, name := range names {
		rows := p.Table.Lookup(name)
		if len(rows) == 0 {
			if reason, ok := p.Table.Ignored(name); ok {
				p.Skipped[name] = reason
				continue
			}
			pr := p.problems(p.Layout.componentOf(name))
			pr.Extra = append(pr.Extra, fmt.Sprintf("%s %v (in %s)", name, byName[name].Shape, base))
			continue
		}
		if _, asked := declared[rows[0].Component]; !asked {
			p.Skipped[name] = fmt.Sprintf("weight of component %s, which was not asked for", rows[0].Component)
		}
	}
}

// matchComponent checks the table rows of one component asked for: present, declared and of the
// declared shape. Declared keys no row produces are missing.
func (p *Plan) matchComponent(comp string, decl map[string]shapes.Shape, byName map[string]safetensors.TensorInfo) {
	pr := p.problems(comp)
	produced := map[string]bool{}
	missingFrom := map[string][]string{}
	var missingOrder []string
	for _, row := range p.Table.Component(comp) {
		produced[row.To] = true
		want, declaredKey := decl[row.To]
		if !declaredKey {
			pr.Other = append(pr.Other, fmt.Sprintf("%s/%s (from %s): the model does not declare it "+
				"(the layout does not fit the model config)", comp, row.To, row.From))
			continue
		}
		info, ok := byName[row.From]
		if !ok {
			if _, seen := missingFrom[row.From]; !seen {
				missingOrder = append(missingOrder, row.From)
			}
			missingFrom[row.From] = append(missingFrom[row.From], fmt.Sprintf("%s/%s %v", comp, row.To, want.Dimensions))
			continue
		}
		p.matchRow(comp, row, info, want)
	}
	for _, from := range missingOrder {
		pr.Missing = append(pr.Missing, fmt.Sprintf("%s (→ %s)", from, strings.Join(missingFrom[from], ", ")))
	}
	for _, key := range weights.SortedKeys(decl) {
		if !produced[key] {
			pr.Missing = append(pr.Missing, fmt.Sprintf("%s/%s %v: no key of the %s single-file layout produces it",
				comp, key, decl[key].Dimensions, p.Layout.Kind))
		}
	}
}

// matchRow checks the stored tensor of one row against the declared shape: a mismatch, or the
// row's source.
func (p *Plan) matchRow(comp string, row Key, info safetensors.TensorInfo, want shapes.Shape) {
	pr, base := p.problems(comp), filepath.Base(p.Path)
	if !info.DType.IsFloat() && want.DType.IsFloat() {
		pr.Mismatch = append(pr.Mismatch, fmt.Sprintf("%s/%s: %s key %s has dtype %s, the model wants a floating-point tensor",
			comp, row.To, base, row.From, info.DType))
		return
	}
	got, err := row.ConvertShape(info.Shape)
	if err != nil {
		pr.Mismatch = append(pr.Mismatch, fmt.Sprintf("%s/%s: %s key %s: %v", comp, row.To, base, row.From, err))
		return
	}
	if !slices.Equal(got, want.Dimensions) {
		pr.Mismatch = append(pr.Mismatch, fmt.Sprintf("%s/%s: %s key %s has shape %v, which gives %v after %s; the model wants %v",
			comp, row.To, base, row.From, info.Shape, got, opName(row), want.Dimensions))
		return
	}
	if p.Sources[comp] == nil {
		p.Sources[comp] = map[string]Source{}
	}
	info.Shape = append([]int(nil), info.Shape...)
	p.Sources[comp][row.To] = Source{Row: row, Info: info}
}

// dropEmptyProblems removes the components without problems and sorts the missing and unexpected
// keys.
func (p *Plan) dropEmptyProblems() {
	for comp, pr := range p.Problems {
		if noProblems(pr) {
			delete(p.Problems, comp)
			continue
		}
		sort.Strings(pr.Missing)
		sort.Strings(pr.Extra)
	}
}

func opName(row Key) string {
	if row.Op == OpSplitQKV {
		return fmt.Sprintf("%s:%d", row.Op, row.Part)
	}
	return row.Op.String()
}

// componentOf attributes a file key to a component by its prefix ("" when none matches).
func (l *Layout) componentOf(key string) string {
	switch {
	case l.UNetPrefix != "" && strings.HasPrefix(key, l.UNetPrefix):
		return "unet"
	case l.VAEPrefix != "" && strings.HasPrefix(key, l.VAEPrefix):
		return "vae"
	}
	for _, te := range l.Text {
		if te.Prefix != "" && strings.HasPrefix(key, te.Prefix) {
			return te.Component
		}
	}
	return ""
}

// Check validates a single file against declared without reading tensor data: the header
// (safetensors.Open), the keys through the layout's table and every converted shape. It returns
// the plan and plan.Err(); other errors (pickle, unreadable file, unknown kind) come with a nil
// plan.
func Check(path string, declared map[string]map[string]shapes.Shape, opts Options) (*Plan, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	plan, err := PlanFile(path, f.Infos(), declared, opts.Layout)
	if err != nil {
		return nil, err
	}
	return plan, plan.Err()
}
