package train

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/sd"
)

// precisionRun loads the tiny SD1.5 fixture run of tinyPreset with train.dtype setting; a non-zero
// force overrides the resolved dtype (float16, which the Go backend refuses as a setting).
func precisionRun(t *testing.T, setting string, force dtypes.DType) *Run {
	t.Helper()
	p := tinyPreset(t, 1)
	p.Train.DType = setting
	plan, err := NewPlan(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	if force != dtypes.InvalidDType {
		plan.DType = force
	}
	run, err := NewRun(plan)
	require.NoError(t, err)
	require.Equal(t, plan.DType, run.Pipeline.DType)
	return run
}

// lossProbe is one fixed batch of the objective: x_t, t*, the conditionings and per-sample values.
type lossProbe struct {
	x, t  *tensors.Tensor
	conds [4]sd.Conditioning // target, positive, neutral, unconditional
}

// newLossProbe draws x_t ~ N(0, 1) at t* = 501 and takes run's conditioning of its first entry.
func newLossProbe(t *testing.T, run *Run) lossProbe {
	t.Helper()
	e := run.loop.groups[0][0]
	c := run.Pipeline.UNet.Config.InChannels
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, c*e.LatentH*e.LatentW)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	pr := lossProbe{x: tensors.FromFlatDataAndDimensions(x, 1, c, e.LatentH, e.LatentW), t: tensors.FromValue([]int64{501})}
	for i, prompt := range []string{e.Target, e.Positive, e.Neutral, e.Unconditional} {
		pr.conds[i] = run.loop.conds[prompt]
	}
	return pr
}

// setAdapterValues gives the run's adapter variables the same pseudo-random values in every run
// (a non-zero up projection, so that every gradient is non-zero).
func setAdapterValues(t *testing.T, run *Run) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, v := range run.loop.adapter {
		require.Equal(t, dtypes.Float32, v.DType(), v.Path())
		vals := make([]float32, v.Shape().Size())
		for i := range vals {
			vals[i] = float32(0.1 * rng.NormFloat64())
		}
		require.NoError(t, v.SetValue(tensors.FromFlatDataAndDimensions(vals, v.Shape().Dimensions...)))
	}
}

// lossAndGrads evaluates the objective (the step's code: objective, then Gradient) on pr with the
// run's frozen model and adapter: the loss and the adapter's gradients, as float64. It also checks
// the graph: the loss and every gradient are float32 whatever the frozen model's dtype, and the
// frozen model does compute in its dtype.
func lossAndGrads(t *testing.T, run *Run, pr lossProbe) (float64, [][]float64) {
	t.Helper()
	pipe := run.Pipeline
	d := &denoiser{UNet: pipe.UNet, Ctx: pipe.Ctx.At("unet"), DType: pipe.DType}
	factory := func(m *Node) nn.Adapter { return run.Net.Adapter(pipe.Ctx, "/unet", m) }
	exec, err := gmodel.NewExec(pipe.Backend, pipe.Ctx.Store(), func(_ *gmodel.Scope, in []*Node) []*Node {
		ones := OnesLike(in[6])
		cond := func(i int) nodeCond { return nodeCond{Hidden: in[2+i]} }
		loss, _ := objective(d, stepBatch{X: in[0], T: in[1], Target: cond(0), Positive: cond(1), Neutral: cond(2),
			Unconditional: cond(3), SignedGuidance: MulScalar(ones, -1), Multiplier: in[6], Weight: ones}, factory, lossConfig{})
		nodes := make([]*Node, len(run.loop.adapter))
		for i, v := range run.loop.adapter {
			nodes[i] = v.NodeValue(loss.Graph())
		}
		grads := Gradient(loss, nodes...)
		require.Equal(t, dtypes.Float32, loss.DType(), "loss")
		for i, g := range grads {
			require.Equal(t, dtypes.Float32, g.DType(), "gradient of %s", run.loop.adapter[i].Path())
		}
		require.Positive(t, countDType(loss.Graph(), pipe.DType), "nodes computing in %s", pipe.DType)
		return append([]*Node{loss}, grads...)
	})
	require.NoError(t, err)
	defer exec.Finalize()
	args := []any{pr.x, pr.t}
	for _, c := range pr.conds {
		args = append(args, c.Hidden)
	}
	out, err := exec.Exec(append(args, []float32{1})...)
	require.NoError(t, err)
	grads := make([][]float64, len(out)-1)
	for i, g := range out[1:] {
		grads[i] = toF64(tensors.MustCopyFlatData[float32](g))
	}
	return float64(tensors.ToScalar[float32](out[0])), grads
}

// countDType counts g's nodes of dtype dt.
func countDType(g *Graph, dt dtypes.DType) int {
	n := 0
	for _, node := range g.Nodes() {
		if node.NumOutputs() == 1 && node.DType() == dt {
			n++
		}
	}
	return n
}

// gradErrors compares gradients: the relative L2 error of all of them concatenated, the worst
// relative L2 error of one variable's, and the cosine similarity of the concatenations.
func gradErrors(got, want [][]float64) (relAll, relWorst, cosine float64) {
	var dot, gg, ww, dd float64
	for i := range want {
		var d2, w2 float64
		for j, w := range want[i] {
			g := got[i][j]
			dot, gg, ww = dot+g*w, gg+g*g, ww+w*w
			d2, w2 = d2+(g-w)*(g-w), w2+w*w
		}
		dd += d2
		relWorst = max(relWorst, math.Sqrt(d2/w2))
	}
	return math.Sqrt(dd / ww), relWorst, dot / math.Sqrt(gg*ww)
}

// TestBF16Parity: one loss and gradient evaluation of the tiny SD1.5 fixture run with train.dtype
// bfloat16 (UNet and text encoders in bf16, each run with its own encoded prompts) is within
// bfloat16 tolerance of the float32 run's. bf16 keeps 8 significant bits (unit roundoff 2^-9 ≈
// 2e-3); the UNet's ~60 layers round activations each time, so a few percent is the expected
// agreement (measured: loss 0.6%, gradients 2.3% relative L2, worst variable 6.5%, cosine 0.99975):
// loss within 3e-2, all gradients within 6e-2 relative L2 and cosine ≥ 0.998, every variable's
// within 0.2. A wrong conversion (gradients through bf16 adapter weights, a bf16 loss) or a dtype
// mismatch shows far above these.
func TestBF16Parity(t *testing.T) {
	ref := precisionRun(t, "float32", 0)
	require.Equal(t, dtypes.Float32, ref.Pipeline.DType)
	setAdapterValues(t, ref)
	l32, g32 := lossAndGrads(t, ref, newLossProbe(t, ref))

	run := precisionRun(t, "bfloat16", 0)
	require.Equal(t, dtypes.BFloat16, run.Pipeline.DType)
	setAdapterValues(t, run)
	l16, g16 := lossAndGrads(t, run, newLossProbe(t, run))
	relAll, relWorst, cosine := gradErrors(g16, g32)
	t.Logf("bf16 vs float32: loss %.6g vs %.6g (rel %.2g); gradients rel L2 %.3g, worst variable %.3g, cosine %.6f",
		l16, l32, math.Abs(l16-l32)/l32, relAll, relWorst, cosine)
	require.Less(t, math.Abs(l16-l32)/l32, 3e-2)
	require.Less(t, relAll, 6e-2)
	require.Less(t, relWorst, 0.2)
	require.Greater(t, cosine, 0.998)
}

// TestFloat16LossScaledParity: the float16 path (a GPU option; forced here on the Go backend, which
// computes float16 but refuses it as a setting) gives float16-accurate gradients thanks to the
// denoiser's loss scale: float16 keeps 11 significant bits, so the loss is within 2e-3 and the
// gradients within 2e-2 relative L2 (measured 0.3%) — without the scale they are ~28% off (the
// backward pass underflows).
func TestFloat16LossScaledParity(t *testing.T) {
	ref := precisionRun(t, "float32", 0)
	setAdapterValues(t, ref)
	pr := newLossProbe(t, ref) // the same conditioning: the text encoders' float16 error is not the point here
	l32, g32 := lossAndGrads(t, ref, pr)

	run := precisionRun(t, "float32", dtypes.Float16)
	setAdapterValues(t, run)
	l16, g16 := lossAndGrads(t, run, pr)
	relAll, relWorst, cosine := gradErrors(g16, g32)
	t.Logf("float16 vs float32: loss %.6g vs %.6g (rel %.2g); gradients rel L2 %.3g, worst variable %.3g, cosine %.6f",
		l16, l32, math.Abs(l16-l32)/l32, relAll, relWorst, cosine)
	require.Less(t, math.Abs(l16-l32)/l32, 2e-3)
	require.Less(t, relAll, 2e-2)
	require.Less(t, relWorst, 5e-2)
	require.Greater(t, cosine, 0.9998)
}

// TestBF16StepGraphDTypes: with bfloat16 frozen weights, the train step's graph computes the UNet
// in bf16 while its adapter and optimizer-state variables are float32 (they enter the graph as
// float32 parameters and stay float32 after the update), and two training steps give losses
// within bf16 tolerance of the float32 run's.
func TestBF16StepGraphDTypes(t *testing.T) {
	var losses [2][]float32
	for i, setting := range []string{"float32", "bfloat16"} {
		p := tinyPreset(t, 2)
		p.Train.DType = setting
		run, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
		require.NoError(t, err)
		res, err := run.Train()
		require.NoError(t, err)
		losses[i] = res.FirstLosses
		if setting == "bfloat16" {
			checkStepGraphDTypes(t, run)
		}
	}
	t.Logf("losses float32 %v, bfloat16 %v", losses[0], losses[1])
	for i := range losses[0] {
		require.InEpsilon(t, losses[0][i], losses[1][i], 5e-2, "step %d", i+1)
	}
}

// checkStepGraphDTypes checks the dtypes of run's (bf16) step graph and variables after training.
func checkStepGraphDTypes(t *testing.T, run *Run) {
	t.Helper()
	state := run.loop.optimizerState()
	require.NotEmpty(t, state)
	want := map[string]dtypes.DType{}
	for _, v := range append(append([]*gmodel.Variable{}, run.loop.adapter...), state...) {
		require.Equal(t, dtypes.Float32, v.DType(), v.Path())
		want[v.Path()] = dtypes.Float32
	}
	g, err := run.loop.graphs.step.exec.Compile(stepShapes(t, run)...) // these shapes: the graph the steps ran
	require.NoError(t, err)
	var seen, unet int
	for _, n := range g.Nodes() {
		if n.Type() != NodeTypeParameter {
			continue
		}
		name := n.GetParameterName()
		if dt, ok := want[name]; ok {
			require.Equal(t, dt, n.DType(), name)
			seen++
		} else if strings.HasPrefix(name, "/unet/") && n.DType().IsFloat() {
			require.Equal(t, dtypes.BFloat16, n.DType(), name)
			unet++
		}
	}
	require.Equal(t, len(want), seen, "adapter and optimizer variables in the step graph")
	require.Positive(t, unet, "bf16 UNet weights in the step graph")
	require.Greater(t, countDType(g, dtypes.BFloat16), 100, "bf16 nodes")
}

// stepShapes are the input shapes of run's step graph for its first entry (stepInputs' order).
func stepShapes(t *testing.T, run *Run) []shapes.Shape {
	t.Helper()
	e := run.loop.groups[0][0]
	b := max(e.BatchSize, 1)
	in := []shapes.Shape{shapes.Make(dtypes.Float32, b, run.Pipeline.UNet.Config.InChannels, e.LatentH, e.LatentW),
		shapes.Make(dtypes.Int64, b)}
	for _, prompt := range []string{e.Target, e.Positive, e.Neutral, e.Unconditional} {
		h := run.loop.conds[prompt].Hidden.Shape()
		in = append(in, shapes.Make(h.DType, b, h.Dim(1), h.Dim(2)))
	}
	vec := shapes.Make(dtypes.Float32, b)
	return append(in, vec, vec, vec, shapes.Make(dtypes.Float32), shapes.Make(dtypes.Int32), shapes.Make(dtypes.Float32))
}

// TestFloat16RefusedOnCPU: train.dtype float16 on the Go backend fails before any model is loaded
// (the model folder does not even exist), naming the setting and the alternatives — in NewPlan
// when the backend is given, in NewRun when it creates it.
func TestFloat16RefusedOnCPU(t *testing.T) {
	testutil.Backend(t) // GOMLX_BACKEND=go for NewRun's backend
	p := tinyPreset(t, 1)
	p.Model.NameOrPath = filepath.Join(t.TempDir(), "no-such-model")
	p.Train.DType = "float16"
	check := func(err error) {
		t.Helper()
		require.Error(t, err)
		for _, want := range []string{"train.dtype", "float16", "bfloat16", "float32"} {
			require.ErrorContains(t, err, want)
		}
		require.NotContains(t, err.Error(), "no-such-model")
	}
	_, err := NewPlan(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	check(err)
	plan, err := NewPlan(p, Options{OutDir: t.TempDir()})
	require.NoError(t, err) // pure: no backend, nothing resolved yet
	_, err = NewRun(plan)
	check(err)
	t.Log(err)
}
