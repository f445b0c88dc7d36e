package sd

import (
	"fmt"
	"sort"
	"strings"

	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/singlefile"
	"github.com/loba-dev/loba/models/weights"
)

// maxNamedNonFinite is how many non-finite tensors of a component Report.Err names.
const maxNamedNonFinite = 10

// scanValues scans the stored values of every tensor of the component's weight files for NaN and
// ±Inf, one tensor at a time through the file's mapping: each bad tensor goes to cr.NonFinite and
// is marked in cr.Tensors. Files that do not open are left to cr.Problem.
func scanValues(cr *ComponentReport, cm *componentModel) {
	for _, path := range cr.Files {
		f, err := safetensors.Open(path)
		if err != nil {
			continue
		}
		for _, name := range f.Names() {
			n, err := f.CountNonFinite(name)
			if err != nil || n.Count() == 0 {
				continue
			}
			cr.NonFinite = append(cr.NonFinite, &safetensors.NonFiniteError{File: path, Key: name, NonFinite: n})
			key := name
			if cm.opts.Rename != nil {
				key = cm.opts.Rename(name)
			}
			if e, ok := cr.Tensors[key]; ok {
				e.NonFinite = &n
				cr.Tensors[key] = e
			}
		}
		_ = f.Close()
	}
}

// scanSingleFile scans, for each component of the report, the single-file tensors its weights are
// read from (plan.Sources; each stored tensor once), recording the bad ones as scanValues does.
func scanSingleFile(rep *Report, plan *singlefile.Plan, f *safetensors.File) {
	counts := map[string]safetensors.NonFinite{} // file key → its count
	for i := range rep.Components {
		cr := &rep.Components[i]
		named := map[string]bool{}
		for _, key := range weights.SortedKeys(plan.Sources[cr.Name]) {
			from := plan.Sources[cr.Name][key].Info.Name
			n, ok := counts[from]
			if !ok {
				n, _ = f.CountNonFinite(from)
				counts[from] = n
			}
			if n.Count() == 0 {
				continue
			}
			if e, ok := cr.Tensors[key]; ok {
				e.NonFinite = &n
				cr.Tensors[key] = e
			}
			if !named[from] {
				named[from] = true
				cr.NonFinite = append(cr.NonFinite, &safetensors.NonFiniteError{File: plan.Path, Key: from, NonFinite: n})
			}
		}
		sort.Slice(cr.NonFinite, func(a, b int) bool { return cr.NonFinite[a].Key < cr.NonFinite[b].Key })
	}
}

// nonFiniteErr tells that the component's tensors bad hold NaN or ±Inf values, naming the first 10
// (file, key, counts) one per line; it wraps safetensors.ErrNonFinite.
func nonFiniteErr(component string, bad []*safetensors.NonFiniteError) error {
	l := &nonFiniteList{component: component, total: len(bad)}
	for _, e := range bad[:min(len(bad), maxNamedNonFinite)] {
		l.errs = append(l.errs, e)
	}
	return l
}

// nonFiniteList is the error of a component's non-finite tensors: a line per named tensor.
type nonFiniteList struct {
	component string
	total     int     // tensors holding NaN or ±Inf
	errs      []error // the *safetensors.NonFiniteError of the first ones
}

func (l *nonFiniteList) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s NaN or ±Inf values:", l.component, tensorsHold(l.total))
	for _, e := range l.errs {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	if more := l.total - len(l.errs); more > 0 {
		fmt.Fprintf(&b, "\n  ... and %d more (loba inspect --json marks each)", more)
	}
	return b.String()
}

// Unwrap returns the errors of the named tensors (each wraps safetensors.ErrNonFinite).
func (l *nonFiniteList) Unwrap() []error { return l.errs }

// tensorsHold is "1 tensor holds" or "n tensors hold".
func tensorsHold(n int) string {
	if n == 1 {
		return "1 tensor holds"
	}
	return fmt.Sprintf("%d tensors hold", n)
}

// problemStatus is WriteText's status of a component with problems or non-finite tensors.
func problemStatus(c ComponentReport) string {
	if len(c.NonFinite) == 0 {
		return "WEIGHTS DO NOT FIT (see below)"
	}
	s := fmt.Sprintf("NaN/Inf IN %d TENSORS (see below)", len(c.NonFinite))
	if len(c.NonFinite) == 1 {
		s = "NaN/Inf IN 1 TENSOR (see below)"
	}
	if c.Problem != nil {
		s = "WEIGHTS DO NOT FIT, " + s
	}
	return s
}
