package train

// LOBA's objectives beyond the anchors (docs/ALGORITHMS.md §5): a teacher (the frozen base, adapter
// off) makes the targets, the student (adapter on) learns, and a per-element weight map W plus a
// preservation term decide where and how strongly:
//
//	L = mean(W ⊙ (e_tgt − y)²) + λ_keep · mean((1−W) ⊙ (ε_1(x,t,c) − ε_0(x,t,c))²) + λ_anchor · Σ_a mean((ε_1(x,t,a) − ε_0(x,t,a))²)
//
// The first two terms are regionLoss, per sample; the anchors are samples of the same batch held to
// the teacher (entries with guidance 0 whose loss weight carries λ_anchor, loopEntries). ST-LOBA's
// target is styleTarget.

import (
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck

	"github.com/loba-dev/loba/models/nn"
)

// regionTerms are the §5 terms a run's graphs compile in; the zero value compiles none, and the
// objective is §1–3's exactly.
type regionTerms struct {
	// Masked: the batch carries a weight map W [B, 1, H, W] (region masks, RC-LOBA / U-LOBA).
	Masked bool
	// Preserve: λ_keep · mean((1−W) ⊙ (ε_1 − ε_0)²) on the entry's own prompt; the teacher also predicts
	// the target prompt (one 4B call instead of 3B).
	Preserve bool
	// Style: a per-sample flag selects ST-LOBA's target (styleTarget); StyleMeanOnly imposes the
	// style's channel means only (style_stats: mean).
	Style         bool
	StyleMeanOnly bool
	// Concept: U-LOBA's concept mask — W (times any mask) from the teacher's cross-attention maps of the
	// erased concept's tokens, normalised, thresholded at ConceptThreshold and blurred by ConceptBlur
	// latent pixels (nn.ConceptMask); rows without concept tokens get 1.
	Concept          bool
	ConceptThreshold float64
	ConceptBlur      int
}

// regionLoss is the per-sample loss [B] from the elementwise loss el [B, C, H, W]: the plain mean,
// or with a weight map mean(W ⊙ el) (normalised by the element count, as §5 writes it: an all-ones W
// is the plain loss, a W of 0.5 everywhere half of it) plus λ_keep·mean((1−W) ⊙ (ε_1 − ε_0)²), where
// ε_1 is the student's prediction and ε_0 the teacher's on the same prompt.
func regionLoss(el *Node, p teacherStudent, in stepBatch, r regionTerms) *Node {
	if !r.Masked {
		return PerSampleMean(el)
	}
	w := ConvertDType(in.Mask, dtypes.Float32) // [B, 1, H, W]
	if r.Concept {
		w = Mul(w, conceptWeights(p.ConceptMaps, in.Concept, r))
	}
	w = BroadcastToDims(w, el.Shape().Dimensions...) // [B, C, H, W]
	loss := PerSampleMean(Mul(w, el))
	if !r.Preserve {
		return loss
	}
	drift := Square(Sub(ConvertDType(p.Target, dtypes.Float32), ConvertDType(p.TargetRef, dtypes.Float32)))
	keep := PerSampleMean(Mul(OneMinus(w), drift)) // [B]
	return Add(loss, Mul(ConvertDType(in.Preserve, dtypes.Float32), keep))
}

// conceptWeights is U-LOBA's concept mask [B, 1, H, W] from the maps [B, H, W], 1 for the rows whose
// token mask [B, S] is all zeros.
func conceptWeights(maps, tokens *Node, r regionTerms) *Node {
	m := nn.ConceptMask(maps, r.ConceptThreshold, r.ConceptBlur) // [B, 1, H, W]
	has := GreaterThan(ReduceMax(ConvertDType(tokens, dtypes.Float32), 1), ScalarZero(tokens.Graph(), dtypes.Float32))
	has = BroadcastToDims(Reshape(has, has.Shape().Dim(0), 1, 1, 1), m.Shape().Dimensions...)
	return Where(has, m, OnesLike(m))
}

// styleTarget is ST-LOBA's target for the samples whose flag is 1 (the others keep y): per sample and
// channel, y's statistics over the image replaced by the style prediction's,
// normlike_c(y, e_style) = (y − mean_c y)/(std_c y + 1e-8)·std_c(e_style) + mean_c(e_style), with
// y = e_content + η·(e_style − e_neutral) (lecoTarget of a style entry: neutral = content, positive =
// style, unconditional = the style-free reference); with meanOnly, y − mean_c y + mean_c(e_style).
// flag: [B].
func styleTarget(y *Node, p teacherStudent, flag *Node, meanOnly bool) *Node {
	axes := []int{2, 3} // H, W: per sample and channel
	ym, ys := meanStd(y, axes)
	rm, rs := meanStd(p.Positive, axes)
	styled := Add(Mul(Div(Sub(y, ym), AddScalar(ys, 1e-8)), rs), rm)
	if meanOnly {
		styled = Add(Sub(y, ym), rm)
	}
	f := flag
	for f.Rank() < y.Rank() {
		f = InsertAxes(f, -1)
	} // [B, 1, 1, 1]
	on := BroadcastToDims(GreaterThan(f, ZerosLike(f)), y.Shape().Dimensions...)
	return Where(on, styled, y)
}
