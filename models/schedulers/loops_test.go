package schedulers

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/loba-dev/loba/internal/testutil"
)

// The full-loop checks of diffusers' own scheduler tests (tests/schedulers/test_scheduler_ddim.py and
// test_scheduler_euler.py at 58eb52c0): a deterministic dummy model and sample, sum and mean of |x|
// after the whole loop, with diffusers' tolerances (1e-2 on the sum, 1e-3 on the mean). They cover
// configurations the fixtures do not (linear betas, clip_sample, set_alpha_to_one, linspace spacing,
// Karras sigmas).

// dummySampleDeter is SchedulerCommonTest.dummy_sample_deter ([4, 3, 8, 8]), or dummy_noise_deter when
// flip is true.
func dummySampleDeter(flip bool) []float32 {
	const b, c, h, w = 4, 3, 8, 8
	n := b * c * h * w
	out := make([]float32, n)
	for bi := 0; bi < b; bi++ {
		for ci := 0; ci < c; ci++ {
			for hi := 0; hi < h; hi++ {
				for wi := 0; wi < w; wi++ {
					k := ((ci*h+hi)*w+wi)*b + bi
					if flip {
						k = n - 1 - k
					}
					out[((bi*c+ci)*h+hi)*w+wi] = float32(k) / float32(n)
				}
			}
		}
	}
	return out
}

// dummyModel is SchedulerCommonTest.dummy_model: sample·t/(t+1).
func dummyModel(sample []float32, t float64) []float32 {
	tf := float32(t)
	out := make([]float32, len(sample))
	for i, x := range sample {
		out[i] = float32(x*tf) / (tf + 1)
	}
	return out
}

func sumMeanAbs(x []float32) (sum, mean float64) {
	var s float64
	for _, v := range x {
		s += math.Abs(float64(v))
	}
	return s, s / float64(len(x))
}

func mustScheduler(t *testing.T, class string, json string) Scheduler {
	t.Helper()
	cfg, err := ParseConfigAs([]byte(json), class)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func checkSumMean(t *testing.T, x []float32, wantSum, wantMean float64) {
	t.Helper()
	sum, mean := sumMeanAbs(x)
	if math.Abs(sum-wantSum) >= 1e-2 || math.Abs(mean-wantMean) >= 1e-3 {
		t.Errorf("sum|x| = %.9g (want %.9g), mean|x| = %.9g (want %.9g)", sum, wantSum, mean, wantMean)
	} else {
		t.Logf("sum|x| = %.9g (want %.9g), mean|x| = %.9g (want %.9g)", sum, wantSum, mean, wantMean)
	}
}

func TestDiffusersFullLoopDDIM(t *testing.T) {
	const base = `{"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear",
		"clip_sample": true`
	for _, tc := range []struct {
		name, extra       string
		addNoise          bool
		wantSum, wantMean float64
	}{
		{"no_noise", "", false, 172.0067, 0.223967},
		{"v_prediction", `, "prediction_type": "v_prediction"`, false, 52.5302, 0.0684},
		{"set_alpha_to_one", `, "set_alpha_to_one": true, "beta_start": 0.01`, false, 149.8295, 0.1951},
		{"no_set_alpha_to_one", `, "set_alpha_to_one": false, "beta_start": 0.01`, false, 149.0784, 0.1941},
		{"with_noise", "", true, 354.5418, 0.4616},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustScheduler(t, ClassDDIM, base+tc.extra+"}")
			if err := s.SetTimesteps(10); err != nil {
				t.Fatal(err)
			}
			sample := dummySampleDeter(false)
			ts := s.Timesteps()
			if tc.addNoise {
				ts = ts[8:]
				var err error
				if sample, err = s.AddNoise(sample, dummySampleDeter(true), ts[:1]); err != nil {
					t.Fatal(err)
				}
			}
			for _, ti := range ts {
				out, err := s.Step(dummyModel(sample, ti), ti, sample, nil, StepOptions{})
				if err != nil {
					t.Fatal(err)
				}
				sample = out.PrevSample
			}
			checkSumMean(t, sample, tc.wantSum, tc.wantMean)
		})
	}
	s := mustScheduler(t, ClassDDIM, base+`, "steps_offset": 1}`)
	if err := s.SetTimesteps(5); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Timesteps(), []float64{801, 601, 401, 201, 1}; !equalFloats(got, want) {
		t.Errorf("steps_offset 1, 5 steps: timesteps %v, want %v", got, want)
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDiffusersFullLoopEuler(t *testing.T) {
	backend := testutil.Backend(t)
	const base = `{"num_train_timesteps": 1100, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear"`
	for _, tc := range []struct {
		name, extra       string
		addNoise, graph   bool
		wantSum, wantMean float64
	}{
		{"no_noise", "", false, true, 10.0807, 0.0131},
		{"v_prediction", `, "prediction_type": "v_prediction"`, false, true, 0.0002, 2.2676e-06},
		{"karras_sigmas", `, "use_karras_sigmas": true`, false, false, 124.52299499511719, 0.16213932633399963},
		{"with_noise", "", true, false, 57062.9297, 74.3007},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustScheduler(t, ClassEulerDiscrete, base+tc.extra+"}")
			if err := s.SetTimesteps(10); err != nil {
				t.Fatal(err)
			}
			sample := dummySampleDeter(false)
			for i := range sample {
				sample[i] *= s.InitNoiseSigma()
			}
			ts := s.Timesteps()
			if tc.addNoise {
				ts = ts[8:]
				var err error
				if sample, err = s.AddNoise(sample, dummySampleDeter(true), ts[:1]); err != nil {
					t.Fatal(err)
				}
			}
			hostSample := sample
			for _, ti := range ts {
				scaled, err := s.ScaleModelInput(hostSample, ti)
				if err != nil {
					t.Fatal(err)
				}
				out, err := s.Step(dummyModel(scaled, ti), ti, scaled, nil, StepOptions{})
				if err != nil {
					t.Fatal(err)
				}
				hostSample = out.PrevSample
			}
			checkSumMean(t, hostSample, tc.wantSum, tc.wantMean)
			if !tc.graph {
				return
			}
			// The same loop with one compiled graph per step, fed the timestep as a tensor.
			exec := MustNewExec(backend, func(x, tNode *Node) *Node {
				scaled := s.ScaleModelInputGraph(x, tNode)
				tf := tNode
				model := Div(Mul(scaled, tf), OnePlus(tf))
				prev, _ := s.StepGraph(model, tNode, scaled, nil, StepOptions{})
				return prev
			})
			defer exec.Finalize()
			x := tensors.FromFlatDataAndDimensions(sample, 4, 3, 8, 8)
			for _, ti := range ts {
				x = exec.MustExec(x, float32(ti))[0]
			}
			got := tensors.MustCopyFlatData[float32](x)
			checkSumMean(t, got, tc.wantSum, tc.wantMean)
			if rel := testutil.RelErr(got, hostSample); rel > 1e-6 {
				t.Errorf("graph loop differs from host loop: rel %.3g", rel)
			}
		})
	}
}
