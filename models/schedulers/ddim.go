package schedulers

// Ports diffusers DDIMScheduler (schedulers/scheduling_ddim.py): Song et al. 2020, "Denoising
// Diffusion Implicit Models", formulas (12) and (16).

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
)

// DDIMScheduler ports diffusers DDIMScheduler.
type DDIMScheduler struct {
	*schedule
	finalAlphaCumprod float32
	numInferenceSteps int
	timesteps         []int64
}

var _ Scheduler = (*DDIMScheduler)(nil)

// NewDDIM builds a DDIMScheduler from a config with _class_name DDIMScheduler.
func NewDDIM(cfg *Config) (*DDIMScheduler, error) {
	s, err := newSchedule(cfg, ClassDDIM)
	if err != nil {
		return nil, err
	}
	d := &DDIMScheduler{schedule: s, finalAlphaCumprod: 1}
	if !cfg.SetAlphaToOne {
		d.finalAlphaCumprod = s.alphasCumprod[0]
	}
	n := len(s.alphasCumprod)
	d.timesteps = make([]int64, n)
	for i := range d.timesteps {
		d.timesteps[i] = int64(n - 1 - i)
	}
	return d, nil
}

// FinalAlphaCumprod is the alpha_prod used for the step past timestep 0 (1 when set_alpha_to_one,
// else alphas_cumprod[0]).
func (s *DDIMScheduler) FinalAlphaCumprod() float32 { return s.finalAlphaCumprod }

// InitNoiseSigma is 1.
func (s *DDIMScheduler) InitNoiseSigma() float32 { return 1 }

// NumInferenceSteps is 0 before SetTimesteps.
func (s *DDIMScheduler) NumInferenceSteps() int { return s.numInferenceSteps }

// Timesteps returns the current timesteps as float64.
func (s *DDIMScheduler) Timesteps() []float64 { return toFloat64s(s.timesteps) }

// TimestepsInt64 returns the current timesteps (diffusers' int64 tensor).
func (s *DDIMScheduler) TimestepsInt64() []int64 { return append([]int64(nil), s.timesteps...) }

// SetTimesteps ports DDIMScheduler.set_timesteps (spacings linspace/leading/trailing, steps_offset
// added for leading).
func (s *DDIMScheduler) SetTimesteps(numInferenceSteps int) error {
	ts, err := discreteTimesteps(s.cfg, numInferenceSteps)
	if err != nil {
		return err
	}
	s.numInferenceSteps, s.timesteps = numInferenceSteps, ts
	return nil
}

// discreteTimesteps is set_timesteps of DDPM and DDIM: the spaced timesteps rounded (half to even)
// to int64.
func discreteTimesteps(cfg *Config, n int) ([]int64, error) {
	if n < 1 || n > cfg.NumTrainTimesteps {
		return nil, fmt.Errorf("schedulers: num_inference_steps %d must be in [1, num_train_timesteps=%d]",
			n, cfg.NumTrainTimesteps)
	}
	f, err := spacedTimesteps(cfg.TimestepSpacing, cfg.NumTrainTimesteps, n, cfg.StepsOffset)
	if err != nil {
		return nil, err
	}
	ts := make([]int64, len(f))
	for i, v := range f {
		ts[i] = int64(roundHalfEven(v))
	}
	return ts, nil
}

// prevTimestep is DDIM's previous timestep, t - num_train_timesteps // num_inference_steps (for every
// spacing, as in diffusers).
func (s *DDIMScheduler) prevTimestep(t int) int {
	return t - s.cfg.NumTrainTimesteps/s.numInferenceSteps
}

// ScaleModelInput returns sample unchanged (DDIM does not scale).
func (s *DDIMScheduler) ScaleModelInput(sample []float32, timestep float64) ([]float32, error) {
	return append([]float32(nil), sample...), nil
}

// Step ports DDIMScheduler.step:
//
//	a_t = alphas_cumprod[t], a_prev = alphas_cumprod[t - N/n] (final_alpha_cumprod when negative)
//	x0 = (x - sqrt(1-a_t)·eps) / sqrt(a_t)      (epsilon; v_prediction and sample likewise)
//	σ_t = eta · sqrt((1-a_prev)/(1-a_t) · (1 - a_t/a_prev))
//	x_prev = sqrt(a_prev)·x0 + sqrt(1 - a_prev - σ_t²)·eps + σ_t·noise
//
// noise is needed only when eta > 0.
func (s *DDIMScheduler) Step(modelOutput []float32, timestep float64, sample, noise []float32,
	opts StepOptions) (*StepOutput, error) {
	if s.numInferenceSteps == 0 {
		return nil, fmt.Errorf("schedulers: DDIMScheduler.Step: call SetTimesteps first")
	}
	t, err := s.trainTimestep(timestep)
	if err != nil {
		return nil, err
	}
	if _, err := perItem(1, sample, modelOutput); err != nil {
		return nil, err
	}
	if opts.Eta > 0 && len(noise) != len(sample) {
		return nil, fmt.Errorf("schedulers: DDIMScheduler.Step with eta %g needs noise of %d values, got %d",
			opts.Eta, len(sample), len(noise))
	}
	aT, aPrev := s.alphasCumprod[t], s.finalAlphaCumprod
	if prev := s.prevTimestep(t); prev >= 0 {
		aPrev = s.alphasCumprod[prev]
	}
	bT, bPrev := 1-aT, 1-aPrev
	sa, sb := sqrt32(aT), sqrt32(bT)
	variance := (bPrev / bT) * (1 - aT/aPrev)
	std := float32(opts.Eta) * sqrt32(variance)
	dirCoef := sqrt32(1 - aPrev - float32(std*std))
	saPrev := sqrt32(aPrev)
	clip, r := s.cfg.ClipSample, float32(s.cfg.ClipSampleRange)

	out := &StepOutput{PrevSample: make([]float32, len(sample)), PredOriginalSample: make([]float32, len(sample))}
	for i, x := range sample {
		x0, eps := predOriginal32(s.cfg.PredictionType, modelOutput[i], x, sa, sb)
		if clip {
			x0 = min(max(x0, -r), r)
		}
		if opts.UseClippedModelOutput {
			eps = (x - float32(sa*x0)) / sb
		}
		prev := float32(saPrev*x0) + float32(dirCoef*eps)
		if opts.Eta > 0 {
			prev += float32(std * noise[i])
		}
		out.PrevSample[i], out.PredOriginalSample[i] = prev, x0
	}
	return out, nil
}

// AddNoise ports add_noise: sqrt(a_t)·x0 + sqrt(1-a_t)·noise per batch item.
func (s *DDIMScheduler) AddNoise(originalSamples, noise []float32, timesteps []float64) ([]float32, error) {
	idx, err := s.trainTimesteps(timesteps)
	if err != nil {
		return nil, err
	}
	return addNoiseAC(s.alphasCumprod, originalSamples, noise, idx, false)
}

// GetVelocity ports get_velocity: sqrt(a_t)·noise - sqrt(1-a_t)·sample per batch item.
func (s *DDIMScheduler) GetVelocity(sample, noise []float32, timesteps []float64) ([]float32, error) {
	idx, err := s.trainTimesteps(timesteps)
	if err != nil {
		return nil, err
	}
	return addNoiseAC(s.alphasCumprod, sample, noise, idx, true)
}

func (s *schedule) trainTimesteps(ts []float64) ([]int, error) {
	idx := make([]int, len(ts))
	for i, t := range ts {
		var err error
		if idx[i], err = s.trainTimestep(t); err != nil {
			return nil, err
		}
	}
	return idx, nil
}

// ScaleModelInputGraph returns sample.
func (s *DDIMScheduler) ScaleModelInputGraph(sample, timestep *Node) *Node { return sample }

// alphasGraph gathers a_t and a_prev for integer timesteps t ([] or [B]).
func (s *DDIMScheduler) alphasGraph(t *Node) (aT, aPrev *Node) {
	if s.numInferenceSteps == 0 {
		exceptions.Panicf("schedulers: DDIMScheduler: call SetTimesteps before building a step graph")
	}
	checkTimestepNode("DDIMScheduler", t)
	g := t.Graph()
	ac := Const(g, s.alphasCumprod)
	t = ConvertDType(t, dtypes.Int32)
	aT = gather1D(ac, t)
	prev := AddScalar(t, -s.cfg.NumTrainTimesteps/s.numInferenceSteps)
	aPrev = Where(GreaterOrEqual(prev, ScalarZero(g, dtypes.Int32)),
		gather1D(ac, MaxScalar(prev, 0)), Scalar(g, dtypes.Float32, s.finalAlphaCumprod))
	return aT, aPrev
}

// PredOriginalGraph returns DDIM's pred_original_sample (before clipping).
func (s *DDIMScheduler) PredOriginalGraph(modelOutput, timestep, sample *Node) *Node {
	checkSameShape("DDIMScheduler.PredOriginalGraph", sample, modelOutput)
	checkTimestepNode("DDIMScheduler.PredOriginalGraph", timestep)
	aT := gather1D(Const(sample.Graph(), s.alphasCumprod), timestep)
	sa, sb := broadcastItem(Sqrt(aT), sample), broadcastItem(Sqrt(OneMinus(aT)), sample)
	x0, _ := predOriginalGraph(s.cfg.PredictionType, modelOutput, sample, sa, sb)
	return x0
}

// StepGraph is Step in a graph. timestep: [] or [B] (one per batch item). noise is used only when
// opts.Eta > 0.
func (s *DDIMScheduler) StepGraph(modelOutput, timestep, sample, noise *Node, opts StepOptions) (prevSample, predOriginalSample *Node) {
	checkSameShape("DDIMScheduler.StepGraph", sample, modelOutput, noise)
	if opts.Eta > 0 && noise == nil {
		exceptions.Panicf("schedulers: DDIMScheduler.StepGraph with eta %g needs noise", opts.Eta)
	}
	aT, aPrev := s.alphasGraph(timestep)
	bT, bPrev := OneMinus(aT), OneMinus(aPrev)
	saN, sbN := Sqrt(aT), Sqrt(bT)
	variance := Mul(Div(bPrev, bT), OneMinus(Div(aT, aPrev)))
	std := MulScalar(Sqrt(variance), opts.Eta)
	dirCoef := Sqrt(Sub(bPrev, Mul(std, std)))

	sa, sb := broadcastItem(saN, sample), broadcastItem(sbN, sample)
	x0, eps := predOriginalGraph(s.cfg.PredictionType, modelOutput, sample, sa, sb)
	if s.cfg.ClipSample {
		x0 = ClipScalar(x0, -s.cfg.ClipSampleRange, s.cfg.ClipSampleRange)
	}
	if opts.UseClippedModelOutput {
		eps = Div(Sub(sample, Mul(sa, x0)), sb)
	}
	prev := Add(Mul(broadcastItem(Sqrt(aPrev), sample), x0), Mul(broadcastItem(dirCoef, sample), eps))
	if opts.Eta > 0 {
		prev = Add(prev, Mul(broadcastItem(std, sample), noise))
	}
	return prev, x0
}

// AddNoiseGraph is AddNoise in a graph (integer training timesteps, [B] or []).
func (s *DDIMScheduler) AddNoiseGraph(originalSamples, noise, timesteps *Node) *Node {
	return addNoiseACGraph(s.alphasCumprod, originalSamples, noise, timesteps, false)
}

// GetVelocityGraph is GetVelocity in a graph (integer training timesteps, [B] or []).
func (s *DDIMScheduler) GetVelocityGraph(sample, noise, timesteps *Node) *Node {
	return addNoiseACGraph(s.alphasCumprod, sample, noise, timesteps, true)
}
