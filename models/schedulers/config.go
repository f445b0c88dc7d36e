package schedulers

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/loba-dev/loba/models/config"
)

// Class names (diffusers' `_class_name`) of the supported schedulers.
const (
	ClassDDPM          = "DDPMScheduler"
	ClassDDIM          = "DDIMScheduler"
	ClassEulerDiscrete = "EulerDiscreteScheduler"
)

var (
	validClasses          = []string{ClassDDPM, ClassDDIM, ClassEulerDiscrete}
	validTimestepSpacings = []string{"linspace", "leading", "trailing"}
)

// Config is a diffusers scheduler_config.json, with the union of the keys of DDPMScheduler,
// DDIMScheduler and EulerDiscreteScheduler as JSON tags. Keys a class does not use are ignored by
// it, as diffusers' from_config does; other unknown keys (e.g. PNDM's skip_prk_steps) are accepted
// and recorded in Unused (see package models/config).
type Config struct {
	ClassName        string `json:"_class_name"`
	DiffusersVersion string `json:"_diffusers_version,omitempty"`

	// Shared by all three classes.
	NumTrainTimesteps   int       `json:"num_train_timesteps"`
	BetaStart           float64   `json:"beta_start"`
	BetaEnd             float64   `json:"beta_end"`
	BetaSchedule        string    `json:"beta_schedule"`
	TrainedBetas        []float64 `json:"trained_betas"`
	PredictionType      string    `json:"prediction_type"`
	TimestepSpacing     string    `json:"timestep_spacing"`
	StepsOffset         int       `json:"steps_offset"`
	RescaleBetasZeroSNR bool      `json:"rescale_betas_zero_snr"`

	// DDPMScheduler and DDIMScheduler.
	ClipSample               bool    `json:"clip_sample"`
	ClipSampleRange          float64 `json:"clip_sample_range"`
	Thresholding             bool    `json:"thresholding"`
	DynamicThresholdingRatio float64 `json:"dynamic_thresholding_ratio"`
	SampleMaxValue           float64 `json:"sample_max_value"`
	VarianceType             string  `json:"variance_type"`    // DDPM only
	SetAlphaToOne            bool    `json:"set_alpha_to_one"` // DDIM only

	// EulerDiscreteScheduler.
	InterpolationType    string   `json:"interpolation_type"`
	UseKarrasSigmas      bool     `json:"use_karras_sigmas"`
	UseExponentialSigmas bool     `json:"use_exponential_sigmas"`
	UseBetaSigmas        bool     `json:"use_beta_sigmas"`
	SigmaMin             *float64 `json:"sigma_min"`
	SigmaMax             *float64 `json:"sigma_max"`
	TimestepType         string   `json:"timestep_type"`
	FinalSigmasType      string   `json:"final_sigmas_type"`

	// Unused lists the keys of the parsed config.json that Config has no field for, sorted, without
	// the "_" metadata keys. They do not change the scheduler; `loba inspect` reports them.
	Unused []string `json:"-"`
}

// DefaultConfig returns the __init__ defaults of a diffusers scheduler class.
func DefaultConfig(class string) (*Config, error) {
	cfg := &Config{
		ClassName:                class,
		NumTrainTimesteps:        1000,
		BetaStart:                0.0001,
		BetaEnd:                  0.02,
		BetaSchedule:             "linear",
		PredictionType:           "epsilon",
		TimestepSpacing:          "leading",
		ClipSample:               true,
		ClipSampleRange:          1.0,
		DynamicThresholdingRatio: 0.995,
		SampleMaxValue:           1.0,
	}
	switch class {
	case ClassDDPM:
		cfg.VarianceType = "fixed_small"
	case ClassDDIM:
		cfg.SetAlphaToOne = true
	case ClassEulerDiscrete:
		cfg.TimestepSpacing = "linspace"
		cfg.InterpolationType = "linear"
		cfg.TimestepType = "discrete"
		cfg.FinalSigmasType = "zero"
	default:
		return nil, fmt.Errorf("schedulers: _class_name %q is not supported; valid: %s", class,
			strings.Join(validClasses, ", "))
	}
	return cfg, nil
}

// ParseConfig parses a scheduler_config.json: the defaults of its `_class_name`, overridden by the
// keys present, then validated.
func ParseConfig(data []byte) (*Config, error) {
	var head struct {
		ClassName *string `json:"_class_name"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("schedulers: parsing scheduler config: %w", err)
	}
	if head.ClassName == nil {
		return nil, fmt.Errorf("schedulers: scheduler config has no _class_name; valid: %s "+
			"(use ParseConfigAs to choose the class)", strings.Join(validClasses, ", "))
	}
	if !slices.Contains(validClasses, *head.ClassName) {
		return nil, fmt.Errorf("schedulers: _class_name %q is not supported; valid: %s "+
			"(ParseConfigAs/LoadConfigAs reinterpret a config as another class, like diffusers' from_config)",
			*head.ClassName, strings.Join(validClasses, ", "))
	}
	return ParseConfigAs(data, *head.ClassName)
}

// ParseConfigAs parses a scheduler config as the given class, whatever its `_class_name` (like
// diffusers' `DDIMScheduler.from_config(other.config)`): the class defaults, overridden by the keys
// present; the result's ClassName is class.
func ParseConfigAs(data []byte, class string) (*Config, error) {
	cfg, err := DefaultConfig(class)
	if err != nil {
		return nil, err
	}
	unused, err := config.Decode(data, cfg)
	if err != nil {
		return nil, fmt.Errorf("schedulers: parsing scheduler config: %w", err)
	}
	cfg.ClassName = class
	cfg.Unused = unused
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadConfig reads and validates a scheduler_config.json (or a fixture's config.json). Errors name the
// file.
func LoadConfig(path string) (*Config, error) { return config.Load(path, ParseConfig) }

// LoadConfigAs reads a scheduler config as the given class (see ParseConfigAs), e.g. the SD1.5
// PNDMScheduler config as a DDIMScheduler. Errors name the file.
func LoadConfigAs(path, class string) (*Config, error) {
	return config.Load(path, func(data []byte) (*Config, error) { return ParseConfigAs(data, class) })
}

func checkOneOf(key, value string, valid ...string) error {
	if !slices.Contains(valid, value) {
		return fmt.Errorf("schedulers: %s %q is not supported; valid: %s", key, value, strings.Join(valid, ", "))
	}
	return nil
}

// Validate checks the keys that the config's class uses. Values diffusers accepts but this port does
// not implement (thresholding, learned variances, beta sigmas, log_linear interpolation) are rejected
// with an error saying so.
func (c *Config) Validate() error {
	if err := checkOneOf("_class_name", c.ClassName, validClasses...); err != nil {
		return err
	}
	if c.NumTrainTimesteps < 1 {
		return fmt.Errorf("schedulers: num_train_timesteps must be >= 1, got %d", c.NumTrainTimesteps)
	}
	if c.TrainedBetas != nil {
		if len(c.TrainedBetas) != c.NumTrainTimesteps {
			return fmt.Errorf("schedulers: trained_betas has %d values but num_train_timesteps is %d",
				len(c.TrainedBetas), c.NumTrainTimesteps)
		}
	} else {
		schedules := []string{"linear", "scaled_linear", "squaredcos_cap_v2"}
		if c.ClassName == ClassDDPM {
			schedules = append(schedules, "sigmoid", "laplace")
		}
		if err := checkOneOf("beta_schedule", c.BetaSchedule, schedules...); err != nil {
			return err
		}
	}
	if err := checkOneOf("timestep_spacing", c.TimestepSpacing, validTimestepSpacings...); err != nil {
		return err
	}
	if c.StepsOffset < 0 {
		return fmt.Errorf("schedulers: steps_offset must be >= 0, got %d", c.StepsOffset)
	}
	switch c.ClassName {
	case ClassDDPM, ClassDDIM:
		if err := checkOneOf("prediction_type", c.PredictionType, "epsilon", "v_prediction", "sample"); err != nil {
			return err
		}
		if c.Thresholding {
			return fmt.Errorf("schedulers: thresholding true (dynamic thresholding) is not implemented; " +
				"valid: false (use clip_sample for plain clipping)")
		}
		if c.ClipSample && c.ClipSampleRange <= 0 {
			return fmt.Errorf("schedulers: clip_sample_range must be > 0 when clip_sample is true, got %g",
				c.ClipSampleRange)
		}
		if c.ClassName == ClassDDPM {
			if err := checkOneOf("variance_type", c.VarianceType, "fixed_small", "fixed_small_log",
				"fixed_large"); err != nil {
				return fmt.Errorf("%w (learned/learned_range need a model that predicts its variance; "+
					"fixed_large_log takes the square root of a log and gives NaN in diffusers)", err)
			}
		}
	case ClassEulerDiscrete:
		if err := checkOneOf("prediction_type", c.PredictionType, "epsilon", "v_prediction", "sample",
			"original_sample"); err != nil {
			return err
		}
		if err := checkOneOf("interpolation_type", c.InterpolationType, "linear"); err != nil {
			return fmt.Errorf("%w (log_linear is not implemented)", err)
		}
		if err := checkOneOf("timestep_type", c.TimestepType, "discrete", "continuous"); err != nil {
			return err
		}
		if err := checkOneOf("final_sigmas_type", c.FinalSigmasType, "zero", "sigma_min"); err != nil {
			return err
		}
		if c.UseBetaSigmas {
			return fmt.Errorf("schedulers: use_beta_sigmas true is not implemented (it needs scipy's beta " +
				"ppf); valid: false")
		}
		if c.UseKarrasSigmas && c.UseExponentialSigmas {
			return fmt.Errorf("schedulers: only one of use_karras_sigmas, use_exponential_sigmas, " +
				"use_beta_sigmas can be true")
		}
	}
	return nil
}

// New builds the scheduler named by cfg.ClassName.
func New(cfg *Config) (Scheduler, error) {
	if cfg == nil {
		return nil, fmt.Errorf("schedulers: nil config")
	}
	switch cfg.ClassName {
	case ClassDDPM:
		return NewDDPM(cfg)
	case ClassDDIM:
		return NewDDIM(cfg)
	case ClassEulerDiscrete:
		return NewEulerDiscrete(cfg)
	}
	return nil, checkOneOf("_class_name", cfg.ClassName, validClasses...)
}

// Load reads a scheduler config file and builds its scheduler.
func Load(path string) (Scheduler, error) {
	cfg, err := LoadConfig(path)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}
