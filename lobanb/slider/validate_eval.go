package slider

import (
	"fmt"
)

// Validation of the eval section: every check that needs no model runs when the preset loads, so a
// bad eval section fails before training, not after it (lobanb/eval rejects the same values later).

var validEvalKinds = []string{"", "slider", "erase"}

// validateEval fills the eval section's defaults and checks it: the kind, the prompts, the seeds
// (>= 0), the sampler settings, a slider's target and strengths (finite, 0 exactly once and a
// non-zero one: the effect is measured against strength 0), an erase's value, controls and strength,
// (the attribute names are lobanb/eval's: train.NewPlan checks them, before any model loads).
func (p *Preset) validateEval(v *validator) {
	e := &p.Eval
	v.enum("eval.kind", e.Kind, validEvalKinds)
	if e.Kind == "" {
		return
	}
	e.fillDefaults()
	if len(e.Prompts) == 0 {
		v.add("eval.prompts", "empty; an evaluation needs prompts")
	}
	for i, s := range e.Seeds {
		v.check(s >= 0, fmt.Sprintf("eval.seeds[%d]", i), s, ">= 0")
	}
	v.check(e.Steps >= 1, "eval.steps", e.Steps, ">= 1")
	v.check(finite(e.GuidanceScale) && e.GuidanceScale >= 0, "eval.guidance_scale", e.GuidanceScale, ">= 0")
	v.check(e.StartNoise >= 0 && e.StartNoise <= 1000, "eval.start_noise", e.StartNoise, "in [0, 1000] (0 = off)")
	switch e.Kind {
	case "slider":
		if e.Target == "" {
			v.add("eval.target", "empty; a slider evaluation needs the numeric attribute it moves (e.g. area, blueness)")
		}
		validateEvalStrengths(v, e.Strengths)
	case "erase":
		if e.Value == "" {
			v.add("eval.value", "empty; an erase evaluation needs the erased value (e.g. red)")
		}
		if len(e.Controls) == 0 {
			v.add("eval.controls", "empty; an erase evaluation needs control prompts")
		}
		v.check(finite(e.Strength), "eval.strength", e.Strength, "a finite number (the adapter strength of the \"after\" images)")
	default:
		return
	}
}

// fillDefaults sets the eval section's defaults (called for a set kind only).
func (e *Eval) fillDefaults() {
	if len(e.Seeds) == 0 {
		e.Seeds = []int{0, 1, 2, 3}
	}
	setInt(&e.Steps, 20)
	setFloat(&e.GuidanceScale, 3)
	switch e.Kind {
	case "slider":
		if len(e.Strengths) == 0 {
			e.Strengths = []float64{-2, -1, 0, 1, 2}
		}
	case "erase":
		setStr(&e.Attribute, "color")
		setFloat(&e.Strength, 1)
	}
}

// validateEvalStrengths checks a slider evaluation's strengths as the report needs them: finite, 0
// exactly once (the reference every change is measured from) and at least one non-zero strength.
func validateEvalStrengths(v *validator, strengths []float64) {
	zeros, nonZero := 0, false
	for i, s := range strengths {
		v.check(finite(s), fmt.Sprintf("eval.strengths[%d]", i), s, "a finite number")
		if s == 0 {
			zeros++
		} else if finite(s) {
			nonZero = true
		}
	}
	switch {
	case zeros == 0:
		v.add("eval.strengths", "%v has no 0; a slider evaluation measures every strength against strength 0, so list 0 and at least one non-zero strength (e.g. [-2, -1, 0, 1, 2])", strengths)
	case zeros > 1:
		v.add("eval.strengths", "%v lists 0 %d times; list it once", strengths, zeros)
	case !nonZero:
		v.add("eval.strengths", "%v has no non-zero strength; list at least one besides 0 (e.g. [-2, -1, 0, 1, 2])", strengths)
	}
}
