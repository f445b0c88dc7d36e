package schedulers

import (
	"math"
	"math/big"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loba-dev/loba/internal/fixtures"
)

func realConfig(t *testing.T, model string) string {
	return filepath.Join(fixtures.Root(t), "real", "configs", model, "scheduler", "scheduler_config.json")
}

func TestRealConfigs(t *testing.T) {
	// SDXL base: EulerDiscreteScheduler, with PNDM/DDIM leftovers (skip_prk_steps, clip_sample, ...).
	cfg, err := LoadConfig(realConfig(t, "sdxl_base"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClassName != ClassEulerDiscrete || cfg.TimestepSpacing != "leading" || cfg.StepsOffset != 1 ||
		cfg.BetaSchedule != "scaled_linear" || cfg.InterpolationType != "linear" || cfg.UseKarrasSigmas {
		t.Errorf("sdxl_base config parsed as %+v", cfg)
	}
	if !slices.Equal(cfg.Unused, []string{"skip_prk_steps"}) {
		t.Errorf("sdxl_base unused keys %v, want [skip_prk_steps]", cfg.Unused)
	}
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}

	// SD1.5: PNDMScheduler is not ported; LoadConfig says so, LoadConfigAs reinterprets it.
	_, err = LoadConfig(realConfig(t, "sd15"))
	if err == nil || !strings.Contains(err.Error(), `"PNDMScheduler"`) || !strings.Contains(err.Error(), ClassDDIM) {
		t.Errorf("LoadConfig(sd15) error %v, want one naming PNDMScheduler and the valid classes", err)
	}
	for _, class := range validClasses {
		cfg, err := LoadConfigAs(realConfig(t, "sd15"), class)
		if err != nil {
			t.Fatalf("LoadConfigAs(sd15, %s): %v", class, err)
		}
		if cfg.ClassName != class || cfg.StepsOffset != 1 || cfg.BetaStart != 0.00085 || cfg.ClipSample {
			t.Errorf("sd15 as %s parsed as %+v", class, cfg)
		}
		if class == ClassDDIM && cfg.SetAlphaToOne {
			t.Errorf("sd15 as DDIM: set_alpha_to_one should be false")
		}
		if class == ClassEulerDiscrete && cfg.TimestepSpacing != "linspace" {
			t.Errorf("sd15 as Euler: timestep_spacing %q, want the Euler default linspace", cfg.TimestepSpacing)
		}
		if _, err := New(cfg); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		json  string
		wants []string // substrings of the error
	}{
		{`{"_class_name": "LMSDiscreteScheduler"}`, []string{"_class_name", `"LMSDiscreteScheduler"`, ClassEulerDiscrete}},
		{`{}`, []string{"_class_name"}},
		{`{"_class_name": "DDIMScheduler", "prediction_type": "flow"}`, []string{"prediction_type", `"flow"`, "v_prediction"}},
		{`{"_class_name": "DDIMScheduler", "beta_schedule": "cosine"}`, []string{"beta_schedule", `"cosine"`, "squaredcos_cap_v2"}},
		{`{"_class_name": "EulerDiscreteScheduler", "beta_schedule": "sigmoid"}`, []string{"beta_schedule", `"sigmoid"`}},
		{`{"_class_name": "DDPMScheduler", "timestep_spacing": "uniform"}`, []string{"timestep_spacing", `"uniform"`, "trailing"}},
		{`{"_class_name": "DDPMScheduler", "thresholding": true}`, []string{"thresholding"}},
		{`{"_class_name": "DDPMScheduler", "variance_type": "learned_range"}`, []string{"variance_type", "learned_range", "fixed_small"}},
		{`{"_class_name": "EulerDiscreteScheduler", "interpolation_type": "log_linear"}`, []string{"interpolation_type", "log_linear"}},
		{`{"_class_name": "EulerDiscreteScheduler", "use_beta_sigmas": true}`, []string{"use_beta_sigmas"}},
		{`{"_class_name": "EulerDiscreteScheduler", "timestep_type": "other"}`, []string{"timestep_type", "continuous"}},
		{`{"_class_name": "EulerDiscreteScheduler", "final_sigmas_type": "one"}`, []string{"final_sigmas_type", "sigma_min"}},
		{`{"_class_name": "DDIMScheduler", "num_train_timesteps": 0}`, []string{"num_train_timesteps"}},
		{`{"_class_name": "DDIMScheduler", "trained_betas": [0.1, 0.2]}`, []string{"trained_betas", "num_train_timesteps"}},
	} {
		_, err := ParseConfig([]byte(tc.json))
		if err == nil {
			t.Errorf("%s: no error", tc.json)
			continue
		}
		for _, w := range tc.wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.json, err, w)
			}
		}
	}
	// Keys of other classes and unknown keys are accepted.
	cfg, err := ParseConfig([]byte(`{"_class_name": "DDPMScheduler", "use_karras_sigmas": false, "foo": 1,
		"set_alpha_to_one": false, "trained_betas": null, "sigma_min": null}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Unused, []string{"foo"}) {
		t.Errorf("unused %v, want [foo]", cfg.Unused)
	}
	// Class defaults (diffusers __init__).
	for class, spacing := range map[string]string{ClassDDPM: "leading", ClassDDIM: "leading", ClassEulerDiscrete: "linspace"} {
		cfg, err := ParseConfig([]byte(`{"_class_name": "` + class + `"}`))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.TimestepSpacing != spacing || cfg.BetaStart != 0.0001 || cfg.BetaEnd != 0.02 || cfg.NumTrainTimesteps != 1000 {
			t.Errorf("%s defaults: %+v", class, cfg)
		}
	}
	if _, err := NewDDIM(&Config{ClassName: ClassDDPM, NumTrainTimesteps: 10, BetaSchedule: "linear",
		PredictionType: "epsilon", TimestepSpacing: "leading", VarianceType: "fixed_small"}); err == nil {
		t.Errorf("NewDDIM accepted a DDPMScheduler config")
	}
}

// TestFMA32 checks fma32 against exact big.Float arithmetic, ties included.
func TestFMA32(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	exact := func(a, b, c float32) float32 {
		x := new(big.Float).SetPrec(200).SetFloat64(float64(a))
		x.Mul(x, new(big.Float).SetPrec(200).SetFloat64(float64(b)))
		x.Add(x, new(big.Float).SetPrec(200).SetFloat64(float64(c)))
		f, _ := x.SetMode(big.ToNearestEven).Float32()
		return f
	}
	check := func(a, b, c float32) {
		if got, want := fma32(a, b, c), exact(a, b, c); got != want {
			t.Fatalf("fma32(%g, %g, %g) = %g, want %g", a, b, c, got, want)
		}
	}
	for i := 0; i < 200000; i++ {
		a := float32(rng.NormFloat64())
		b := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(40)-20)))
		c := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(40)-20)))
		check(a, b, c)
	}
	// A product that lands exactly on a float32 midpoint after float64 rounding: 1 + 2^-24 + tiny.
	check(1+1.0/(1<<23), 1, 1.0/(1<<24))
	check(float32(1+math.Pow(2, -12)), float32(1+math.Pow(2, -12)), float32(math.Pow(2, -60)))
}

func TestTimestepSpacings(t *testing.T) {
	for _, tc := range []struct {
		spacing string
		offset  int
		n       int
		head    []int64
		last    int64
	}{
		{"leading", 1, 50, []int64{981, 961, 941}, 1},
		{"trailing", 0, 50, []int64{999, 979, 959}, 19},
		{"linspace", 0, 10, []int64{999, 888, 777}, 0},
		{"trailing", 0, 3, []int64{999, 666, 332}, 332},
	} {
		cfg, err := ParseConfig([]byte(`{"_class_name": "DDIMScheduler", "timestep_spacing": "` + tc.spacing + `"}`))
		if err != nil {
			t.Fatal(err)
		}
		cfg.StepsOffset = tc.offset
		ts, err := discreteTimesteps(cfg, tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != tc.n || !slices.Equal(ts[:len(tc.head)], tc.head) || ts[len(ts)-1] != tc.last {
			t.Errorf("%s offset %d, %d steps: %v", tc.spacing, tc.offset, tc.n, ts)
		}
	}
}

func TestDDPMVariance(t *testing.T) {
	// diffusers test_scheduler_ddpm.py test_variance (linear 0.0001..0.02, 1000 steps, no set_timesteps).
	s := mustScheduler(t, ClassDDPM, `{"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02}`).(*DDPMScheduler)
	for _, tc := range []struct {
		t    int
		want float64
	}{{0, 0}, {487, 0.00979}, {999, 0.02}} {
		c := s.coefs(tc.t, tc.t-1)
		if got := float64(c.std * c.std); math.Abs(got-tc.want) > 1e-5 {
			t.Errorf("variance(%d) = %g, want %g", tc.t, got, tc.want)
		}
	}
}
