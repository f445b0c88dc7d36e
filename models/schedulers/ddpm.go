package schedulers

// Ports diffusers DDPMScheduler (schedulers/scheduling_ddpm.py): Ho et al. 2020, "Denoising Diffusion
// Probabilistic Models", formulas (6), (7) and (15).

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
)

// DDPMScheduler ports diffusers DDPMScheduler (variance types fixed_small, fixed_small_log,
// fixed_large; no thresholding).
type DDPMScheduler struct {
	*schedule
	numInferenceSteps int
	timesteps         []int64
}

var _ Scheduler = (*DDPMScheduler)(nil)

// NewDDPM builds a DDPMScheduler from a config with _class_name DDPMScheduler.
func NewDDPM(cfg *Config) (*DDPMScheduler, error) {
	s, err := newSchedule(cfg, ClassDDPM)
	if err != nil {
		return nil, err
	}
	d := &DDPMScheduler{schedule: s}
	n := len(s.alphasCumprod)
	d.timesteps = make([]int64, n)
	for i := range d.timesteps {
		d.timesteps[i] = int64(n - 1 - i)
	}
	return d, nil
}

// InitNoiseSigma is 1.
func (s *DDPMScheduler) InitNoiseSigma() float32 { return 1 }

// NumInferenceSteps is 0 before SetTimesteps (then every training timestep is a step).
func (s *DDPMScheduler) NumInferenceSteps() int { return s.numInferenceSteps }

// Timesteps returns the current timesteps as float64.
func (s *DDPMScheduler) Timesteps() []float64 { return toFloat64s(s.timesteps) }

// TimestepsInt64 returns the current timesteps (diffusers' int64 tensor).
func (s *DDPMScheduler) TimestepsInt64() []int64 { return append([]int64(nil), s.timesteps...) }

// SetTimesteps ports DDPMScheduler.set_timesteps(num_inference_steps).
func (s *DDPMScheduler) SetTimesteps(numInferenceSteps int) error {
	ts, err := discreteTimesteps(s.cfg, numInferenceSteps)
	if err != nil {
		return err
	}
	s.numInferenceSteps, s.timesteps = numInferenceSteps, ts
	return nil
}

// previousTimestep ports DDPMScheduler.previous_timestep: the next entry of the timesteps after the
// first occurrence of t (-1 after the last); t-1 before SetTimesteps.
func (s *DDPMScheduler) previousTimestep(t int) (int, error) {
	if s.numInferenceSteps == 0 {
		return t - 1, nil
	}
	for i, v := range s.timesteps {
		if v == int64(t) {
			if i == len(s.timesteps)-1 {
				return -1, nil
			}
			return int(s.timesteps[i+1]), nil
		}
	}
	return 0, fmt.Errorf("schedulers: DDPMScheduler: timestep %d is not one of the %d timesteps of set_timesteps",
		t, len(s.timesteps))
}

// prevTable maps every training timestep to previousTimestep (t-1 for timesteps that are not in the
// schedule), for the graph.
func (s *DDPMScheduler) prevTable() []int32 {
	table := make([]int32, len(s.alphasCumprod))
	for t := range table {
		table[t] = int32(t - 1)
	}
	if s.numInferenceSteps > 0 {
		for i := len(s.timesteps) - 1; i >= 0; i-- { // first occurrence wins
			prev := int32(-1)
			if i < len(s.timesteps)-1 {
				prev = int32(s.timesteps[i+1])
			}
			if t := s.timesteps[i]; t >= 0 && int(t) < len(table) {
				table[t] = prev
			}
		}
	}
	return table
}

// ScaleModelInput returns sample unchanged (DDPM does not scale).
func (s *DDPMScheduler) ScaleModelInput(sample []float32, timestep float64) ([]float32, error) {
	return append([]float32(nil), sample...), nil
}

// ddpmCoefs are the float32 scalars of one DDPM step.
type ddpmCoefs struct {
	sa, sb             float32 // sqrt(a_t), sqrt(1-a_t)
	x0Coef, sampleCoef float32
	std                float32 // multiplies the noise (0 at t = 0)
}

func (s *DDPMScheduler) coefs(t, prev int) ddpmCoefs {
	aT := s.alphasCumprod[t]
	aPrev := float32(1)
	if prev >= 0 {
		aPrev = s.alphasCumprod[prev]
	}
	bT, bPrev := 1-aT, 1-aPrev
	curAlpha := aT / aPrev
	curBeta := 1 - curAlpha
	c := ddpmCoefs{
		sa:         sqrt32(aT),
		sb:         sqrt32(bT),
		x0Coef:     float32(sqrt32(aPrev)*curBeta) / bT,
		sampleCoef: float32(sqrt32(curAlpha)*bPrev) / bT,
	}
	if t > 0 {
		variance := max(float32(bPrev/bT)*curBeta, 1e-20)
		switch s.cfg.VarianceType {
		case "fixed_small":
			c.std = sqrt32(variance)
		case "fixed_small_log":
			c.std = float32(math.Exp(float64(0.5 * float32(math.Log(float64(variance))))))
		case "fixed_large":
			c.std = sqrt32(curBeta)
		}
	}
	return c
}

// Step ports DDPMScheduler.step:
//
//	x0 from the model output (epsilon / sample / v_prediction), clipped if clip_sample
//	μ = sqrt(a_prev)·β_t/(1-a_t) · x0 + sqrt(α_t)·(1-a_prev)/(1-a_t) · x_t        (formula 7)
//	x_prev = μ + σ_t·noise (t > 0), σ_t² = (1-a_prev)/(1-a_t)·β_t (fixed_small)
//
// noise (standard normal, sample's size) is required when timestep > 0.
func (s *DDPMScheduler) Step(modelOutput []float32, timestep float64, sample, noise []float32,
	opts StepOptions) (*StepOutput, error) {
	t, err := s.trainTimestep(timestep)
	if err != nil {
		return nil, err
	}
	prev, err := s.previousTimestep(t)
	if err != nil {
		return nil, err
	}
	if _, err := perItem(1, sample, modelOutput); err != nil {
		return nil, err
	}
	if t > 0 && len(noise) != len(sample) {
		return nil, fmt.Errorf("schedulers: DDPMScheduler.Step at timestep %d needs noise of %d values, got %d",
			t, len(sample), len(noise))
	}
	c := s.coefs(t, prev)
	clip, r := s.cfg.ClipSample, float32(s.cfg.ClipSampleRange)
	out := &StepOutput{PrevSample: make([]float32, len(sample)), PredOriginalSample: make([]float32, len(sample))}
	for i, x := range sample {
		x0, _ := predOriginal32(s.cfg.PredictionType, modelOutput[i], x, c.sa, c.sb)
		if clip {
			x0 = min(max(x0, -r), r)
		}
		p := float32(c.x0Coef*x0) + float32(c.sampleCoef*x)
		if t > 0 {
			p += float32(c.std * noise[i])
		}
		out.PrevSample[i], out.PredOriginalSample[i] = p, x0
	}
	return out, nil
}

// AddNoise ports add_noise: sqrt(a_t)·x0 + sqrt(1-a_t)·noise per batch item (Ho et al. formula 4).
func (s *DDPMScheduler) AddNoise(originalSamples, noise []float32, timesteps []float64) ([]float32, error) {
	idx, err := s.trainTimesteps(timesteps)
	if err != nil {
		return nil, err
	}
	return addNoiseAC(s.alphasCumprod, originalSamples, noise, idx, false)
}

// GetVelocity ports get_velocity: sqrt(a_t)·noise - sqrt(1-a_t)·sample per batch item.
func (s *DDPMScheduler) GetVelocity(sample, noise []float32, timesteps []float64) ([]float32, error) {
	idx, err := s.trainTimesteps(timesteps)
	if err != nil {
		return nil, err
	}
	return addNoiseAC(s.alphasCumprod, sample, noise, idx, true)
}

// ScaleModelInputGraph returns sample.
func (s *DDPMScheduler) ScaleModelInputGraph(sample, timestep *Node) *Node { return sample }

// PredOriginalGraph returns DDPM's pred_original_sample (before clipping).
func (s *DDPMScheduler) PredOriginalGraph(modelOutput, timestep, sample *Node) *Node {
	checkSameShape("DDPMScheduler.PredOriginalGraph", sample, modelOutput)
	checkTimestepNode("DDPMScheduler.PredOriginalGraph", timestep)
	aT := gather1D(Const(sample.Graph(), s.alphasCumprod), timestep)
	sa, sb := broadcastItem(Sqrt(aT), sample), broadcastItem(Sqrt(OneMinus(aT)), sample)
	x0, _ := predOriginalGraph(s.cfg.PredictionType, modelOutput, sample, sa, sb)
	return x0
}

// StepGraph is Step in a graph. timestep: [] or [B], each one of Timesteps(). noise is required
// (items at timestep 0 ignore it).
func (s *DDPMScheduler) StepGraph(modelOutput, timestep, sample, noise *Node, opts StepOptions) (prevSample, predOriginalSample *Node) {
	checkSameShape("DDPMScheduler.StepGraph", sample, modelOutput, noise)
	checkTimestepNode("DDPMScheduler.StepGraph", timestep)
	if noise == nil {
		exceptions.Panicf("schedulers: DDPMScheduler.StepGraph needs noise (used where timestep > 0)")
	}
	g := sample.Graph()
	ac := Const(g, s.alphasCumprod)
	t := ConvertDType(timestep, dtypes.Int32)
	prev := gather1D(Const(g, s.prevTable()), t)
	aT := gather1D(ac, t)
	aPrev := Where(GreaterOrEqual(prev, ScalarZero(g, dtypes.Int32)),
		gather1D(ac, MaxScalar(prev, 0)), ScalarOne(g, dtypes.Float32))
	bT, bPrev := OneMinus(aT), OneMinus(aPrev)
	curAlpha := Div(aT, aPrev)
	curBeta := OneMinus(curAlpha)
	x0Coef := Div(Mul(Sqrt(aPrev), curBeta), bT)
	sampleCoef := Div(Mul(Sqrt(curAlpha), bPrev), bT)
	variance := MaxScalar(Mul(Div(bPrev, bT), curBeta), 1e-20)
	var std *Node
	switch s.cfg.VarianceType {
	case "fixed_small":
		std = Sqrt(variance)
	case "fixed_small_log":
		std = Exp(MulScalar(Log(variance), 0.5))
	case "fixed_large":
		std = Sqrt(curBeta)
	default:
		exceptions.Panicf("schedulers: variance_type %q not implemented", s.cfg.VarianceType)
	}
	std = Where(GreaterThan(t, ScalarZero(g, dtypes.Int32)), std, ScalarZero(g, dtypes.Float32))

	sa, sb := broadcastItem(Sqrt(aT), sample), broadcastItem(Sqrt(bT), sample)
	x0, _ := predOriginalGraph(s.cfg.PredictionType, modelOutput, sample, sa, sb)
	if s.cfg.ClipSample {
		x0 = ClipScalar(x0, -s.cfg.ClipSampleRange, s.cfg.ClipSampleRange)
	}
	prevSample = Add(Mul(broadcastItem(x0Coef, sample), x0), Mul(broadcastItem(sampleCoef, sample), sample))
	prevSample = Add(prevSample, Mul(broadcastItem(std, sample), noise))
	return prevSample, x0
}

// AddNoiseGraph is AddNoise in a graph (integer training timesteps, [B] or []).
func (s *DDPMScheduler) AddNoiseGraph(originalSamples, noise, timesteps *Node) *Node {
	return addNoiseACGraph(s.alphasCumprod, originalSamples, noise, timesteps, false)
}

// GetVelocityGraph is GetVelocity in a graph (integer training timesteps, [B] or []).
func (s *DDPMScheduler) GetVelocityGraph(sample, noise, timesteps *Node) *Node {
	return addNoiseACGraph(s.alphasCumprod, sample, noise, timesteps, true)
}
