package train

import (
	"math"
	"strings"
	"testing"
)

// Expected values are computed by hand from diffusers/transformers' lr_lambda formulas.
func TestScheduleValues(t *testing.T) {
	cases := []struct {
		cfg  ScheduleConfig
		want map[int]float64 // step → lr
	}{
		{ScheduleConfig{Name: "constant", BaseLR: 1e-4},
			map[int]float64{0: 1e-4, 1: 1e-4, 999: 1e-4}},
		{ScheduleConfig{Name: "constant_with_warmup", BaseLR: 1e-3, WarmupSteps: 10},
			map[int]float64{-3: 0, 0: 0, 1: 1e-4, 5: 5e-4, 9: 9e-4, 10: 1e-3, 1000: 1e-3}},
		{ScheduleConfig{Name: "linear", BaseLR: 1, WarmupSteps: 10, TotalSteps: 110},
			map[int]float64{0: 0, 5: 0.5, 10: 1, 35: 0.75, 60: 0.5, 109: 0.01, 110: 0, 500: 0}},
		{ScheduleConfig{Name: "linear", BaseLR: 1, MinLR: 0.1, TotalSteps: 100},
			map[int]float64{0: 1, 50: 0.55, 100: 0.1, 150: 0.1}},
		{ScheduleConfig{Name: "cosine", BaseLR: 1, TotalSteps: 100},
			map[int]float64{0: 1, 25: 0.5 * (1 + math.Sqrt2/2), 50: 0.5, 75: 0.5 * (1 - math.Sqrt2/2), 100: 0, 150: 0}},
		{ScheduleConfig{Name: "cosine", BaseLR: 2, MinLR: 0.4, WarmupSteps: 4, TotalSteps: 104},
			map[int]float64{0: 0, 2: 1, 4: 2, 54: 1.2, 104: 0.4, 300: 0.4}},
		{ScheduleConfig{Name: "cosine_with_restarts", BaseLR: 1, TotalSteps: 100, NumCycles: 2},
			map[int]float64{0: 1, 25: 0.5, 49: 0.5 * (1 + math.Cos(0.98*math.Pi)), 50: 1, 75: 0.5, 100: 0, 120: 0}},
		{ScheduleConfig{Name: "cosine_with_restarts", BaseLR: 1, TotalSteps: 100}, // 1 cycle = cosine
			map[int]float64{0: 1, 50: 0.5, 100: 0}},
		{ScheduleConfig{Name: "polynomial", BaseLR: 1, MinLR: 0.01, WarmupSteps: 10, TotalSteps: 110, Power: 2},
			map[int]float64{0: 0, 5: 0.5, 10: 1, 60: 0.99*0.25 + 0.01, 110: 0.01, 111: 0.01, 400: 0.01}},
		{ScheduleConfig{Name: "polynomial", BaseLR: 1e-4, MinLR: 1e-7, TotalSteps: 100}, // diffusers' defaults
			map[int]float64{0: 1e-4, 50: (1e-4-1e-7)*0.5 + 1e-7, 100: 1e-7}},
	}
	for _, c := range cases {
		lr, err := NewSchedule(c.cfg)
		if err != nil {
			t.Fatalf("%+v: %v", c.cfg, err)
		}
		for step, want := range c.want {
			if got := lr(step); math.Abs(got-want) > 1e-12 {
				t.Errorf("%+v: lr(%d) = %.15g, want %.15g", c.cfg, step, got, want)
			}
		}
	}
}

func TestScheduleErrors(t *testing.T) {
	_, err := NewSchedule(ScheduleConfig{Name: "cosine_annealing", BaseLR: 1, TotalSteps: 10})
	if err == nil || !strings.Contains(err.Error(), `"cosine_annealing"`) || !strings.Contains(err.Error(), "constant_with_warmup") {
		t.Errorf("unknown schedule: %v", err)
	}
	for _, cfg := range []ScheduleConfig{
		{Name: "constant", BaseLR: 0},
		{Name: "constant", BaseLR: 1, WarmupSteps: 5},
		{Name: "linear", BaseLR: 1},
		{Name: "linear", BaseLR: 1, TotalSteps: 10, WarmupSteps: 11},
		{Name: "cosine", BaseLR: 1, TotalSteps: 10, MinLR: 1},
		{Name: "cosine", BaseLR: 1, TotalSteps: 10, MinLR: -0.1},
		{Name: "constant_with_warmup", BaseLR: 1, WarmupSteps: -1},
		{Name: "polynomial", BaseLR: 1, TotalSteps: 10, Power: -1},
	} {
		if _, err := NewSchedule(cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}
