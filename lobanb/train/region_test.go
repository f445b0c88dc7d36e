package train

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/safetensors"
)

// regionProbe is one evaluation of the objective with §5 terms on a lossProbe: the loss, the
// gradients of the adapter's variables and the predictions, on the host.
type regionProbe struct {
	loss  float64
	grads [][]float64
	// target, targetRef, positive, neutral, unconditional predictions, flat [C·H·W].
	preds [5][]float64
}

// evalRegion runs objective with the region terms r on pr (batch 1, erase at guidance g) with the
// weight map w (flat [H·W]; nil: none), λ_keep and the style flag.
func evalRegion(t *testing.T, run *Run, pr lossProbe, r regionTerms, g float64, w []float32, keep, style float32) regionProbe {
	t.Helper()
	pipe := run.Pipeline
	d := &denoiser{UNet: pipe.UNet, Ctx: pipe.Ctx.At("unet"), DType: pipe.DType}
	factory := func(m *Node) nn.Adapter { return run.Net.Adapter(pipe.Ctx, "/unet", m) }
	exec, err := gmodel.NewExec(pipe.Backend, pipe.Ctx.Store(), func(_ *gmodel.Scope, in []*Node) []*Node {
		ones := OnesLike(in[6])
		cond := func(i int) nodeCond { return nodeCond{Hidden: in[2+i]} }
		b := stepBatch{X: in[0], T: in[1], Target: cond(0), Positive: cond(1), Neutral: cond(2),
			Unconditional: cond(3), SignedGuidance: MulScalar(ones, g), Multiplier: in[6], Weight: ones}
		b.Mask, b.Preserve, b.Style, b.Concept, _ = regionInputs(in[7:], r)
		loss, p := objective(d, b, factory, lossConfig{Region: r})
		nodes := make([]*Node, len(run.loop.adapter))
		for i, v := range run.loop.adapter {
			nodes[i] = v.NodeValue(loss.Graph())
		}
		ref := p.TargetRef
		if ref == nil {
			ref = ZerosLike(p.Target)
		}
		outs := append([]*Node{loss, p.Target, ref, p.Positive, p.Neutral, p.Unconditional}, Gradient(loss, nodes...)...)
		return outs
	})
	require.NoError(t, err)
	defer exec.Finalize()
	args := []any{pr.x, pr.t}
	for _, c := range pr.conds {
		args = append(args, c.Hidden)
	}
	args = append(args, []float32{1})
	dims := pr.x.Shape().Dimensions
	if r.Masked {
		args = append(args, tensors.FromFlatDataAndDimensions(w, 1, 1, dims[2], dims[3]))
	}
	if r.Preserve {
		args = append(args, []float32{keep})
	}
	if r.Style {
		args = append(args, []float32{style})
	}
	out, err := exec.Exec(args...)
	require.NoError(t, err)
	var rp regionProbe
	rp.loss = float64(tensors.ToScalar[float32](out[0]))
	for i := range rp.preds {
		rp.preds[i] = toF64(tensors.MustCopyFlatData[float32](out[1+i]))
	}
	for _, gr := range out[6:] {
		rp.grads = append(rp.grads, toF64(tensors.MustCopyFlatData[float32](gr)))
	}
	return rp
}

// regionRun is the tiny SD1.5 run with pseudo-random adapter values (student ≠ teacher) and a probe.
func regionRun(t *testing.T) (*Run, lossProbe) {
	t.Helper()
	run := precisionRun(t, "float32", 0)
	setAdapterValues(t, run)
	return run, newLossProbe(t, run)
}

// TestRegionLoss (issue 16 acceptance 5): the §5 loss against a direct computation from the
// predictions: an all-ones mask is the plain loss (and its gradients), a zero mask leaves only the
// preservation term, a graded mask gives mean(W⊙(e_tgt − y)²) + λ·mean((1−W)⊙(ε_1 − ε_0)²).
func TestRegionLoss(t *testing.T) {
	run, pr := regionRun(t)
	hw := pr.x.Shape().Dim(2) * pr.x.Shape().Dim(3)
	c := pr.x.Shape().Dim(1)
	const g, keep = -1.0, 2.5
	plain := evalRegion(t, run, pr, regionTerms{}, g, nil, 0, 0)
	both := regionTerms{Masked: true, Preserve: true}

	ones := make([]float32, hw)
	for i := range ones {
		ones[i] = 1
	}
	all := evalRegion(t, run, pr, both, g, ones, keep, 0)
	require.InDelta(t, plain.loss, all.loss, 1e-6*plain.loss, "an all-ones mask is the plain loss")
	relAll, _, _ := gradErrors(all.grads, plain.grads)
	require.Less(t, relAll, 1e-5, "and so are its gradients")

	rng := rand.New(rand.NewPCG(8, 9))
	for name, w := range map[string][]float32{"zero": make([]float32, hw), "graded": randomMask(rng, hw)} {
		got := evalRegion(t, run, pr, both, g, w, keep, 0)
		tgt, ref, pos, neu, unc := got.preds[0], got.preds[1], got.preds[2], got.preds[3], got.preds[4]
		var sum float64
		for i := range tgt {
			wi := float64(w[i%hw]) // W [1, 1, H, W] broadcast over the channels
			y := neu[i] + g*(pos[i]-unc[i])
			sum += wi*(tgt[i]-y)*(tgt[i]-y) + keep*(1-wi)*(tgt[i]-ref[i])*(tgt[i]-ref[i])
		}
		want := sum / float64(c*hw)
		require.InDelta(t, want, got.loss, 1e-5*want, "%s mask: the direct computation", name)
		require.Greater(t, got.loss, 0.0)
	}
}

// TestStyleLoss (issue 16 acceptance 5): ST-LOBA's target against a direct computation: per channel,
// y = e_content + η(e_style − e_neutral) with its mean and std over the image replaced by e_style's.
func TestStyleLoss(t *testing.T) {
	run, pr := regionRun(t)
	const eta = 1.5
	h, w := pr.x.Shape().Dim(2), pr.x.Shape().Dim(3)
	off := evalRegion(t, run, pr, regionTerms{Style: true}, eta, nil, 0, 0)
	plain := evalRegion(t, run, pr, regionTerms{}, eta, nil, 0, 0)
	require.InDelta(t, plain.loss, off.loss, 1e-6*plain.loss, "style flag 0: the plain target")
	got := evalRegion(t, run, pr, regionTerms{Style: true}, eta, nil, 0, 1)
	want := styleLossDirect(got.preds, eta, h*w, false)
	require.InDelta(t, want, got.loss, 1e-4*want)
	require.NotEqual(t, plain.loss, got.loss)

	// style_stats: mean — the channel means only.
	mean := evalRegion(t, run, pr, regionTerms{Style: true, StyleMeanOnly: true}, eta, nil, 0, 1)
	want = styleLossDirect(mean.preds, eta, h*w, true)
	require.InDelta(t, want, mean.loss, 1e-4*want)

	// η = 0 with the means only (toy-style-cool's colour cast): the target is the content's own
	// prediction with the style's channel means, e_content − mean_c e_content + mean_c e_style.
	cast := evalRegion(t, run, pr, regionTerms{Style: true, StyleMeanOnly: true}, 0, nil, 0, 1)
	tgt, neu, pos := cast.preds[0], cast.preds[3], cast.preds[2]
	var sum float64
	for lo := 0; lo < len(tgt); lo += h * w {
		nm, _ := meanStdF64(neu[lo : lo+h*w])
		pm, _ := meanStdF64(pos[lo : lo+h*w])
		for i := lo; i < lo+h*w; i++ {
			d := tgt[i] - (neu[i] - nm + pm)
			sum += d * d
		}
	}
	want = sum / float64(len(tgt))
	require.InDelta(t, want, cast.loss, 1e-4*want)
	require.NotEqual(t, plain.loss, cast.loss)
}

// styleLossDirect is ST-LOBA's loss computed directly from the predictions (target, target ref,
// positive, neutral, unconditional; flat [C·hw]): per channel, y = e_neu + η(e_pos − e_unc) with its
// mean (and unless meanOnly its std) over the hw pixels replaced by e_pos's, against the target.
func styleLossDirect(preds [5][]float64, eta float64, hw int, meanOnly bool) float64 {
	tgt, pos, neu, unc := preds[0], preds[2], preds[3], preds[4]
	var sum float64
	for ch := 0; ch < len(tgt)/hw; ch++ {
		lo, hi := ch*hw, (ch+1)*hw
		y := make([]float64, hw)
		for i := lo; i < hi; i++ {
			y[i-lo] = neu[i] + eta*(pos[i]-unc[i])
		}
		ym, ys := meanStdF64(y)
		rm, rs := meanStdF64(pos[lo:hi])
		for i := range y {
			v := (y[i]-ym)/(ys+1e-8)*rs + rm
			if meanOnly {
				v = y[i] - ym + rm
			}
			sum += (tgt[lo+i] - v) * (tgt[lo+i] - v)
		}
	}
	return sum / float64(len(tgt))
}

// TestRegionGradient (issue 16 acceptance 5): the gradient of the masked, preserving, styled loss
// matches central finite differences on a few adapter values.
func TestRegionGradient(t *testing.T) {
	run, pr := regionRun(t)
	hw := pr.x.Shape().Dim(2) * pr.x.Shape().Dim(3)
	w := randomMask(rand.New(rand.NewPCG(10, 11)), hw)
	r := regionTerms{Masked: true, Preserve: true, Style: true}
	base := evalRegion(t, run, pr, r, 1.5, w, 2, 1)
	checked := 0
	for vi, v := range run.loop.adapter {
		j := argmaxAbs(base.grads[vi])
		if checked >= 3 || math.Abs(base.grads[vi][j]) < 1e-4 {
			continue
		}
		val, err := v.Value()
		require.NoError(t, err)
		flat := tensors.MustCopyFlatData[float32](val)
		const eps = 1e-2
		at := func(delta float32) float64 {
			f := append([]float32(nil), flat...)
			f[j] += delta
			require.NoError(t, v.SetValue(tensors.FromFlatDataAndDimensions(f, v.Shape().Dimensions...)))
			return evalRegion(t, run, pr, r, 1.5, w, 2, 1).loss
		}
		fd := (at(eps) - at(-eps)) / (2 * eps)
		require.NoError(t, v.SetValue(tensors.FromFlatDataAndDimensions(flat, v.Shape().Dimensions...)))
		require.InDelta(t, fd, base.grads[vi][j], 0.03*math.Abs(fd)+1e-7, "%s[%d]", v.Path(), j)
		checked++
	}
	require.Equal(t, 3, checked)
}

func argmaxAbs(x []float64) int {
	best := 0
	for i, v := range x {
		if math.Abs(v) > math.Abs(x[best]) {
			best = i
		}
	}
	return best
}

func randomMask(rng *rand.Rand, n int) []float32 {
	w := make([]float32, n)
	for i := range w {
		w[i] = float32(rng.Float64())
	}
	return w
}

// meanStdF64 is the mean and unbiased standard deviation (torch.std).
func meanStdF64(x []float64) (mean, std float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		std += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(std / float64(max(len(x)-1, 1)))
}

// TestAnchorsAtZeroChangeNothing (issue 16 acceptance 5): U-LOBA anchors at anchor_weight 0 leave
// the objective as it is (the same fixed draws), and at anchor_weight 1 they add to it.
func TestAnchorsAtZeroChangeNothing(t *testing.T) {
	model := tinyPreset(t, 1).Model.NameOrPath
	lossWith := func(anchors []slider.Anchor, lambda *float64) float64 {
		p := tinyPreset(t, 1)
		p.Model.NameOrPath, p.Anchors, p.AnchorWeight = model, anchors, lambda
		require.NoError(t, p.Normalize())
		run, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
		require.NoError(t, err)
		defer run.Close()
		setAdapterValues(t, run)
		var sum float64
		for seed := uint64(1); seed <= 3; seed++ { // one batch per seed: the anchors' rows draw after the group's
			l, err := run.EvalLoss(1, seed)
			require.NoError(t, err)
			sum += l
		}
		return sum
	}
	anchors := []slider.Anchor{{Prompt: "a blue ball"}, {Prompt: "a green cube", NegPrompt: "a red cube"}}
	zero, one := 0.0, 1.0
	plain := lossWith(nil, nil)
	require.InDelta(t, plain, lossWith(anchors, &zero), 1e-5*plain)
	require.Greater(t, lossWith(anchors, &one), plain*(1+1e-4))
}

// TestWeighAnchors: the step's mean_b(weight_b·loss_b) is the group's mean plus λ·Σ_a loss_a.
func TestWeighAnchors(t *testing.T) {
	group := []entry{{Weight: 1, BatchSize: 2}, {Weight: 3, BatchSize: 1}}
	anchors := []entry{{BatchSize: 1}, {BatchSize: 1}}
	losses := []float64{1, 2, 5, 7, 11} // per sample: the group's 3 rows, then the 2 anchors
	got := weighAnchors(group, anchors, 0.5)
	var rows []float64
	for _, e := range got {
		for i := 0; i < max(e.BatchSize, 1); i++ {
			rows = append(rows, e.Weight)
		}
	}
	require.Len(t, rows, 5)
	var step float64
	for i, w := range rows {
		step += w * losses[i]
	}
	step /= 5
	want := (1*1+1*2+3*5)/3.0 + 0.5*(7+11)
	require.InDelta(t, want, step, 1e-12)
	require.Equal(t, group, weighAnchors(group, nil, 0.5), "no anchors: the group as it is")
}

// TestConceptTokens: the concept words of an erase entry (its positive prompt's words that its neutral
// prompt lacks) are marked at their places in the token sequence, after BOS; other entries, or
// concept_mask off, get none; a concept word that is not in the prompt is an error.
func TestConceptTokens(t *testing.T) {
	tok, err := clip.LoadBPE(fixtures.BPEPath(fixtures.Root(t)))
	require.NoError(t, err)
	p := slider.Defaults()
	p.ConceptMask.Enabled = true
	e := slider.Entry{Source: "prompts[0]", Target: "a red shape", Positive: "a red shape", Neutral: "a shape", Action: slider.ActionErase}
	row, err := conceptTokens(p, e, tok, 8)
	require.NoError(t, err)
	require.Equal(t, []float32{0, 0, 1, 0, 0, 0, 0, 0}, row, "BOS, a, red, shape, EOS, pad …")
	keep := e
	keep.Action = slider.ActionEnhance
	row, err = conceptTokens(p, keep, tok, 8)
	require.NoError(t, err)
	require.Nil(t, row)
	p.ConceptMask.Tokens = []string{"purple"}
	_, err = conceptTokens(p, e, tok, 8)
	require.ErrorContains(t, err, `concept words ["purple"]`)
	p.ConceptMask.Enabled = false
	row, err = conceptTokens(p, e, tok, 8)
	require.NoError(t, err)
	require.Nil(t, row)
}

// TestRegionRuns: each §5 setting trains on the tiny fixture (its graphs compile and run, the loss is
// finite) and a layer multiplier reaches the saved file's alphas.
func TestRegionRuns(t *testing.T) {
	one, half := 1.0, 0.5
	for name, set := range map[string]func(p *slider.Preset){
		"concept": func(p *slider.Preset) {
			p.ConceptMask.Enabled = true
			neutral := "a cube"
			p.Prompts[0].Neutral, p.Prompts[0].Preserve = &neutral, &one
		},
		"boxes": func(p *slider.Preset) {
			p.Prompts[0].Mask = &slider.Mask{Boxes: [][4]float64{{0, 0, 8, 16}}}
		},
		"style": func(p *slider.Preset) {
			style := "a blue cube"
			p.Prompts[0].Action, p.Prompts[0].Positive = slider.ActionStyle, &style
		},
		"anchors+schedule+layers": func(p *slider.Preset) {
			p.Anchors = []slider.Anchor{{Prompt: ""}, {Prompt: "a blue ball"}}
			p.TimestepSchedule = []slider.TimestepWindow{{Step: 0, Range: []int{500, 999}}, {Step: 1, Range: []int{0, 999}}}
			p.Network.LayerMultipliers = map[string]float64{"mid_block": half}
		},
	} {
		t.Run(name, func(t *testing.T) {
			p := tinyPreset(t, 2)
			set(p)
			require.NoError(t, p.Normalize())
			run, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
			require.NoError(t, err)
			res, err := run.Train()
			require.NoError(t, err)
			for _, l := range res.FirstLosses {
				require.False(t, math.IsNaN(float64(l)) || math.IsInf(float64(l), 0), "loss %v", l)
			}
			if len(p.Network.LayerMultipliers) > 0 {
				f, err := safetensors.Open(res.LoRAPath)
				require.NoError(t, err)
				defer f.Close()
				require.Contains(t, f.Metadata()[lora.MetaLayerMultipliers], "mid_block")
			}
		})
	}
}

// TestOverlayMasks: the row of a masked entry's prompt gets the outline of W's 0.5 contour; other rows
// are untouched.
func TestOverlayMasks(t *testing.T) {
	blank := func() image.Image {
		img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
		draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
		return img
	}
	mask := make([]float32, 16) // 4×4 latent: the left half is 1
	for y := 0; y < 4; y++ {
		mask[y*4], mask[y*4+1] = 1, 1
	}
	groups := [][]entry{{{Target: "masked", LatentH: 4, LatentW: 4, Region: entryRegion{Mask: mask}}}, {{Target: "plain"}}}
	rows := overlayMasks([][]image.Image{{blank()}, {blank()}}, []string{"masked", "plain"}, groups)
	for y := 0; y < 8; y++ {
		for x := 0; x < 8; x++ {
			r, g, b, _ := rows[0][0].At(x, y).RGBA()
			onEdge := x == 3 // the last pixel inside the left half, next to the right half
			require.Equal(t, onEdge, r == 0xffff && g == 0 && b == 0xffff, "(%d, %d)", x, y)
			r2, g2, b2, _ := rows[1][0].At(x, y).RGBA()
			require.True(t, r2 == 0xffff && g2 == 0xffff && b2 == 0xffff)
		}
	}
}

// TestPlanCountsAnchors: the memory and time plan's batch counts the anchors' rows.
func TestPlanCountsAnchors(t *testing.T) {
	p := tinyPreset(t, 1)
	plan, err := NewPlan(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	require.Equal(t, 1, stepBatchSize(plan))
	p = tinyPreset(t, 1)
	p.Anchors = []slider.Anchor{{Prompt: ""}, {Prompt: "a blue ball"}}
	require.NoError(t, p.Normalize())
	plan, err = NewPlan(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	require.Equal(t, 3, stepBatchSize(plan))
	e, err := EstimateRun(plan)
	require.NoError(t, err)
	require.Equal(t, 3, e.Batch)
}

// TestPlanCompilesRegionTerms: the plan's estimate builds the step graph with the run's §5 terms
// (regionTermsFor): a mask with λ_keep adds the teacher's call on the target prompt (4B instead of
// 3B) and the concept mask its attention capture, so the measured step costs more FLOPs than the
// same preset's without them; the plain preset compiles none.
func TestPlanCompilesRegionTerms(t *testing.T) {
	estimate := func(p *slider.Preset) (*Estimate, regionTerms) {
		require.NoError(t, p.Normalize())
		plan, err := NewPlan(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
		require.NoError(t, err)
		e, err := EstimateRun(plan)
		require.NoError(t, err)
		return e, regionTermsFor(plan.Preset, plan.Groups)
	}
	plain, r := estimate(tinyPreset(t, 1))
	require.Equal(t, regionTerms{ConceptThreshold: 0.5, ConceptBlur: 1}, r)

	p := tinyPreset(t, 1)
	p.Prompts[0].Mask = &slider.Mask{Boxes: [][4]float64{{0, 0, 8, 16}}}
	keep := 1.0
	p.Prompts[0].Preserve = &keep
	masked, r := estimate(p)
	require.True(t, r.Masked && r.Preserve && !r.Concept && !r.Style, "%+v", r)
	require.Greater(t, masked.CPU.StepFLOPs, plain.CPU.StepFLOPs, "the preservation term's teacher call on the target prompt")

	p = tinyPreset(t, 1)
	p.ConceptMask.Enabled = true
	_, r = estimate(p)
	require.True(t, r.Masked && r.Concept, "%+v", r)
}
