package sd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/schedulers"
	"github.com/loba-dev/loba/models/weights"
)

// TensorEntry is one weight of an inspection report, in the manifest format of
// fixtures/real/manifests/diffusers: {"shape": [...], "dtype": "F32"}.
type TensorEntry struct {
	Shape []int  `json:"shape"`
	DType string `json:"dtype"`
	// NonFinite counts the NaN and ±Inf values of the stored tensor the weight is read from (for
	// a single file's fused in_proj tensor: of the whole fused tensor); nil when all are finite or
	// when the values were not scanned.
	NonFinite *safetensors.NonFinite `json:"non_finite,omitempty"`
}

// ComponentReport is what Inspect tells of one component.
type ComponentReport struct {
	Component
	Params  int64                  // number of parameters of the model LOBA builds
	Tensors map[string]TensorEntry // every weight key
	Files   []string               // weight files found (none for a config-only folder)
	Problem error                  // what is wrong with the weight files, nil when they fit
	// NonFinite lists the tensors of the weight files that hold NaN or ±Inf values, by file and
	// key (none when InspectOptions.HeadersOnly).
	NonFinite []*safetensors.NonFiniteError
}

// Report is the result of Inspect.
type Report struct {
	Dir        string
	Components []ComponentReport
	Skipped    []Component // components without LOBA-built networks (scheduler, tokenizer, ...)
	// Unused maps a component name to the keys of its config.json that LOBA's config has no field
	// for (the configs' Unused: recorded and ignored, never rejected). Components without such keys,
	// and schedulers of classes LOBA does not implement, have no entry.
	Unused map[string][]string
}

// InspectOptions tunes Inspect.
type InspectOptions struct {
	// Variant prefers weight files like diffusion_pytorch_model.<variant>.safetensors ("fp16").
	Variant string
	// HeadersOnly skips the scan of the weight values for NaN and ±Inf: only headers, keys,
	// shapes and dtypes are checked, without reading the data (for callers that want the shapes,
	// e.g. a memory plan).
	HeadersOnly bool
}

// Inspect builds every network component of a model folder shape-only (no weight is allocated) and,
// where weight files are present, validates them against the model: headers, offsets and dtype sizes
// (safetensors.Open), and every key, shape and dtype; unless opts.HeadersOnly, every stored value is
// scanned for NaN and ±Inf too (one tensor at a time through the file's memory mapping), the bad
// tensors listed in ComponentReport.NonFinite and marked in Tensors. Problems with the files are
// recorded per component (Report.Err joins them); the error return is for folders that cannot be
// read at all.
// A path to a `.safetensors` file is inspected as a single-file checkpoint (InspectSingleFile with
// the configs of the diffusers folder holding it, else the built-in configs of its kind); a pickle
// file gives the weights.RefusePickle error.
func Inspect(dir string, opts InspectOptions) (*Report, error) {
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		if err := weights.RefusePickle(dir); err != nil {
			return nil, err
		}
		if strings.EqualFold(filepath.Ext(dir), ".safetensors") {
			return InspectSingleFile(dir, SingleFileOptions{HeadersOnly: opts.HeadersOnly})
		}
	}
	comps, err := ReadComponents(dir)
	if err != nil {
		return nil, err
	}
	rep := &Report{Dir: dir}
	for _, c := range comps {
		if !ModelKinds[c.Class] {
			rep.Skipped = append(rep.Skipped, c)
			continue
		}
		cm, err := declareComponent(c)
		if err != nil {
			return nil, err
		}
		cr := ComponentReport{Component: c, Params: weights.ParamCount(cm.declared), Tensors: map[string]TensorEntry{}}
		for key, s := range cm.declared {
			cr.Tensors[key] = TensorEntry{Shape: append([]int{}, s.Dimensions...), DType: "F32"}
		}
		for key, s := range cm.buffers {
			dtype, err := safetensors.FromGoMLX(s.DType)
			if err != nil {
				return nil, err
			}
			cr.Tensors[key] = TensorEntry{Shape: append([]int{}, s.Dimensions...), DType: string(dtype)}
		}
		files, ferr := weights.FindWeightFiles(c.Dir, opts.Variant)
		switch {
		case ferr == nil:
			cr.Files = files
			cr.Problem = weights.Check(cm.declared, files, cm.opts)
			if cr.Problem == nil {
				fileDTypes(&cr, cm)
			}
			if !opts.HeadersOnly {
				scanValues(&cr, cm)
			}
		case hasWeightLikeFiles(c.Dir):
			cr.Problem = ferr // e.g. a pickle checkpoint
		}
		rep.Components = append(rep.Components, cr)
		rep.addUnused(c.Name, cm.unused)
	}
	for _, c := range rep.Skipped {
		rep.addUnused(c.Name, schedulerUnused(c))
	}
	if len(rep.Components) == 0 {
		return nil, fmt.Errorf("%s: no UNet, VAE or text-encoder component found", dir)
	}
	return rep, nil
}

// addUnused records a component's unknown config keys, when it has some.
func (r *Report) addUnused(name string, unused []string) {
	if len(unused) == 0 {
		return
	}
	if r.Unused == nil {
		r.Unused = map[string][]string{}
	}
	r.Unused[name] = unused
}

// schedulerUnused is the unknown keys of a supported scheduler's scheduler_config.json; other
// skipped components, and scheduler configs that do not parse (inspect does not check schedulers),
// have none.
func schedulerUnused(c Component) []string {
	switch c.Class {
	case schedulers.ClassDDPM, schedulers.ClassDDIM, schedulers.ClassEulerDiscrete:
		if c.Dir == "" {
			return nil
		}
		if cfg, err := schedulers.LoadConfig(filepath.Join(c.Dir, "scheduler_config.json")); err == nil {
			return cfg.Unused
		}
	}
	return nil
}

// WriteUnused writes one line per component whose config.json has keys LOBA's config does not know,
// "<component>: unknown config keys ignored: <key>, <key>", in component order.
func (r *Report) WriteUnused(w io.Writer) {
	names := make([]string, 0, len(r.Components)+len(r.Skipped))
	for _, c := range r.Components {
		names = append(names, c.Name)
	}
	for _, c := range r.Skipped {
		names = append(names, c.Name)
	}
	for _, name := range names {
		if keys := r.Unused[name]; len(keys) > 0 {
			fmt.Fprintf(w, "%s: unknown config keys ignored: %s\n", name, strings.Join(keys, ", "))
		}
	}
}

// fileDTypes reports the dtype the weight files store (e.g. F16 for an fp16 variant).
func fileDTypes(cr *ComponentReport, cm *componentModel) {
	for _, path := range cr.Files {
		f, err := safetensors.Open(path)
		if err != nil {
			continue
		}
		for _, name := range f.Names() {
			key := name
			if cm.opts.Rename != nil {
				key = cm.opts.Rename(name)
			}
			if e, ok := cr.Tensors[key]; ok {
				info, _ := f.Info(name)
				e.DType = string(info.DType)
				cr.Tensors[key] = e
			}
		}
		_ = f.Close()
	}
}

// hasWeightLikeFiles tells whether a folder holds anything that looks like weights.
func hasWeightLikeFiles(dir string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n := e.Name()
		if strings.HasSuffix(n, ".safetensors") || weights.RefusePickle(n) != nil {
			return true
		}
	}
	return false
}

// Err joins the problems of every component, then its tensors that are not finite (nil when all
// weight files fit and hold finite values). The non-finite ones wrap safetensors.ErrNonFinite.
func (r *Report) Err() error {
	var errs []error
	for _, c := range r.Components {
		if c.Problem != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, c.Problem))
		}
		if len(c.NonFinite) > 0 {
			errs = append(errs, nonFiniteErr(c.Name, c.NonFinite))
		}
	}
	return errors.Join(errs...)
}

// WriteJSON writes {"<component>": {"<key>": {"shape": [...], "dtype": "F32"}}}, keys sorted; a
// weight holding NaN or ±Inf values also has "non_finite": {"total", "nan", "pos_inf", "neg_inf",
// "first_index", "first"}.
func (r *Report) WriteJSON(w io.Writer) error {
	out := map[string]map[string]TensorEntry{}
	for _, c := range r.Components {
		out[c.Name] = c.Tensors
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// WriteText writes one line per component: name, class, parameter count, weight files and status;
// then the unknown config keys of each component that has some (WriteUnused).
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s\n", r.Dir)
	var total int64
	for _, c := range r.Components {
		total += c.Params
		status := "config only (shape-only build, no weights)"
		if len(c.Files) > 0 {
			names := make([]string, len(c.Files))
			for i, f := range c.Files {
				names[i] = filepath.Base(f)
			}
			status = "weights OK: " + strings.Join(names, ", ")
		}
		if c.Problem != nil || len(c.NonFinite) > 0 {
			status = problemStatus(c)
		}
		fmt.Fprintf(w, "  %-15s %-28s %15s params  %5d tensors  %s\n", c.Name, c.Class, humanCount(c.Params), len(c.Tensors), status)
	}
	for _, c := range r.Skipped {
		note := "(no network weights)"
		if c.Dir == "" {
			note = "(not present; not needed)"
		}
		fmt.Fprintf(w, "  %-15s %-28s %s\n", c.Name, c.Class, note)
	}
	fmt.Fprintf(w, "  %-15s %-28s %15s params\n", "total", "", humanCount(total))
	r.WriteUnused(w)
}

func humanCount(n int64) string {
	s := fmt.Sprintf("%d", n)
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String()
}
