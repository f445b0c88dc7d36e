package weights

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/dtypes/gotype"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/exceptions"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/safetensors"
)

// Loading of LDM/SGM single-file checkpoints (v1-5-pruned-emaonly.safetensors,
// sd_xl_base_1.0.safetensors) into diffusers-named variables, as diffusers'
// FromSingleFileMixin.from_single_file does: the file's kind is detected from its keys, the key
// table of its layout (singlefile_tables.go) renames every tensor, and the table's operation
// (copy, squeeze 1×1, transpose, split fused q/k/v) turns it into the diffusers tensor. As with
// LoadFiles, every missing, unexpected and mis-shaped key is reported together before any data is
// read.

// SingleFileOptions tunes CheckSingleFile, LoadSingleFile and LoadSingleFileInto.
type SingleFileOptions struct {
	// DType is the compute dtype floating-point weights are converted to (default Float32).
	DType dtypes.DType
	// Layout is the layout the file is read with. nil detects the kind from the file's keys
	// (DetectSingleFile) and uses the layout of the real hub configs of that kind
	// (SingleFileLayoutFor). Give it for checkpoints of other sizes, e.g. built with
	// SingleFileLayoutFromDir from the pipeline folder the checkpoint was trained from.
	Layout *SingleFileLayout
	// Trainable marks the variables LoadSingleFileInto sets trainable; by default they are frozen.
	Trainable bool
}

// SingleFileSource is where one diffusers weight comes from in a single file: the table row and
// the stored tensor.
type SingleFileSource struct {
	Row  SingleFileKey
	Info safetensors.TensorInfo // the single-file tensor Row.From: stored dtype and shape
}

// SingleFilePlan is a single file matched against the declared weights of the components asked
// for, before any tensor data is read.
type SingleFilePlan struct {
	Path   string
	Kind   string // SingleFileSD15, SingleFileSDXLBase or the given layout's Kind
	Layout *SingleFileLayout
	Table  *SingleFileTable
	// Sources maps component → diffusers key → its source, for every declared key the file
	// provides.
	Sources map[string]map[string]SingleFileSource
	// Skipped maps the file keys that are not loaded to the reason: ignored by the layout (schedule
	// buffers, EMA bookkeeping, ...) or belonging to a component that was not asked for.
	Skipped map[string]string
	// Problems holds what does not fit, per component; the key "" holds the file keys that belong
	// to no component of the layout. Only components with problems have an entry.
	Problems map[string]*Problems
}

// Err joins every problem of the plan into one *Problems naming the file, or returns nil.
func (p *SingleFilePlan) Err() error {
	all := &Problems{Files: []string{p.Path}}
	for _, comp := range SortedKeys(p.Problems) {
		pr := p.Problems[comp]
		all.Missing = append(all.Missing, pr.Missing...)
		all.Extra = append(all.Extra, pr.Extra...)
		all.Mismatch = append(all.Mismatch, pr.Mismatch...)
		all.Other = append(all.Other, pr.Other...)
	}
	if all.empty() {
		return nil
	}
	return all
}

// ComponentErr returns the problems of one component ("" for the keys of no component), or nil.
func (p *SingleFilePlan) ComponentErr(component string) error {
	if pr, ok := p.Problems[component]; ok && !pr.empty() {
		return pr
	}
	return nil
}

// SingleFileConfig returns the verbatim hub config.json a built-in layout is generated from:
// kind SingleFileSD15 or SingleFileSDXLBase, component "unet", "vae", "text_encoder" or
// "text_encoder_2".
func SingleFileConfig(kind, component string) ([]byte, error) {
	configs, err := singleFileConfigs()
	if err != nil {
		return nil, err
	}
	s, ok := configs[kind+"/"+component]
	if !ok {
		var valid []string
		for k := range configs {
			valid = append(valid, k)
		}
		sort.Strings(valid)
		return nil, fmt.Errorf("weights: no built-in single-file config %q (valid: %s)", kind+"/"+component, strings.Join(valid, ", "))
	}
	return []byte(s), nil
}

// openSingleFile refuses pickles and opens (and fully validates the header of) a single file.
func openSingleFile(path string) (*safetensors.File, error) {
	if err := RefusePickle(path); err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("weights: single-file checkpoint: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("weights: %s is a folder, not a single-file checkpoint (load a diffusers folder per component)", path)
	}
	return safetensors.Open(path)
}

// DetectSingleFilePath opens path (headers only) and returns its kind (see DetectSingleFile).
// Errors name the file.
func DetectSingleFilePath(path string) (string, error) {
	f, err := openSingleFile(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	kind, err := DetectSingleFile(f.Names())
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return kind, nil
}

// PlanSingleFile matches the tensors of a single file (infos, e.g. safetensors.File.Infos(); path
// is only used in messages) against declared (component → diffusers key → shape) through the
// table of layout (nil: detected from the keys, real hub layout). The error return is for what
// makes matching impossible (unknown kind, bad layout); what does not fit is in plan.Problems.
func PlanSingleFile(path string, infos []safetensors.TensorInfo, declared map[string]map[string]shapes.Shape,
	layout *SingleFileLayout) (*SingleFilePlan, error) {
	if len(declared) == 0 {
		return nil, fmt.Errorf("weights: %s: no component asked for", path)
	}
	byName := make(map[string]safetensors.TensorInfo, len(infos))
	names := make([]string, 0, len(infos))
	for _, ti := range infos {
		byName[ti.Name] = ti
		names = append(names, ti.Name)
	}
	sort.Strings(names)
	if layout == nil {
		kind, err := DetectSingleFile(names)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if layout, err = SingleFileLayoutFor(kind); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	table, err := safeTable(layout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	plan := &SingleFilePlan{Path: path, Kind: layout.Kind, Layout: layout, Table: table,
		Sources: map[string]map[string]SingleFileSource{}, Skipped: map[string]string{}, Problems: map[string]*Problems{}}
	probs := func(comp string) *Problems {
		p, ok := plan.Problems[comp]
		if !ok {
			p = &Problems{Files: []string{path}}
			plan.Problems[comp] = p
		}
		return p
	}
	base := filepath.Base(path)
	tableComps := table.Components()
	for _, comp := range SortedKeys(declared) {
		if !contains(tableComps, comp) {
			probs(comp).Other = append(probs(comp).Other, fmt.Sprintf("the %s single-file layout has no component %q (its components: %s)",
				layout.Kind, comp, strings.Join(tableComps, ", ")))
		}
	}

	// File keys: mapped, skipped (ignored, or of a component not asked for) or unexpected.
	for _, name := range names {
		rows := table.Lookup(name)
		if len(rows) == 0 {
			if reason, ok := table.Ignored(name); ok {
				plan.Skipped[name] = reason
				continue
			}
			comp := layout.componentOf(name)
			probs(comp).Extra = append(probs(comp).Extra, fmt.Sprintf("%s %v (in %s)", name, byName[name].Shape, base))
			continue
		}
		if _, asked := declared[rows[0].Component]; !asked {
			plan.Skipped[name] = fmt.Sprintf("weight of component %s, which was not asked for", rows[0].Component)
		}
	}

	// Table rows of the components asked for: present, declared and of the declared shape.
	for _, comp := range tableComps {
		decl, asked := declared[comp]
		if !asked {
			continue
		}
		produced := map[string]bool{}
		missingFrom := map[string][]string{}
		var missingOrder []string
		for _, row := range table.Component(comp) {
			produced[row.To] = true
			want, declaredKey := decl[row.To]
			if !declaredKey {
				probs(comp).Other = append(probs(comp).Other, fmt.Sprintf("%s/%s (from %s): the model does not declare it "+
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
			if !isFloat(info.DType) && want.DType.IsFloat() {
				probs(comp).Mismatch = append(probs(comp).Mismatch, fmt.Sprintf("%s/%s: %s key %s has dtype %s, the model wants a floating-point tensor",
					comp, row.To, base, row.From, info.DType))
				continue
			}
			got, err := row.ConvertShape(info.Shape)
			if err != nil {
				probs(comp).Mismatch = append(probs(comp).Mismatch, fmt.Sprintf("%s/%s: %s key %s: %v", comp, row.To, base, row.From, err))
				continue
			}
			if !equalDims(got, want.Dimensions) {
				probs(comp).Mismatch = append(probs(comp).Mismatch, fmt.Sprintf("%s/%s: %s key %s has shape %v, which gives %v after %s; the model wants %v",
					comp, row.To, base, row.From, info.Shape, got, opName(row), want.Dimensions))
				continue
			}
			if plan.Sources[comp] == nil {
				plan.Sources[comp] = map[string]SingleFileSource{}
			}
			info.Shape = append([]int(nil), info.Shape...)
			plan.Sources[comp][row.To] = SingleFileSource{Row: row, Info: info}
		}
		for _, from := range missingOrder {
			probs(comp).Missing = append(probs(comp).Missing, fmt.Sprintf("%s (→ %s)", from, strings.Join(missingFrom[from], ", ")))
		}
		for _, key := range SortedKeys(decl) {
			if !produced[key] {
				probs(comp).Missing = append(probs(comp).Missing, fmt.Sprintf("%s/%s %v: no key of the %s single-file layout produces it",
					comp, key, decl[key].Dimensions, layout.Kind))
			}
		}
	}
	for comp, p := range plan.Problems {
		if p.empty() {
			delete(plan.Problems, comp)
			continue
		}
		sort.Strings(p.Missing)
		sort.Strings(p.Extra)
	}
	return plan, nil
}

// safeTable generates the layout's table; a hand-built layout with inconsistent fields gives an
// error, not a panic.
func safeTable(layout *SingleFileLayout) (table *SingleFileTable, err error) {
	err = exceptions.TryCatch[error](func() {
		var terr error
		if table, terr = layout.Table(); terr != nil {
			panic(terr)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("single-file layout %q: %w", layout.Kind, err)
	}
	return table, nil
}

func opName(row SingleFileKey) string {
	if row.Op == OpSplitQKV {
		return fmt.Sprintf("%s:%d", row.Op, row.Part)
	}
	return row.Op.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// componentOf attributes a file key to a component by its prefix ("" when none matches).
func (l *SingleFileLayout) componentOf(key string) string {
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

// CheckSingleFile validates a single file against declared without reading tensor data: the
// header (safetensors.Open), the keys through the layout's table and every converted shape. It
// returns the plan and plan.Err(); other errors (pickle, unreadable file, unknown kind) come with a
// nil plan.
func CheckSingleFile(path string, declared map[string]map[string]shapes.Shape, opts SingleFileOptions) (*SingleFilePlan, error) {
	f, err := openSingleFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	plan, err := PlanSingleFile(path, f.Infos(), declared, opts.Layout)
	if err != nil {
		return nil, err
	}
	return plan, plan.Err()
}

// LoadSingleFile reads the weights of the components of declared (component → diffusers key →
// shape, e.g. {"unet": unetDeclared, "vae": vaeDeclared}) from the single file at path and returns
// them as component → diffusers key → tensor, floating-point tensors converted to opts.DType. Keys
// of components not in declared are skipped. Every missing, unexpected and mis-shaped key is
// reported together (*Problems naming the file) before any data is read.
func LoadSingleFile(path string, declared map[string]map[string]shapes.Shape, opts SingleFileOptions) (map[string]map[string]*tensors.Tensor, error) {
	out := map[string]map[string]*tensors.Tensor{}
	err := loadSingleFile(path, declared, opts, func(comp, key string, t *tensors.Tensor) error {
		if out[comp] == nil {
			out[comp] = map[string]*tensors.Tensor{}
		}
		out[comp][key] = t
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LoadSingleFileInto is LoadSingleFile that sets each weight as a variable of the component's
// context (ctxs[component], scoped to the component root): the diffusers key
// "down_blocks.0.resnets.0.conv1.weight" becomes variable "weight" in scope
// down_blocks/0/resnets/0/conv1. The variables are frozen unless opts.Trainable. Nothing is set
// when the file does not fit.
func LoadSingleFileInto(ctxs map[string]*model.Scope, path string, declared map[string]map[string]shapes.Shape, opts SingleFileOptions) error {
	var noCtx []string
	for comp := range declared {
		if ctxs[comp] == nil {
			noCtx = append(noCtx, comp)
		}
	}
	if len(noCtx) > 0 {
		sort.Strings(noCtx)
		return fmt.Errorf("weights.LoadSingleFileInto %s: no context given for component(s) %s", path, strings.Join(noCtx, ", "))
	}
	return loadSingleFile(path, declared, opts, func(comp, key string, t *tensors.Tensor) error {
		return setVariable(ctxs[comp], key, t, opts.Trainable)
	})
}

// setVariable sets (or creates) the variable of a checkpoint key under ctx.
func setVariable(ctx *model.Scope, key string, t *tensors.Tensor, trainable bool) (err error) {
	return exceptions.TryCatch[error](func() {
		scope, name := KeyToScope(key)
		c := ctx
		for _, s := range scope {
			c = c.At("%s", s)
		}
		v := c.GetVariable(name)
		if v == nil {
			v = c.VariableWithValue(name, t)
		} else if err := v.SetValue(t); err != nil {
			exceptions.Panicf("setting %s: %v", key, err)
		}
		v.SetTrainable(trainable)
	})
}

// loadSingleFile checks the file, then reads every fused/plain source tensor once, converts it to
// the rows asked for and hands each diffusers tensor to sink.
func loadSingleFile(path string, declared map[string]map[string]shapes.Shape, opts SingleFileOptions,
	sink func(comp, key string, t *tensors.Tensor) error) error {
	if opts.DType == dtypes.InvalidDType {
		opts.DType = dtypes.Float32
	}
	f, err := openSingleFile(path)
	if err != nil {
		return err
	}
	defer f.Close()
	plan, err := PlanSingleFile(path, f.Infos(), declared, opts.Layout)
	if err != nil {
		return err
	}
	if err := plan.Err(); err != nil {
		return err
	}
	// Group the rows by source tensor (a fused in_proj tensor feeds three rows), in table order.
	type target struct {
		comp string
		row  SingleFileKey
	}
	bySource := map[string][]target{}
	var order []string
	for _, row := range plan.Table.Keys {
		src, ok := plan.Sources[row.Component][row.To]
		if !ok || src.Row != row {
			continue
		}
		if _, seen := bySource[row.From]; !seen {
			order = append(order, row.From)
		}
		bySource[row.From] = append(bySource[row.From], target{row.Component, row})
	}
	for _, from := range order {
		targets := bySource[from]
		dtype := opts.DType
		if want := declared[targets[0].comp][targets[0].row.To]; !want.DType.IsFloat() {
			dtype = want.DType
		}
		t, err := f.Tensor(from, dtype)
		if err != nil {
			return err
		}
		for _, tg := range targets {
			converted, err := rearrange(tg.row, t)
			if err != nil {
				return fmt.Errorf("weights: %s: %w", path, err)
			}
			if err := sink(tg.comp, tg.row.To, converted); err != nil {
				return fmt.Errorf("weights: %s: %s/%s: %w", path, tg.comp, tg.row.To, err)
			}
		}
	}
	return nil
}

// rearrange applies row's operation to t (any float or integer dtype). OpCopy returns t itself.
func rearrange(row SingleFileKey, t *tensors.Tensor) (out *tensors.Tensor, err error) {
	if row.Op == OpCopy {
		return t, nil
	}
	dims := t.Shape().Dimensions
	err = exceptions.TryCatch[error](func() {
		var convErr error
		accessErr := t.ConstFlatData(func(flat any) {
			switch data := flat.(type) {
			case []float32:
				out, convErr = rearrangeFlat(row, data, dims)
			case []float64:
				out, convErr = rearrangeFlat(row, data, dims)
			case []float16.Float16:
				out, convErr = rearrangeFlat(row, data, dims)
			case []bfloat16.BFloat16:
				out, convErr = rearrangeFlat(row, data, dims)
			case []int64:
				out, convErr = rearrangeFlat(row, data, dims)
			case []int32:
				out, convErr = rearrangeFlat(row, data, dims)
			default:
				convErr = fmt.Errorf("%s: cannot %s a %s tensor", row.From, opName(row), t.DType())
			}
		})
		if accessErr != nil {
			panic(accessErr)
		}
		if convErr != nil {
			panic(convErr)
		}
	})
	return out, err
}

func rearrangeFlat[T gotype.Supported](row SingleFileKey, data []T, dims []int) (*tensors.Tensor, error) {
	res, shape, err := ConvertSingleFileTensor(row, data, dims)
	if err != nil {
		return nil, err
	}
	return tensors.FromFlatDataAndDimensions(res, shape...), nil
}

// SaveSingleFile writes diffusers-named components (component → diffusers key → tensor) as one
// LDM/SGM single file of layout: the inverse of LoadSingleFile (rename to the single-file key,
// unsqueeze 1×1 kernels, transpose the OpenCLIP projection, fuse q/k/v into in_proj). Tensors are
// written in their own dtype. Only the components present in comps are written (a UNet-only file
// holds just "unet"); each of them must have exactly the keys of the layout's table, or nothing is
// written and every difference is reported together.
func SaveSingleFile(path string, layout *SingleFileLayout, comps map[string]map[string]*tensors.Tensor, metadata map[string]string) error {
	if layout == nil {
		return fmt.Errorf("weights.SaveSingleFile %s: no layout given", path)
	}
	table, err := safeTable(layout)
	if err != nil {
		return fmt.Errorf("weights.SaveSingleFile %s: %w", path, err)
	}
	probs := &Problems{Files: []string{path}}
	tableComps := table.Components()
	for _, comp := range SortedKeys(comps) {
		if !contains(tableComps, comp) {
			probs.Other = append(probs.Other, fmt.Sprintf("the %s single-file layout has no component %q (its components: %s)",
				layout.Kind, comp, strings.Join(tableComps, ", ")))
			continue
		}
		for _, key := range SortedKeys(comps[comp]) {
			if _, ok := table.Target(comp, key); !ok {
				probs.Extra = append(probs.Extra, comp+"/"+key)
			}
		}
	}
	entries := map[string]*safetensors.Entry{}
	var order []string
	for _, row := range table.Keys {
		ts, asked := comps[row.Component]
		if !asked {
			continue
		}
		t := ts[row.To]
		if t == nil {
			probs.Missing = append(probs.Missing, row.Component+"/"+row.To)
			continue
		}
		dt, err := safetensors.FromGoMLX(t.DType())
		if err != nil {
			probs.Mismatch = append(probs.Mismatch, fmt.Sprintf("%s/%s: %v", row.Component, row.To, err))
			continue
		}
		data, shape, err := inverseRow(row, t)
		if err != nil {
			probs.Mismatch = append(probs.Mismatch, fmt.Sprintf("%s/%s: %v", row.Component, row.To, err))
			continue
		}
		e, ok := entries[row.From]
		if !ok {
			e = &safetensors.Entry{Name: row.From, DType: dt, Shape: shape}
			entries[row.From] = e
			order = append(order, row.From)
		}
		if row.Op != OpSplitQKV {
			e.Data = data
			continue
		}
		// Fused q/k/v: the rows come in part order 0, 1, 2 and stack along axis 0.
		if row.Part == 0 {
			e.Data = data
			continue
		}
		if e.DType != dt || !equalDims(e.Shape[1:], shape[1:]) || len(e.Data) != row.Part*len(data) {
			probs.Mismatch = append(probs.Mismatch, fmt.Sprintf("%s/%s: %s %v cannot be fused with the other parts of %s (%s %v)",
				row.Component, row.To, dt, shape, row.From, e.DType, e.Shape))
			continue
		}
		e.Shape[0] += shape[0]
		e.Data = append(e.Data, data...)
	}
	if !probs.empty() {
		return probs
	}
	list := make([]safetensors.Entry, 0, len(order))
	for _, name := range order {
		list = append(list, *entries[name])
	}
	return safetensors.WriteEntries(path, list, metadata)
}

// inverseRow returns the single-file bytes and shape of one row's diffusers tensor (for
// OpSplitQKV, this part's rows of the fused tensor).
func inverseRow(row SingleFileKey, t *tensors.Tensor) ([]byte, []int, error) {
	dims := append([]int(nil), t.Shape().Dimensions...)
	src := t
	switch row.Op {
	case OpSqueeze1x1:
		if len(dims) != 2 {
			return nil, nil, fmt.Errorf("want a [O, I] matrix to store as a 1×1 kernel, got %v", dims)
		}
		dims = append(dims, 1, 1)
	case OpTranspose:
		if len(dims) != 2 {
			return nil, nil, fmt.Errorf("want a matrix to transpose, got %v", dims)
		}
		var err error
		if src, err = rearrange(SingleFileKey{From: row.From, Op: OpTranspose}, t); err != nil {
			return nil, nil, err
		}
		dims = []int{dims[1], dims[0]}
	case OpSplitQKV:
		if len(dims) < 1 {
			return nil, nil, fmt.Errorf("want a [n, …] q/k/v part, got a scalar")
		}
	}
	var data []byte
	err := src.ConstBytes(func(b []byte) { data = append([]byte(nil), b...) })
	if err != nil {
		return nil, nil, err
	}
	return data, dims, nil
}
