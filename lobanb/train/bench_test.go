package train

import (
	"fmt"
	"testing"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures/tinypipe"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/nn"
)

// BenchmarkStepParts splits one LECO step on the tiny SD1.5 fixture pipeline (32 px → 16×16
// latents, batch 1, N = 50 partial-denoise steps) into its parts: one partial-denoise step (a
// batched [uncond, target] UNet call + CFG + DDIM step; a LECO step runs k of them, k uniform in
// [1, N−1], so (N/2) on average), the reference batch (the frozen teacher's three predictions in one
// 3B call), and the student forward+backward+update; and the whole train step graph. It reports
// each part's share of an average LECO step.
func BenchmarkStepParts(b *testing.B) {
	backend := testutil.Backend(b)
	p := slider.Defaults()
	p.Model.NameOrPath = tinyPipelineDir(b)
	p.Objective, p.Mode = slider.ObjectiveLECO, slider.ModeLECO
	p.Train.Resolution = slider.Square(32)
	p.Prompts = []slider.Prompt{{Target: "a red cube", Action: slider.ActionErase}}
	require.NoError(b, p.Normalize())
	run, err := setup(p, Options{OutDir: b.TempDir(), Backend: backend})
	require.NoError(b, err)
	l := run.loop
	e := l.groups[0][0]
	batch, err := l.assemble(l.groups[0])
	require.NoError(b, err)
	n := batch.size
	x := tensors.FromShape(shapes.Make(dtypes.Float32, n, l.latentChannels, e.LatentH, e.LatentW))
	ts := tensors.FromValue([]int64{500})
	d := &denoiser{UNet: run.Pipeline.UNet, Ctx: run.Pipeline.Ctx.At("unet")}
	adapters := func(m *Node) nn.Adapter { return run.Net.Adapter(run.Pipeline.Ctx, "/unet", m) }

	refs, err := model.NewExec(backend, run.Pipeline.Ctx.Store(), func(ctx *model.Scope, x, t, pos, neu, unc *Node) *Node {
		p := predictions(d, x, t, nodeCond{Hidden: pos}, nodeCond{Hidden: pos}, nodeCond{Hidden: pos}, nodeCond{Hidden: neu}, nodeCond{Hidden: unc}, nil, false, nil)
		return Add(Add(p.Positive, p.Neutral), p.Unconditional)
	})
	require.NoError(b, err)
	params := l.graphs.step.params
	student, err := model.NewExec(backend, run.Pipeline.Ctx.Store(), func(ctx *model.Scope, inputs []*Node) []*Node {
		x, t, tgt, y, mult := inputs[0], inputs[1], inputs[2], inputs[3], inputs[4]
		pred := d.Predict(x, t, nodeCond{Hidden: tgt}, adapters(mult))
		loss := ReduceAllMean(Square(Sub(pred, y)))
		nodes := make([]*Node, len(params))
		for i, p := range params {
			nodes[i] = p.Var.NodeValue(loss.Graph())
		}
		opt, _ := NewOptimizer(OptimizerConfig{Name: "sgd"})
		opt.Update(ctx, params, Gradient(loss, nodes...), Scalar(loss.Graph(), dtypes.Float32, 1e-4), Scalar(loss.Graph(), dtypes.Int32, 1))
		return []*Node{loss}
	})
	require.NoError(b, err)
	y := tensors.FromShape(x.Shape())

	timeIt := func(name string, f func()) time.Duration {
		f() // compile
		var total time.Duration
		b.Run(name, func(b *testing.B) {
			start := time.Now()
			for i := 0; i < b.N; i++ {
				f()
			}
			total = time.Since(start) / time.Duration(b.N)
		})
		return total
	}
	zeros := tensors.FromShape(shapes.Make(dtypes.Float32, n))
	tDenoise := timeIt("denoise_step", func() {
		_, err := l.graphs.denoise.Run(x, 500, batch.unconditional, batch.target, zeros, nil)
		require.NoError(b, err)
	})
	tRefs := timeIt("reference_batch", func() {
		_, err := refs.Exec(x, ts, batch.positive.Hidden, batch.neutral.Hidden, batch.unconditional.Hidden)
		require.NoError(b, err)
	})
	tStudent := timeIt("student_fwd_bwd_update", func() {
		_, err := student.Exec(x, ts, batch.target.Hidden, y, batch.multiplier)
		require.NoError(b, err)
	})
	tStep := timeIt("train_step", func() {
		_, err := l.graphs.step.Run(stepInputs{X: x, T: ts, Target: batch.target, Positive: batch.positive, Neutral: batch.neutral,
			Unconditional: batch.unconditional, SignedGuidance: batch.guidance, Multiplier: batch.multiplier, Weight: batch.weight, LR: 1e-4, Step: 1, HuberC: 0.1})
		require.NoError(b, err)
	})
	avgK := 0.0 // the mean k the run draws
	for _, k := range l.draw.ks {
		avgK += float64(k) / float64(len(l.draw.ks))
	}
	denoise := time.Duration(avgK * float64(tDenoise))
	total := denoise + tStep
	share := func(d time.Duration) string { return fmt.Sprintf("%.1f%%", 100*float64(d)/float64(total)) }
	fmt.Printf("BenchmarkStepParts summary: average LECO step (k̄ = %.0f denoise steps): %s = partial denoise %s (%s) + train step %s (%s); "+
		"train step parts: reference batch %s (%s), student fwd+bwd+update %s (%s)\n",
		avgK, total, denoise, share(denoise), tStep, share(tStep), tRefs, share(tRefs), tStudent, share(tStudent))
}

// tinyPipelineDir is the SD1.5-shaped fixture pipeline folder.
func tinyPipelineDir(b *testing.B) string { return tinypipe.First(b, false).Dir }
