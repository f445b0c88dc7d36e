package schedulers

import (
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/loba-dev/loba/internal/testutil"
)

func randNormal(rng *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64())
	}
	return out
}

// TestGraphPerItemTimesteps checks that the graph side with one timestep per batch item equals the
// host side run item by item, for every scheduler and prediction type, including the noise terms
// (DDPM variance, DDIM eta, Euler churn) that the fixtures do not cover.
func TestGraphPerItemTimesteps(t *testing.T) {
	backend := testutil.Backend(t)
	rng := rand.New(rand.NewPCG(3, 4))
	const batch, per = 3, 2 * 3 * 5 // items of shape [2, 3, 5]
	configs := []struct {
		name, class, json string
		opts              StepOptions
	}{
		{"ddpm_eps", ClassDDPM, `{"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "clip_sample": false}`, StepOptions{}},
		{"ddpm_vpred_small_log_zero_snr", ClassDDPM, `{"prediction_type": "v_prediction", "variance_type": "fixed_small_log", "timestep_spacing": "trailing", "rescale_betas_zero_snr": true}`, StepOptions{}},
		{"ddpm_sample_large_cos", ClassDDPM, `{"prediction_type": "sample", "variance_type": "fixed_large", "beta_schedule": "squaredcos_cap_v2", "timestep_spacing": "linspace"}`, StepOptions{}},
		{"ddim_eps_sd15", ClassDDIM, `{"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "clip_sample": false, "set_alpha_to_one": false, "steps_offset": 1}`, StepOptions{}},
		{"ddim_vpred_eta_zero_snr", ClassDDIM, `{"prediction_type": "v_prediction", "timestep_spacing": "trailing", "rescale_betas_zero_snr": true}`, StepOptions{Eta: 0.7}},
		{"ddim_sample_eta1_clipped", ClassDDIM, `{"prediction_type": "sample", "timestep_spacing": "linspace"}`, StepOptions{Eta: 1, UseClippedModelOutput: true}},
		{"euler_eps_sdxl", ClassEulerDiscrete, `{"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "timestep_spacing": "leading", "steps_offset": 1}`, StepOptions{}},
		{"euler_vpred_churn_zero_snr", ClassEulerDiscrete, `{"prediction_type": "v_prediction", "timestep_spacing": "trailing", "rescale_betas_zero_snr": true}`, StepOptions{SChurn: 2}},
		{"euler_karras_churn_range", ClassEulerDiscrete, `{"use_karras_sigmas": true, "final_sigmas_type": "sigma_min"}`, StepOptions{SChurn: 1, STMin: 0.5, STMax: 5, SNoise: 1.003}},
		{"euler_vpred_continuous_exp", ClassEulerDiscrete, `{"prediction_type": "v_prediction", "timestep_type": "continuous", "use_exponential_sigmas": true}`, StepOptions{}},
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			s := mustScheduler(t, c.class, c.json)
			if err := s.SetTimesteps(20); err != nil {
				t.Fatal(err)
			}
			ts := s.Timesteps()
			picked := []float64{ts[0], ts[7], ts[len(ts)-1]}
			x, m, noise := randNormal(rng, batch*per), randNormal(rng, batch*per), randNormal(rng, batch*per)
			wantPrev := make([]float32, 0, batch*per)
			wantX0 := make([]float32, 0, batch*per)
			wantScaled := make([]float32, 0, batch*per)
			for b, ti := range picked {
				sl := func(v []float32) []float32 { return v[b*per : (b+1)*per] }
				out, err := s.Step(sl(m), ti, sl(x), sl(noise), c.opts)
				if err != nil {
					t.Fatal(err)
				}
				scaled, err := s.ScaleModelInput(sl(x), ti)
				if err != nil {
					t.Fatal(err)
				}
				wantPrev = append(wantPrev, out.PrevSample...)
				wantX0 = append(wantX0, out.PredOriginalSample...)
				wantScaled = append(wantScaled, scaled...)
			}
			var tsT *tensors.Tensor
			if c.class == ClassEulerDiscrete {
				tsT = tensors.FromValue([]float32{float32(picked[0]), float32(picked[1]), float32(picked[2])})
			} else {
				tsT = tensors.FromValue([]int32{int32(picked[0]), int32(picked[1]), int32(picked[2])})
			}
			shape := []int{batch, 2, 3, 5}
			res := runGraph(t, backend, func(in []*Node) []*Node {
				prev, x0 := s.StepGraph(in[0], in[1], in[2], in[3], c.opts)
				return []*Node{prev, x0, s.ScaleModelInputGraph(in[2], in[1])}
			}, tensors.FromFlatDataAndDimensions(m, shape...), tsT, tensors.FromFlatDataAndDimensions(x, shape...),
				tensors.FromFlatDataAndDimensions(noise, shape...))
			checkClose(t, "prev_sample", res[0], wantPrev)
			checkClose(t, "pred_original_sample", res[1], wantX0)
			checkClose(t, "scaled_model_input", res[2], wantScaled)

			// add_noise / get_velocity with per-item timesteps (training timesteps for DDPM/DDIM).
			addTs := picked
			if c.class != ClassEulerDiscrete {
				addTs = []float64{0, 500, 999}
				tsT = tensors.FromValue([]int64{0, 500, 999})
			}
			wantNoisy, err := s.AddNoise(x, noise, addTs)
			if err != nil {
				t.Fatal(err)
			}
			wantVel, err := s.GetVelocity(x, noise, addTs)
			if err != nil {
				t.Fatal(err)
			}
			res = runGraph(t, backend, func(in []*Node) []*Node {
				return []*Node{s.AddNoiseGraph(in[0], in[1], in[2]), s.GetVelocityGraph(in[0], in[1], in[2])}
			}, tensors.FromFlatDataAndDimensions(x, shape...), tensors.FromFlatDataAndDimensions(noise, shape...), tsT)
			checkClose(t, "add_noise", res[0], wantNoisy)
			checkClose(t, "get_velocity", res[1], wantVel)
		})
	}
}

// TestEulerDuplicateTimesteps checks index_for_timestep's rule (second occurrence) on host and graph:
// "leading" spacing with more steps than num_train_timesteps // n allows repeats timestep values.
func TestEulerDuplicateTimesteps(t *testing.T) {
	s := mustScheduler(t, ClassEulerDiscrete, `{"num_train_timesteps": 10, "timestep_spacing": "leading"}`).(*EulerDiscreteScheduler)
	if err := s.SetTimesteps(15); err != nil { // step ratio 0: every timestep is 0
		t.Fatal(err)
	}
	i, err := s.IndexForTimestep(0)
	if err != nil || i != 1 {
		t.Fatalf("IndexForTimestep(0) = %d, %v; want 1 (second occurrence)", i, err)
	}
	backend := testutil.Backend(t)
	got := MustExecOnce(backend, func(tn *Node) *Node { return s.stepIndexGraph(tn) }, tensors.FromValue([]float32{0, 0}))
	if v := tensors.MustCopyFlatData[int32](got); v[0] != 1 || v[1] != 1 {
		t.Errorf("stepIndexGraph = %v, want [1 1]", v)
	}
}
