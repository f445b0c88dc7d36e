// Package schedulers ports diffusers' DDPMScheduler, DDIMScheduler and EulerDiscreteScheduler
// (diffusers 58eb52c0: scheduling_ddpm.py, scheduling_ddim.py, scheduling_euler_discrete.py).
//
// The tables (betas, alphas_cumprod, timesteps, sigmas) follow diffusers' float32 recipe bit for bit
// on x86-64: torch.linspace in float32 (AVX2/FMA kernel), torch.cumprod with a float64 accumulator,
// numpy float64 timestep spacing and np.interp for Euler's sigmas, cast to float32 at the end. The
// host steps do diffusers' float32 arithmetic operation by operation (explicit float32 conversions
// keep Go from fusing multiply-adds), so on the fixtures they match diffusers bit for bit.
//
// Two layers:
//   - host: Step, ScaleModelInput, AddNoise and GetVelocity on flat float32 slices (batch-major, like
//     a torch tensor's data), returning errors;
//   - graph: StepGraph, ScaleModelInputGraph, AddNoiseGraph, GetVelocityGraph and PredOriginalGraph
//     on *graph.Node, gathering the coefficients from constant tables with the timestep node, so a
//     denoising step or a noising step compiles into one graph. They panic (exceptions.Panicf) on bad
//     shapes, like every graph builder.
//
// Timesteps are passed as the values diffusers passes (an element of Timesteps(), or a training
// timestep for AddNoise), never as loop indices. Graph timesteps may be a scalar (one timestep for the
// whole batch) or a [B] vector (one per batch item), in any numeric dtype.
package schedulers

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
)

// Scheduler is the API shared by the three ports. Flat slices hold tensors in row-major order with
// the batch axis first.
type Scheduler interface {
	// Config returns a copy of the scheduler's config.
	Config() *Config
	// Betas and AlphasCumprod are the training tables ([num_train_timesteps]), float32.
	Betas() []float32
	AlphasCumprod() []float32
	// InitNoiseSigma is the standard deviation of the initial noise (1 for DDPM/DDIM).
	InitNoiseSigma() float32

	// SetTimesteps ports set_timesteps(num_inference_steps).
	SetTimesteps(numInferenceSteps int) error
	// NumInferenceSteps is 0 before SetTimesteps.
	NumInferenceSteps() int
	// Timesteps are the current timesteps (int64 values for DDPM/DDIM, float32 values for Euler),
	// as float64.
	Timesteps() []float64

	// ScaleModelInput ports scale_model_input(sample, timestep).
	ScaleModelInput(sample []float32, timestep float64) ([]float32, error)
	// Step ports step(model_output, timestep, sample). noise is the standard normal noise diffusers
	// would draw (DDPM for t > 0, DDIM with eta > 0, Euler with s_churn > 0), with sample's size;
	// it may be nil when the step draws none.
	Step(modelOutput []float32, timestep float64, sample, noise []float32, opts StepOptions) (*StepOutput, error)
	// AddNoise ports add_noise(original_samples, noise, timesteps): one timestep per batch item.
	AddNoise(originalSamples, noise []float32, timesteps []float64) ([]float32, error)
	// GetVelocity ports get_velocity(sample, noise, timesteps): one timestep per batch item.
	GetVelocity(sample, noise []float32, timesteps []float64) ([]float32, error)

	// ScaleModelInputGraph is ScaleModelInput in a graph. timestep: [] or [B].
	ScaleModelInputGraph(sample, timestep *Node) *Node
	// StepGraph is Step in a graph; noise may be nil when the step draws none.
	StepGraph(modelOutput, timestep, sample, noise *Node, opts StepOptions) (prevSample, predOriginalSample *Node)
	// PredOriginalGraph is the pred_original_sample of StepGraph alone (x0 predicted from the model
	// output at timestep), without clipping.
	PredOriginalGraph(modelOutput, timestep, sample *Node) *Node
	// AddNoiseGraph is AddNoise in a graph; timesteps: [B] (or [] for the whole batch).
	AddNoiseGraph(originalSamples, noise, timesteps *Node) *Node
	// GetVelocityGraph is GetVelocity in a graph; timesteps: [B] (or []).
	GetVelocityGraph(sample, noise, timesteps *Node) *Node
}

// StepOptions are the extra arguments of diffusers' step(); the zero value is diffusers' defaults.
type StepOptions struct {
	// Eta (DDIM) weighs the noise of DDIM's step (eta 0: deterministic DDIM).
	Eta float64
	// UseClippedModelOutput (DDIM) re-derives the noise prediction from the clipped x0.
	UseClippedModelOutput bool
	// SChurn, STMin, STMax, SNoise (Euler): stochastic sampling of Karras et al. (2022). STMax 0 means
	// +Inf and SNoise 0 means 1 (the diffusers defaults).
	SChurn, STMin, STMax, SNoise float64
}

func (o StepOptions) withDefaults() StepOptions {
	if o.STMax == 0 {
		o.STMax = math.Inf(1)
	}
	if o.SNoise == 0 {
		o.SNoise = 1
	}
	return o
}

// StepOutput is diffusers' SchedulerOutput.
type StepOutput struct {
	PrevSample         []float32
	PredOriginalSample []float32
}

// schedule holds the training tables shared by the three schedulers.
type schedule struct {
	cfg           *Config
	betas         []float32
	alphas        []float32
	alphasCumprod []float32
}

func newSchedule(cfg *Config, class string) (*schedule, error) {
	if cfg == nil {
		return nil, fmt.Errorf("schedulers: nil config")
	}
	if cfg.ClassName != class {
		return nil, fmt.Errorf("schedulers: config _class_name is %q, want %q (use ParseConfigAs/LoadConfigAs "+
			"to reinterpret a config)", cfg.ClassName, class)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := *cfg
	c.TrainedBetas = append([]float64(nil), cfg.TrainedBetas...)
	s := &schedule{cfg: &c}
	s.betas = computeBetas(&c)
	s.alphas = alphasFromBetas(s.betas)
	s.alphasCumprod = cumprod32(s.alphas)
	return s, nil
}

func (s *schedule) Config() *Config {
	c := *s.cfg
	c.TrainedBetas = append([]float64(nil), s.cfg.TrainedBetas...)
	c.Unused = append([]string(nil), s.cfg.Unused...)
	return &c
}

func (s *schedule) Betas() []float32         { return append([]float32(nil), s.betas...) }
func (s *schedule) AlphasCumprod() []float32 { return append([]float32(nil), s.alphasCumprod...) }

// --- host helpers -------------------------------------------------------------------------------

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// perItem checks that the flat tensors have equal sizes divisible by the batch size and returns the
// number of elements of one batch item.
func perItem(batch int, xs ...[]float32) (int, error) {
	if batch < 1 {
		return 0, fmt.Errorf("schedulers: need at least one timestep")
	}
	n := len(xs[0])
	for _, x := range xs[1:] {
		if x != nil && len(x) != n {
			return 0, fmt.Errorf("schedulers: tensors have different sizes (%d vs %d)", n, len(x))
		}
	}
	if n%batch != 0 {
		return 0, fmt.Errorf("schedulers: %d values do not split into %d batch items", n, batch)
	}
	return n / batch, nil
}

// trainTimestep converts a timestep value to an index of the training tables.
func (s *schedule) trainTimestep(t float64) (int, error) {
	n := len(s.alphasCumprod)
	if t != math.Trunc(t) || t < 0 || t >= float64(n) {
		return 0, fmt.Errorf("schedulers: timestep %g is not an integer in [0, %d)", t, n)
	}
	return int(t), nil
}

// addNoiseAC ports add_noise / get_velocity of DDPM and DDIM (and Euler's get_velocity with the
// looked-up indices): a = sqrt(ac[t]), b = sqrt(1 - ac[t]) per batch item;
// velocity false: a·x0 + b·noise; velocity true: a·noise - b·x0.
func addNoiseAC(ac []float32, x0, noise []float32, idx []int, velocity bool) ([]float32, error) {
	per, err := perItem(len(idx), x0, noise)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(x0))
	for b, t := range idx {
		sa, sb := sqrt32(ac[t]), sqrt32(1-ac[t])
		for i := b * per; i < (b+1)*per; i++ {
			if velocity {
				out[i] = float32(sa*noise[i]) - float32(sb*x0[i])
			} else {
				out[i] = float32(sa*x0[i]) + float32(sb*noise[i])
			}
		}
	}
	return out, nil
}

// predOriginal32 ports the x0 / epsilon prediction of DDPM and DDIM from the model output m at a
// sample x, with sa = sqrt(alpha_prod_t), sb = sqrt(1 - alpha_prod_t).
func predOriginal32(pred string, m, x, sa, sb float32) (x0, eps float32) {
	switch pred {
	case "epsilon":
		return (x - float32(sb*m)) / sa, m
	case "sample":
		return m, (x - float32(sa*m)) / sb
	default: // v_prediction
		return float32(sa*x) - float32(sb*m), float32(sa*m) + float32(sb*x)
	}
}

// --- graph helpers ------------------------------------------------------------------------------

// gather1D returns table[idx] for an integer idx node of shape [] or [B].
func gather1D(table, idx *Node) *Node {
	return Gather(table, InsertAxes(ConvertDType(idx, dtypes.Int32), -1))
}

// broadcastItem converts c ([] or [B]) to x's dtype and broadcasts it over x ([B, ...]), as diffusers
// does with `c.flatten()` and trailing unsqueezes.
func broadcastItem(c, x *Node) *Node {
	c = ConvertDType(c, x.DType())
	dims := x.Shape().Dimensions
	switch {
	case c.IsScalar():
		return BroadcastToDims(c, dims...)
	case c.Rank() == 1 && x.Rank() >= 1 && c.Shape().Dim(0) == dims[0]:
		shape := make([]int, len(dims))
		for i := range shape {
			shape[i] = 1
		}
		shape[0] = dims[0]
		return BroadcastToDims(Reshape(c, shape...), dims...)
	}
	exceptions.Panicf("schedulers: per-item value of shape %s does not match a batch of shape %s "+
		"(want [] or [%d])", c.Shape(), x.Shape(), dims[0])
	return nil
}

func checkTimestepNode(name string, t *Node) {
	if t.Rank() > 1 {
		exceptions.Panicf("schedulers: %s: timestep must be a scalar or a [B] vector, got %s", name, t.Shape())
	}
}

func checkSameShape(name string, xs ...*Node) {
	for _, x := range xs[1:] {
		if x != nil && !x.Shape().Equal(xs[0].Shape()) {
			exceptions.Panicf("schedulers: %s: tensors have different shapes %s and %s", name, xs[0].Shape(), x.Shape())
		}
	}
}

// addNoiseACGraph is addNoiseAC in a graph, with ac gathered at the integer indices idx.
func addNoiseACGraph(ac []float32, x0, noise, idx *Node, velocity bool) *Node {
	checkTimestepNode("add_noise", idx)
	checkSameShape("add_noise", x0, noise)
	g := x0.Graph()
	a := gather1D(Const(g, ac), idx)
	sa := broadcastItem(Sqrt(a), x0)
	sb := broadcastItem(Sqrt(OneMinus(a)), x0)
	if velocity {
		return Sub(Mul(sa, noise), Mul(sb, x0))
	}
	return Add(Mul(sa, x0), Mul(sb, noise))
}

// predOriginalGraph is predOriginal32 in a graph; sa, sb are already broadcast to x's shape.
func predOriginalGraph(pred string, m, x, sa, sb *Node) (x0, eps *Node) {
	switch pred {
	case "epsilon":
		return Div(Sub(x, Mul(sb, m)), sa), m
	case "sample":
		return m, Div(Sub(x, Mul(sa, m)), sb)
	default: // v_prediction
		return Sub(Mul(sa, x), Mul(sb, m)), Add(Mul(sa, m), Mul(sb, x))
	}
}

func toFloat64s[T int64 | float32](xs []T) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}
