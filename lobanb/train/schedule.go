package train

// Learning-rate schedules, host side: ports the lr_lambda functions of diffusers/transformers
// get_scheduler (diffusers optimization.py, transformers optimization.py), which torch's LambdaLR
// multiplies with the base learning rate. The host evaluates the schedule each step and feeds the value
// to the train-step graph as a scalar input, so the graph is never rebuilt.

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Schedule names accepted by NewSchedule.
const (
	ScheduleConstant           = "constant"
	ScheduleConstantWithWarmup = "constant_with_warmup"
	ScheduleLinear             = "linear"
	ScheduleCosine             = "cosine"
	ScheduleCosineWithRestarts = "cosine_with_restarts"
	SchedulePolynomial         = "polynomial"
)

var validSchedules = []string{ScheduleConstant, ScheduleConstantWithWarmup, ScheduleLinear, ScheduleCosine,
	ScheduleCosineWithRestarts, SchedulePolynomial}

// ScheduleConfig configures NewSchedule.
//
// With MinLR = 0 every schedule is exactly diffusers' / transformers' one. MinLR > 0 is the floor the
// decaying schedules reach at TotalSteps, applied as transformers' cosine_with_min_lr does:
// lr = MinLR + (BaseLR − MinLR)·f, with f the decay factor of the schedule after warmup (linear, cosine,
// cosine_with_restarts); for polynomial MinLR is lr_end (diffusers/transformers default lr_end is 1e-7,
// set MinLR to 1e-7 to reproduce get_scheduler("polynomial") exactly). The warmup always rises
// linearly from 0 to BaseLR, as in both libraries.
type ScheduleConfig struct {
	Name        string  `json:"name" yaml:"name"` // constant | constant_with_warmup | linear | cosine | cosine_with_restarts | polynomial
	BaseLR      float64 `json:"lr" yaml:"lr"`
	MinLR       float64 `json:"min_lr" yaml:"min_lr"`
	WarmupSteps int     `json:"warmup_steps" yaml:"warmup_steps"`
	TotalSteps  int     `json:"total_steps" yaml:"total_steps"`
	// NumCycles: cosine (0 → 0.5, a half cosine from BaseLR to MinLR) and cosine_with_restarts
	// (0 → 1, the number of hard restarts).
	NumCycles float64 `json:"num_cycles" yaml:"num_cycles"`
	// Power is polynomial's exponent (0 → 1, linear).
	Power float64 `json:"power" yaml:"power"`
}

// Validate checks cfg; errors name the bad key and value (and the valid names).
func (c ScheduleConfig) Validate() error {
	if !slices.Contains(validSchedules, c.Name) {
		return fmt.Errorf("train: unknown lr schedule %q, valid schedules: %s", c.Name, strings.Join(validSchedules, ", "))
	}
	if !(c.BaseLR > 0) || math.IsInf(c.BaseLR, 0) {
		return fmt.Errorf("train: lr schedule %s: lr = %v, want a finite value > 0", c.Name, c.BaseLR)
	}
	if c.WarmupSteps < 0 {
		return fmt.Errorf("train: lr schedule %s: warmup_steps = %d, want >= 0", c.Name, c.WarmupSteps)
	}
	switch c.Name {
	case ScheduleConstant:
		if c.WarmupSteps != 0 {
			return fmt.Errorf("train: lr schedule constant: warmup_steps = %d is ignored by constant, use constant_with_warmup", c.WarmupSteps)
		}
		return nil
	case ScheduleConstantWithWarmup:
		return nil
	}
	if c.TotalSteps < 1 {
		return fmt.Errorf("train: lr schedule %s: total_steps = %d, want >= 1", c.Name, c.TotalSteps)
	}
	if c.WarmupSteps > c.TotalSteps {
		return fmt.Errorf("train: lr schedule %s: warmup_steps = %d exceeds total_steps = %d", c.Name, c.WarmupSteps, c.TotalSteps)
	}
	if !(c.MinLR >= 0 && c.MinLR < c.BaseLR) {
		return fmt.Errorf("train: lr schedule %s: min_lr = %v, want 0 <= min_lr < lr (%v)", c.Name, c.MinLR, c.BaseLR)
	}
	if c.NumCycles < 0 || c.Power < 0 {
		return fmt.Errorf("train: lr schedule %s: num_cycles = %v, power = %v, want >= 0 (0: default)", c.Name, c.NumCycles, c.Power)
	}
	return nil
}

// NewSchedule returns lr(step): the learning rate of the optimizer update that follows `step` updates
// already done (0-based; LambdaLR's current_step when optimizer.step() runs), so the k-th update
// (1-based) uses lr(k−1). With warmup, lr(0) = 0: the first update does nothing, as in diffusers.
// Negative steps count as 0. Past TotalSteps the decaying schedules stay at their final value (MinLR;
// transformers' cosine would rise again there).
func NewSchedule(cfg ScheduleConfig) (func(step int) float64, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base, minLR := cfg.BaseLR, cfg.MinLR
	warm, total := cfg.WarmupSteps, cfg.TotalSteps
	warmup := func(step int) float64 { return float64(step) / float64(max(1, warm)) }
	progress := func(step int) float64 {
		return min(1, float64(step-warm)/float64(max(1, total-warm)))
	}
	decay := func(f func(step int) float64) func(int) float64 {
		return func(step int) float64 {
			step = max(step, 0)
			if step < warm {
				return base * warmup(step)
			}
			return minLR + (base-minLR)*f(step)
		}
	}
	switch cfg.Name {
	case ScheduleConstant:
		return func(int) float64 { return base }, nil
	case ScheduleConstantWithWarmup:
		return func(step int) float64 {
			if step = max(step, 0); step < warm {
				return base * warmup(step)
			}
			return base
		}, nil
	case ScheduleLinear:
		return decay(func(step int) float64 {
			return max(0, float64(total-step)/float64(max(1, total-warm)))
		}), nil
	case ScheduleCosine:
		cycles := cfg.NumCycles
		if cycles == 0 {
			cycles = 0.5
		}
		return decay(func(step int) float64 {
			return max(0, 0.5*(1+math.Cos(math.Pi*cycles*2*progress(step))))
		}), nil
	case ScheduleCosineWithRestarts:
		cycles := cfg.NumCycles
		if cycles == 0 {
			cycles = 1
		}
		return decay(func(step int) float64 {
			p := progress(step)
			if p >= 1 {
				return 0
			}
			return max(0, 0.5*(1+math.Cos(math.Pi*math.Mod(cycles*p, 1))))
		}), nil
	default: // polynomial
		power := cfg.Power
		if power == 0 {
			power = 1
		}
		return func(step int) float64 {
			step = max(step, 0)
			switch {
			case step < warm:
				return base * warmup(step)
			case step > total:
				return minLR
			}
			remaining := 1 - float64(step-warm)/float64(max(1, total-warm))
			return (base-minLR)*math.Pow(remaining, power) + minLR
		}, nil
	}
}
