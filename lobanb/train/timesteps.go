package train

import (
	"fmt"

	"github.com/loba-dev/loba/lobanb/slider"
)

// ksWindow is one window of timestep_schedule: from optimizer step From on, k is drawn from Ks.
type ksWindow struct {
	From int
	Ks   []int
}

// ksAt are the k drawn from at step (1-based): the last window starting at or before step-1 steps
// done, else ks.
func (d drawSettings) ksAt(step int) []int {
	ks := d.ks
	for _, w := range d.windows {
		if w.From <= step-1 {
			ks = w.Ks
		}
	}
	return ks
}

// scheduleWindows resolves timestep_schedule (RC-LOBA: a timestep window that moves during training)
// into the k of each window, as timestep_range would select them.
func scheduleWindows(p *slider.Preset, tStar func(int) int64) ([]ksWindow, error) {
	var out []ksWindow
	for i, w := range p.TimestepSchedule {
		q := *p
		q.TimestepRange = w.Range
		ks, err := denoiseKs(&q, tStar)
		if err != nil {
			return nil, fmt.Errorf("timestep_schedule[%d] (from step %d): %w", i, w.Step, err)
		}
		out = append(out, ksWindow{From: w.Step, Ks: ks})
	}
	return out, nil
}
