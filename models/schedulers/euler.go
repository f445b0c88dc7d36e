package schedulers

// Ports diffusers EulerDiscreteScheduler (schedulers/scheduling_euler_discrete.py): Algorithm 2 of
// Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models".

import (
	"fmt"
	"math"
	"slices"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
)

// EulerDiscreteScheduler ports diffusers EulerDiscreteScheduler (interpolation_type linear; Karras
// and exponential sigmas; timestep_type discrete or continuous; final_sigmas_type zero or sigma_min).
//
// Each step looks its index up from the timestep value, as diffusers does for a fresh scheduler
// (begin_index unset): the first position of the timestep in Timesteps(), or the second when it
// appears more than once.
type EulerDiscreteScheduler struct {
	*schedule
	numInferenceSteps int
	timesteps         []float32
	sigmas            []float32 // len(timesteps)+1, last = final sigma
}

var _ Scheduler = (*EulerDiscreteScheduler)(nil)

// NewEulerDiscrete builds an EulerDiscreteScheduler from a config with _class_name
// EulerDiscreteScheduler. With rescale_betas_zero_snr, alphas_cumprod[-1] is set to 2**-24 so that
// the largest sigma is finite, as diffusers does.
func NewEulerDiscrete(cfg *Config) (*EulerDiscreteScheduler, error) {
	s, err := newSchedule(cfg, ClassEulerDiscrete)
	if err != nil {
		return nil, err
	}
	if cfg.RescaleBetasZeroSNR {
		s.alphasCumprod[len(s.alphasCumprod)-1] = 1.0 / (1 << 24)
	}
	e := &EulerDiscreteScheduler{schedule: s}
	// __init__ state: the training sigmas, flipped, then 0; timesteps N-1 .. 0.
	train := e.trainSigmas()
	n := len(train)
	e.sigmas = make([]float32, n+1)
	for i := range train {
		e.sigmas[i] = train[n-1-i]
	}
	lin := npLinspace(0, float64(n-1), n)
	e.timesteps = make([]float32, n)
	for i := range e.timesteps {
		e.timesteps[i] = float32(lin[n-1-i])
	}
	if e.continuousTimesteps() {
		e.timesteps = continuousFromSigmas(e.sigmas[:n])
	}
	return e, nil
}

// trainSigmas is ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5 in float32.
func (s *EulerDiscreteScheduler) trainSigmas() []float32 {
	out := make([]float32, len(s.alphasCumprod))
	for i, a := range s.alphasCumprod {
		out[i] = sqrt32((1 - a) / a)
	}
	return out
}

func (s *EulerDiscreteScheduler) continuousTimesteps() bool {
	return s.cfg.TimestepType == "continuous" && s.cfg.PredictionType == "v_prediction"
}

// continuousFromSigmas is timestep_type "continuous": 0.25·log(sigma) in float32.
func continuousFromSigmas(sigmas []float32) []float32 {
	out := make([]float32, len(sigmas))
	for i, sg := range sigmas {
		out[i] = 0.25 * float32(math.Log(float64(sg)))
	}
	return out
}

// Sigmas returns the current sigmas (num_inference_steps + 1 values, the last one final_sigmas_type).
func (s *EulerDiscreteScheduler) Sigmas() []float32 { return append([]float32(nil), s.sigmas...) }

// InitNoiseSigma ports init_noise_sigma: max(sigmas) for linspace/trailing spacing,
// sqrt(max(sigmas)² + 1) for leading.
func (s *EulerDiscreteScheduler) InitNoiseSigma() float32 {
	m := slices.Max(s.sigmas)
	if s.cfg.TimestepSpacing == "linspace" || s.cfg.TimestepSpacing == "trailing" {
		return m
	}
	return sqrt32(float32(m*m) + 1)
}

// NumInferenceSteps is 0 before SetTimesteps.
func (s *EulerDiscreteScheduler) NumInferenceSteps() int { return s.numInferenceSteps }

// Timesteps returns the current (float32) timesteps as float64.
func (s *EulerDiscreteScheduler) Timesteps() []float64 { return toFloat64s(s.timesteps) }

// TimestepsFloat32 returns the current timesteps (diffusers' float32 tensor).
func (s *EulerDiscreteScheduler) TimestepsFloat32() []float32 {
	return append([]float32(nil), s.timesteps...)
}

// SetTimesteps ports EulerDiscreteScheduler.set_timesteps(num_inference_steps): timesteps by
// timestep_spacing (float32), sigmas = np.interp(timesteps, arange(N), train_sigmas) in float64
// (or Karras / exponential sigmas with their timesteps from _sigma_to_t), then the final sigma,
// cast to float32.
func (s *EulerDiscreteScheduler) SetTimesteps(numInferenceSteps int) error {
	n := numInferenceSteps
	if n < 1 {
		return fmt.Errorf("schedulers: num_inference_steps must be >= 1, got %d", n)
	}
	spaced, err := spacedTimesteps(s.cfg.TimestepSpacing, s.cfg.NumTrainTimesteps, n, 0)
	if err != nil {
		return err
	}
	ts := make([]float32, len(spaced))
	for i, v := range spaced {
		ts[i] = float32(v)
		if s.cfg.TimestepSpacing == "leading" {
			ts[i] += float32(s.cfg.StepsOffset) // numpy float32 += steps_offset
		}
	}
	train32 := s.trainSigmas()
	train := toFloat64s(train32)
	sigmas := make([]float64, len(ts))
	for i, t := range ts {
		sigmas[i] = npInterp(float64(t), train)
	}
	var tsFrom []float64 // timesteps recomputed from converted sigmas
	if s.cfg.UseKarrasSigmas || s.cfg.UseExponentialSigmas {
		logSigmas := make([]float64, len(train32))
		for i, sg := range train32 {
			logSigmas[i] = float64(float32(math.Log(float64(sg)))) // np.log on a float32 array
		}
		sigmaMin, sigmaMax := sigmas[len(sigmas)-1], sigmas[0]
		if s.cfg.SigmaMin != nil {
			sigmaMin = *s.cfg.SigmaMin
		}
		if s.cfg.SigmaMax != nil {
			sigmaMax = *s.cfg.SigmaMax
		}
		if s.cfg.UseKarrasSigmas {
			sigmas = karrasSigmas(sigmaMin, sigmaMax, n)
		} else {
			sigmas = exponentialSigmas(sigmaMin, sigmaMax, n)
		}
		tsFrom = make([]float64, len(sigmas))
		for i, sg := range sigmas {
			tsFrom[i] = sigmaToT(sg, logSigmas)
		}
	}
	var last float32
	if s.cfg.FinalSigmasType == "sigma_min" {
		a := s.alphasCumprod[0]
		last = sqrt32((1 - a) / a)
	}
	sig32 := make([]float32, len(sigmas)+1)
	for i, sg := range sigmas {
		sig32[i] = float32(sg)
	}
	sig32[len(sigmas)] = last
	switch {
	case s.continuousTimesteps():
		ts = continuousFromSigmas(sig32[:len(sig32)-1])
	case tsFrom != nil:
		ts = make([]float32, len(tsFrom))
		for i, t := range tsFrom {
			ts[i] = float32(t)
		}
	}
	s.numInferenceSteps, s.timesteps, s.sigmas = n, ts, sig32
	return nil
}

// IndexForTimestep ports index_for_timestep: the position of timestep (compared as float32) in
// Timesteps(), the second one when it appears more than once.
func (s *EulerDiscreteScheduler) IndexForTimestep(timestep float64) (int, error) {
	t := float32(timestep)
	var found []int
	for i, v := range s.timesteps {
		if v == t {
			found = append(found, i)
			if len(found) == 2 {
				break
			}
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("schedulers: EulerDiscreteScheduler: timestep %g is not one of the %d timesteps",
			timestep, len(s.timesteps))
	case 1:
		return found[0], nil
	}
	return found[1], nil
}

// ScaleModelInput ports scale_model_input: sample / sqrt(sigma² + 1).
func (s *EulerDiscreteScheduler) ScaleModelInput(sample []float32, timestep float64) ([]float32, error) {
	i, err := s.IndexForTimestep(timestep)
	if err != nil {
		return nil, err
	}
	sigma := s.sigmas[i]
	denom := sqrt32(float32(sigma*sigma) + 1)
	out := make([]float32, len(sample))
	for j, x := range sample {
		out[j] = x / denom
	}
	return out, nil
}

// eulerCoefs are the float32 scalars of one Euler step.
type eulerCoefs struct {
	sigma, sigmaHat, next float32
	churn                 float32 // sqrt(sigma_hat² - sigma²)·s_noise multiplies the noise; 0 when gamma = 0
	vA, vB                float32 // v_prediction: x0 = m·vA + x/vB
}

func (s *EulerDiscreteScheduler) coefs(i int, opts StepOptions) eulerCoefs {
	sigma := s.sigmas[i]
	gamma := 0.0
	if opts.STMin <= float64(sigma) && float64(sigma) <= opts.STMax {
		gamma = math.Min(opts.SChurn/float64(len(s.sigmas)-1), math.Sqrt2-1)
	}
	c := eulerCoefs{sigma: sigma, sigmaHat: sigma * float32(gamma+1), next: s.sigmas[i+1]}
	if gamma > 0 {
		c.churn = sqrt32(float32(c.sigmaHat*c.sigmaHat) - float32(sigma*sigma))
	}
	c.vB = float32(sigma*sigma) + 1
	c.vA = -sigma / sqrt32(c.vB)
	return c
}

// Step ports EulerDiscreteScheduler.step:
//
//	gamma = min(s_churn/(len(sigmas)-1), √2-1) if s_tmin ≤ σ ≤ s_tmax else 0;  σ̂ = σ·(gamma+1)
//	x = x + noise·s_noise·sqrt(σ̂² - σ²)                      (only when gamma > 0)
//	x0 = x - σ̂·eps   (epsilon);  x0 = eps·(-σ/sqrt(σ²+1)) + x/(σ²+1)   (v_prediction)
//	x_prev = x + (x - x0)/σ̂ · (σ_next - σ̂)
//
// noise is needed only when gamma > 0.
func (s *EulerDiscreteScheduler) Step(modelOutput []float32, timestep float64, sample, noise []float32,
	opts StepOptions) (*StepOutput, error) {
	opts = opts.withDefaults()
	i, err := s.IndexForTimestep(timestep)
	if err != nil {
		return nil, err
	}
	if _, err := perItem(1, sample, modelOutput); err != nil {
		return nil, err
	}
	c := s.coefs(i, opts)
	if c.churn != 0 && len(noise) != len(sample) {
		return nil, fmt.Errorf("schedulers: EulerDiscreteScheduler.Step with s_churn %g needs noise of %d values, got %d",
			opts.SChurn, len(sample), len(noise))
	}
	sNoise := float32(opts.SNoise)
	dt := c.next - c.sigmaHat
	out := &StepOutput{PrevSample: make([]float32, len(sample)), PredOriginalSample: make([]float32, len(sample))}
	for j, x := range sample {
		if c.churn != 0 {
			x += float32(float32(noise[j]*sNoise) * c.churn)
		}
		m := modelOutput[j]
		var x0 float32
		switch s.cfg.PredictionType {
		case "epsilon":
			x0 = x - float32(c.sigmaHat*m)
		case "v_prediction":
			x0 = float32(m*c.vA) + x/c.vB
		default: // sample, original_sample
			x0 = m
		}
		derivative := (x - x0) / c.sigmaHat
		out.PrevSample[j] = x + float32(derivative*dt)
		out.PredOriginalSample[j] = x0
	}
	return out, nil
}

// AddNoise ports EulerDiscreteScheduler.add_noise: x0 + noise·sigma, with each item's sigma looked up
// from its timestep (one of Timesteps()).
func (s *EulerDiscreteScheduler) AddNoise(originalSamples, noise []float32, timesteps []float64) ([]float32, error) {
	per, err := perItem(len(timesteps), originalSamples, noise)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(originalSamples))
	for b, t := range timesteps {
		i, err := s.IndexForTimestep(t)
		if err != nil {
			return nil, err
		}
		sigma := s.sigmas[i]
		for j := b * per; j < (b+1)*per; j++ {
			out[j] = originalSamples[j] + float32(noise[j]*sigma)
		}
	}
	return out, nil
}

// GetVelocity ports EulerDiscreteScheduler.get_velocity. Like diffusers, it indexes alphas_cumprod
// with each timestep's step index (its position in Timesteps()), not with the timestep itself.
func (s *EulerDiscreteScheduler) GetVelocity(sample, noise []float32, timesteps []float64) ([]float32, error) {
	idx := make([]int, len(timesteps))
	for b, t := range timesteps {
		var err error
		if idx[b], err = s.IndexForTimestep(t); err != nil {
			return nil, err
		}
	}
	return addNoiseAC(s.alphasCumprod, sample, noise, idx, true)
}

// --- graph ---------------------------------------------------------------------------------------

// stepIndexGraph ports index_for_timestep in a graph: for t ([] or [B], any dtype, compared as
// float32) the first position in Timesteps(), or the second when there are several. A timestep that
// is not in Timesteps() gives the last index.
func (s *EulerDiscreteScheduler) stepIndexGraph(t *Node) *Node {
	checkTimestepNode("EulerDiscreteScheduler", t)
	g := t.Graph()
	n := len(s.timesteps)
	dims := append(slices.Clone(t.Shape().Dimensions), n)
	tb := BroadcastToDims(InsertAxes(ConvertDType(t, dtypes.Float32), -1), dims...) // [..., n]
	table := Const(g, s.timesteps)
	if t.Rank() == 1 {
		table = InsertAxes(table, 0)
	}
	eq := Equal(tb, BroadcastToDims(table, dims...))                // [..., n]
	pos := Iota(g, shapes.Make(dtypes.Int32, dims...), len(dims)-1) // [..., n]
	none := Scalar(g, dtypes.Int32, n)
	first := ReduceMin(Where(eq, pos, none), -1) // [...]
	later := LogicalAnd(eq, GreaterThan(pos, BroadcastToDims(InsertAxes(first, -1), dims...)))
	second := ReduceMin(Where(later, pos, none), -1)
	count := ReduceSum(ConvertDType(eq, dtypes.Int32), -1)
	idx := Where(GreaterThan(count, Scalar(g, dtypes.Int32, 1)), second, first)
	return MinScalar(idx, n-1)
}

// sigmasGraph gathers sigma and the next sigma for timesteps t.
func (s *EulerDiscreteScheduler) sigmasGraph(t *Node) (sigma, next *Node) {
	idx := s.stepIndexGraph(t)
	table := Const(t.Graph(), s.sigmas)
	return gather1D(table, idx), gather1D(table, AddScalar(idx, 1))
}

// ScaleModelInputGraph is ScaleModelInput in a graph: sample / sqrt(sigma² + 1).
func (s *EulerDiscreteScheduler) ScaleModelInputGraph(sample, timestep *Node) *Node {
	sigma, _ := s.sigmasGraph(timestep)
	return Div(sample, broadcastItem(Sqrt(OnePlus(Mul(sigma, sigma))), sample))
}

// PredOriginalGraph returns Euler's pred_original_sample with s_churn 0.
func (s *EulerDiscreteScheduler) PredOriginalGraph(modelOutput, timestep, sample *Node) *Node {
	checkSameShape("EulerDiscreteScheduler.PredOriginalGraph", sample, modelOutput)
	sigma, _ := s.sigmasGraph(timestep)
	return s.predOriginalGraph(modelOutput, sample, sigma, sigma)
}

func (s *EulerDiscreteScheduler) predOriginalGraph(m, x, sigma, sigmaHat *Node) *Node {
	x32 := ConvertDType(x, dtypes.Float32)
	m32 := ConvertDType(m, dtypes.Float32)
	switch s.cfg.PredictionType {
	case "epsilon":
		return Sub(x32, Mul(broadcastItem(sigmaHat, x32), m32))
	case "v_prediction":
		s2p1 := OnePlus(Mul(sigma, sigma))
		vA := Div(Neg(sigma), Sqrt(s2p1))
		return Add(Mul(m32, broadcastItem(vA, x32)), Div(x32, broadcastItem(s2p1, x32)))
	}
	return m32
}

// StepGraph is Step in a graph; the computation runs in float32 and prevSample takes modelOutput's
// dtype, as in diffusers. noise is needed only with s_churn > 0.
func (s *EulerDiscreteScheduler) StepGraph(modelOutput, timestep, sample, noise *Node, opts StepOptions) (prevSample, predOriginalSample *Node) {
	checkSameShape("EulerDiscreteScheduler.StepGraph", sample, modelOutput, noise)
	opts = opts.withDefaults()
	g := sample.Graph()
	sigma, next := s.sigmasGraph(timestep)
	x := ConvertDType(sample, dtypes.Float32)
	sigmaHat := sigma
	if opts.SChurn > 0 {
		if noise == nil {
			exceptions.Panicf("schedulers: EulerDiscreteScheduler.StepGraph with s_churn %g needs noise", opts.SChurn)
		}
		gammaValue := math.Min(opts.SChurn/float64(len(s.sigmas)-1), math.Sqrt2-1)
		inRange := LogicalAnd(GreaterOrEqual(sigma, Scalar(g, dtypes.Float32, opts.STMin)),
			LessOrEqual(sigma, Scalar(g, dtypes.Float32, opts.STMax)))
		gamma := Where(inRange, Scalar(g, dtypes.Float32, gammaValue), ScalarZero(g, dtypes.Float32))
		sigmaHat = Mul(sigma, OnePlus(gamma))
		churn := Sqrt(Sub(Mul(sigmaHat, sigmaHat), Mul(sigma, sigma)))
		eps := MulScalar(ConvertDType(noise, dtypes.Float32), opts.SNoise)
		x = Add(x, Mul(eps, broadcastItem(churn, x)))
	}
	x0 := s.predOriginalGraph(modelOutput, x, sigma, sigmaHat)
	derivative := Div(Sub(x, x0), broadcastItem(sigmaHat, x))
	dt := Sub(next, sigmaHat)
	prev := Add(x, Mul(derivative, broadcastItem(dt, x)))
	return ConvertDType(prev, modelOutput.DType()), x0
}

// AddNoiseGraph is AddNoise in a graph: x0 + noise·sigma(timestep), timesteps [B] or [].
func (s *EulerDiscreteScheduler) AddNoiseGraph(originalSamples, noise, timesteps *Node) *Node {
	checkSameShape("EulerDiscreteScheduler.AddNoiseGraph", originalSamples, noise)
	sigma, _ := s.sigmasGraph(timesteps)
	return Add(originalSamples, Mul(noise, broadcastItem(sigma, noise)))
}

// GetVelocityGraph is GetVelocity in a graph (alphas_cumprod indexed by the step index, as diffusers).
func (s *EulerDiscreteScheduler) GetVelocityGraph(sample, noise, timesteps *Node) *Node {
	return addNoiseACGraph(s.alphasCumprod, sample, noise, s.stepIndexGraph(timesteps), true)
}
