package eval

// Reports as text tables and as JSON files.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/loba-dev/loba/internal/atomicfile"
)

// Table is the report as an aligned text table: the headline numbers, the mean target value per
// strength and the per-prompt breakdown.
func (r *SliderReport) Table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "slider evaluation\ttarget %s, %d samples × %d strengths\n", r.Target, r.Samples, len(r.Strengths))
	fmt.Fprintf(w, "effect_spearman\t%.3f\n", r.EffectSpearman)
	fmt.Fprintf(w, "effect_slope\t%.4g\n", r.EffectSlope)
	attrs := slices.Sorted(maps.Keys(r.OffTarget))
	for _, a := range attrs {
		fmt.Fprintf(w, "offtarget %s\t%.3f\n", a, r.OffTarget[a])
	}
	if r.OffTargetAreaChange != nil {
		fmt.Fprintf(w, "offtarget_area_change\t%.3f (mean |Δarea|/area over %d pairs)\n", *r.OffTargetAreaChange, r.AreaPairs)
	}
	if r.Undefined > 0 {
		fmt.Fprintf(w, "undefined %s read-outs\t%d of %d\n", r.Target, r.Undefined, r.Images)
	}
	_ = w.Flush()

	b.WriteString("\n")
	w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "strength\t")
	for _, s := range r.Strengths {
		fmt.Fprintf(w, "%g\t", s)
	}
	fmt.Fprintf(w, "\nmean %s\t", r.Target)
	for _, m := range r.TargetMean {
		if m == nil {
			fmt.Fprintf(w, "-\t")
		} else {
			fmt.Fprintf(w, "%.4g\t", *m)
		}
	}
	fmt.Fprintln(w)
	_ = w.Flush()

	if len(r.PerPrompt) > 0 {
		b.WriteString("\n")
		w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(w, "prompt\tspearman\tslope")
		for _, a := range attrs {
			fmt.Fprintf(w, "\t%s", a)
		}
		if r.OffTargetAreaChange != nil {
			fmt.Fprintf(w, "\tarea change")
		}
		fmt.Fprintf(w, "\tsamples\n")
		for _, p := range r.PerPrompt {
			fmt.Fprintf(w, "%s\t%.3f\t%.4g", p.Prompt, p.EffectSpearman, p.EffectSlope)
			for _, a := range attrs {
				fmt.Fprintf(w, "\t%.3f", p.OffTarget[a])
			}
			if r.OffTargetAreaChange != nil {
				fmt.Fprintf(w, "\t%s", optional(p.OffTargetAreaChange))
			}
			fmt.Fprintf(w, "\t%d\n", p.Samples)
		}
		_ = w.Flush()
	}
	return b.String()
}

// Table is the report as an aligned text table.
func (r *EraseReport) Table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "erase evaluation\t%s %q at strength %g, %d samples (%d asking for it, %d controls)\n",
		r.Attribute, r.Value, r.Strength, r.Samples, r.TargetSamples, r.ControlSamples)
	fmt.Fprintf(w, "erased_rate_before\t%.3f\n", r.ErasedRateBefore)
	fmt.Fprintf(w, "erased_rate_after\t%.3f\n", r.ErasedRateAfter)
	fmt.Fprintf(w, "control_change\t%.3f\n", r.ControlChange)
	fmt.Fprintf(w, "erased_size_kept\t%.3f\n", r.ErasedSizeKept)
	fmt.Fprintf(w, "erased_background_kept\t%.3f\n", r.ErasedBackgroundKept)
	for _, a := range slices.Sorted(maps.Keys(r.ControlChangeBy)) {
		fmt.Fprintf(w, "control change %s\t%.3f\n", a, r.ControlChangeBy[a])
	}
	fmt.Fprintf(w, "%s before\t%s\n", r.Attribute, counts(r.BeforeValues))
	fmt.Fprintf(w, "%s after\t%s\n", r.Attribute, counts(r.AfterValues))
	_ = w.Flush()
	return b.String()
}

// optional formats a value that may be missing: "%.3f", or "-" for nil.
func optional(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f", *v)
}

// counts formats class counts as "blue 3, red 5" (sorted by class).
func counts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		name := k
		if name == "" {
			name = `""`
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, m[k]))
	}
	return strings.Join(parts, ", ")
}

// WriteJSON writes report (a *SliderReport, an *EraseReport or any JSON-encodable value) to path
// as indented JSON, atomically (a reader never sees a half-written file).
func WriteJSON(path string, report any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(report); err != nil {
		return fmt.Errorf("eval: encoding %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return fmt.Errorf("eval: writing %s: %w", path, err)
	}
	return nil
}
