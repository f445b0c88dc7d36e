package slider

import "fmt"

// TimestepWindow is one window of RC-LOBA's moving timestep window (timestep_schedule): from training
// step Step on (until the next window's step), only the k whose evaluation timestep t* lies in
// Range [lo, hi] train.
type TimestepWindow struct {
	Step  int   `yaml:"step" json:"step" slider:"required"`
	Range []int `yaml:"range" json:"range" slider:"required"`
}

// maxTimestep is the largest model timestep a schedule window may name (num_train_timesteps − 1 of
// every supported model).
const maxTimestep = 999

// TimestepRangeAt returns the timestep window [lo, hi] in force at training step step (0-based): the
// last timestep_schedule window starting at or before it, else timestep_range (the schedule wins
// when both are given); nil means every timestep.
func (p *Preset) TimestepRangeAt(step int) []int {
	var out []int
	for _, w := range p.TimestepSchedule {
		if w.Step > step {
			break
		}
		out = w.Range
	}
	if out == nil {
		out = p.TimestepRange
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// validateTimestepSchedule checks the windows: the first at step 0, steps strictly increasing and
// below train.steps, each range [lo, hi] with 0 <= lo <= hi <= 999.
func (p *Preset) validateTimestepSchedule(v *validator) {
	if len(p.TimestepSchedule) == 0 {
		p.TimestepSchedule = nil
		return
	}
	for i, w := range p.TimestepSchedule {
		path := fmt.Sprintf("timestep_schedule[%d]", i)
		switch {
		case i == 0:
			v.check(w.Step == 0, path+".step", w.Step, "0 (the first window starts the training)")
		default:
			prev := p.TimestepSchedule[i-1].Step
			v.check(w.Step > prev, path+".step", w.Step, fmt.Sprintf("> %d (the previous window's step; steps strictly increase)", prev))
		}
		if w.Step > 0 {
			v.check(w.Step < p.Train.Steps, path+".step", w.Step, fmt.Sprintf("< train.steps = %d (a later window never applies)", p.Train.Steps))
		}
		r := w.Range
		v.check(len(r) == 2 && r[0] >= 0 && r[0] <= r[1] && r[1] <= maxTimestep, path+".range", r,
			fmt.Sprintf("[lo, hi] with 0 <= lo <= hi <= %d (model timesteps)", maxTimestep))
	}
}
