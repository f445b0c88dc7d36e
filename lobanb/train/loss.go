package train

// Per-sample losses and their weights: ports kohya sd-scripts conditional_loss (library/train_util.py:
// l2, l1, huber, smooth_l1), get_huber_threshold_if_needed, and min-SNR-γ weighting (Hang et al. 2023,
// "Efficient Diffusion Training via Min-SNR Weighting Strategy"; kohya apply_snr_weight, diffusers
// training_utils.compute_snr). All losses are float32, computed per element and averaged per sample.

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
)

// Loss types accepted by perSampleLoss and elementwiseLoss.
const (
	LossL2       = "l2"
	LossL1       = "l1"
	LossHuber    = "huber"
	LossSmoothL1 = "smooth_l1"
)

var validLossTypes = []string{LossL2, LossL1, LossHuber, LossSmoothL1}

// validateLossType checks a loss_type setting ("" counts as l2) and, for huber and smooth_l1, huber_c.
func validateLossType(lossType string, huberC float64) error {
	if lossType == "" {
		return nil
	}
	if !slices.Contains(validLossTypes, lossType) {
		return fmt.Errorf("train: unknown loss_type %q, valid loss types: %s", lossType, strings.Join(validLossTypes, ", "))
	}
	if (lossType == LossHuber || lossType == LossSmoothL1) && !(huberC > 0) {
		return fmt.Errorf("train: loss_type %s: huber_c = %v, want > 0", lossType, huberC)
	}
	return nil
}

// elementwiseLoss is kohya conditional_loss with reduction="none", d = pred − target:
//
//	l2:        d²                      (F.mse_loss)
//	l1:        |d|                     (F.l1_loss)
//	huber:     2c·(sqrt(d² + c²) − c)  (pseudo-Huber, as diffusers/sd-scripts)
//	smooth_l1: 2·(sqrt(d² + c²) − c)   (sd-scripts' smooth_l1: pseudo-Huber without the c factor)
//
// c is huberC: a scalar or a [B] per-sample threshold (sd-scripts' scheduled huber_c), any float dtype.
// "" means l2. The result is float32 with pred's shape [B, ...]. Panics on an unknown lossType.
func elementwiseLoss(pred, target *Node, lossType string, huberC *Node) *Node {
	if !slices.Equal(pred.Shape().Dimensions, target.Shape().Dimensions) {
		exceptions.Panicf("train: loss: pred %s and target %s differ in shape", pred.Shape(), target.Shape())
	}
	d := Sub(ConvertDType(pred, dtypes.Float32), ConvertDType(target, dtypes.Float32))
	switch lossType {
	case LossL2, "":
		return Square(d)
	case LossL1:
		return Abs(d)
	case LossHuber, LossSmoothL1:
		if huberC == nil {
			exceptions.Panicf("train: loss %s needs huber_c", lossType)
		}
		c := ConvertDType(huberC, dtypes.Float32)
		switch {
		case c.IsScalar():
		case c.Rank() == 1 && c.Shape().Dim(0) == pred.Shape().Dim(0):
			c = Reshape(c, append([]int{c.Shape().Dim(0)}, slices.Repeat([]int{1}, pred.Rank()-1)...)...) // [B, 1, ...]
		default:
			exceptions.Panicf("train: loss %s: huber_c must be a scalar or [B] with B = %d, got %s",
				lossType, pred.Shape().Dim(0), huberC.Shape())
		}
		l := MulScalar(Sub(Sqrt(Add(Square(d), Square(c))), c), 2)
		if lossType == LossHuber {
			l = Mul(c, l)
		}
		return l
	}
	exceptions.Panicf("train: unknown loss_type %q, valid loss types: %s", lossType, strings.Join(validLossTypes, ", "))
	return nil
}

// PerSampleMean is the mean of x [B, ...] over every axis but the first: [B].
func PerSampleMean(x *Node) *Node {
	if x.Rank() < 1 {
		exceptions.Panicf("train: PerSampleMean needs a batch axis, got %s", x.Shape())
	}
	if x.Rank() == 1 {
		return x
	}
	axes := make([]int, x.Rank()-1)
	for i := range axes {
		axes[i] = i + 1
	}
	return ReduceMean(x, axes...)
}

// perSampleLoss is elementwiseLoss with a constant huber_c, averaged per sample: [B] float32, i.e.
// kohya's conditional_loss(reduction="none").mean([1, 2, 3]).
func perSampleLoss(pred, target *Node, lossType string, huberC float64) *Node {
	return PerSampleMean(elementwiseLoss(pred, target, lossType, Scalar(pred.Graph(), dtypes.Float32, huberC)))
}

// maskedMean is the per-sample weighted mean Σ(mask·x) / Σ(mask) over every axis but the first, with
// mask broadcast to x's shape before both sums (a [B, 1, H, W] mask over C channels counts C times, so
// the result is a true weighted mean of x). mask ≥ 0 has x's rank and dims that are 1 or x's. A sample
// whose mask sums to 0 gets 0. Returns [B] float32.
//
// This is not mean(W ⊙ x) (docs/ALGORITHMS.md §5, normalised by the element count): for that, use
// PerSampleMean(Mul(mask, x)).
func maskedMean(x, mask *Node) *Node {
	if mask.Rank() != x.Rank() {
		exceptions.Panicf("train: MaskedMean: mask %s must have the rank of %s", mask.Shape(), x.Shape())
	}
	for i, d := range mask.Shape().Dimensions {
		if d != 1 && d != x.Shape().Dim(i) {
			exceptions.Panicf("train: MaskedMean: mask %s does not broadcast to %s", mask.Shape(), x.Shape())
		}
	}
	x = ConvertDType(x, dtypes.Float32)
	m := BroadcastToDims(ConvertDType(mask, dtypes.Float32), x.Shape().Dimensions...)
	axes := make([]int, x.Rank()-1)
	for i := range axes {
		axes[i] = i + 1
	}
	num := ReduceSum(Mul(m, x), axes...) // [B]
	den := ReduceSum(m, axes...)         // [B]
	safe := Where(GreaterThan(den, ZerosLike(den)), den, OnesLike(den))
	return Div(num, safe) // num is 0 where den is 0
}

// maskedPerSampleLoss is the masked l2 loss per sample, maskedMean((pred − target)², mask): [B].
func maskedPerSampleLoss(pred, target, mask *Node) *Node {
	return maskedMean(elementwiseLoss(pred, target, LossL2, nil), mask)
}

// weightedMean is mean_b(perSample[b]·weights[b]) — kohya's `loss = loss * weights; loss.mean()`, NOT
// normalised by Σweights. weights nil means 1. Both [B]; returns a float32 scalar.
func weightedMean(perSample, weights *Node) *Node {
	perSample = ConvertDType(perSample, dtypes.Float32)
	if weights == nil {
		return ReduceAllMean(perSample)
	}
	if !slices.Equal(perSample.Shape().Dimensions, weights.Shape().Dimensions) {
		exceptions.Panicf("train: WeightedMean: perSample %s and weights %s differ in shape", perSample.Shape(), weights.Shape())
	}
	return ReduceAllMean(Mul(perSample, ConvertDType(weights, dtypes.Float32)))
}

// SNRFromAlphasCumprod gathers ᾱ_t from the training table and returns SNR = ᾱ/(1 − ᾱ) as float32 (the
// division in float64, so it equals diffusers' compute_snr (√ᾱ/√(1−ᾱ))² to float32 rounding). t holds
// integer timesteps (any integer dtype, scalar or [B]); SNR has t's shape. ᾱ = 1 gives +Inf, ᾱ = 0 (zero
// terminal SNR) gives 0.
func SNRFromAlphasCumprod(alphasCumprod []float32, t *Node) *Node {
	if len(alphasCumprod) == 0 {
		exceptions.Panicf("train: SNRFromAlphasCumprod: empty alphas_cumprod")
	}
	if !t.DType().IsInt() {
		exceptions.Panicf("train: SNRFromAlphasCumprod: timesteps must be integers, got %s", t.Shape())
	}
	g := t.Graph()
	table := Const(g, alphasCumprod)                                   // [T]
	ac := Gather(table, InsertAxes(ConvertDType(t, dtypes.Int32), -1)) // t's shape
	ac64 := ConvertDType(ac, dtypes.Float64)
	return ConvertDType(Div(ac64, OneMinus(ac64)), dtypes.Float32)
}

// MinSNRWeights is the min-SNR-γ loss weight for each SNR value: min(SNR, γ)/SNR for ε-prediction,
// min(SNR, γ)/(SNR + 1) for v-prediction (kohya apply_snr_weight). The ε weight is computed as
// min(1, γ/SNR), its value for every SNR > 0 and its limit 1 at SNR = 0, where kohya's formula gives NaN
// (zero-terminal-SNR schedules). Returns float32 with snr's shape.
func MinSNRWeights(snr *Node, gamma float64, vPrediction bool) *Node {
	if !(gamma > 0) {
		exceptions.Panicf("train: MinSNRWeights: gamma = %v, want > 0", gamma)
	}
	snr = ConvertDType(snr, dtypes.Float32)
	g := snr.Graph()
	gammaN := Scalar(g, dtypes.Float32, gamma)
	if vPrediction {
		return Div(Min(snr, gammaN), AddScalar(snr, 1))
	}
	return Min(Div(gammaN, snr), ScalarOne(g, dtypes.Float32))
}

// Huber schedules accepted by huberThreshold.
const (
	HuberScheduleConstant    = "constant"
	HuberScheduleExponential = "exponential"
	HuberScheduleSNR         = "snr"
)

// huberThreshold ports sd-scripts get_huber_threshold_if_needed for one timestep t (host side):
//
//	constant:    c·scale
//	exponential: exp(−α·t)·scale with α = −ln(c)/numTrainTimesteps
//	snr:         (1 − c)/(1 + σ)² + c with σ = sqrt((1 − ᾱ_t)/ᾱ_t)   (no scale, as sd-scripts)
//
// sd-scripts' defaults are schedule snr, c 0.1, scale 1. alphasCumprod is only read by snr.
func huberThreshold(schedule string, huberC, huberScale float64, t, numTrainTimesteps int, alphasCumprod []float32) (float64, error) {
	switch schedule {
	case HuberScheduleConstant:
		return huberC * huberScale, nil
	case HuberScheduleExponential:
		if numTrainTimesteps < 1 || !(huberC > 0) {
			return 0, fmt.Errorf("train: huber_schedule exponential: huber_c = %v, num_train_timesteps = %d, want > 0",
				huberC, numTrainTimesteps)
		}
		alpha := -math.Log(huberC) / float64(numTrainTimesteps)
		return math.Exp(-alpha*float64(t)) * huberScale, nil
	case HuberScheduleSNR:
		if t < 0 || t >= len(alphasCumprod) {
			return 0, fmt.Errorf("train: huber_schedule snr: timestep %d outside alphas_cumprod [0, %d)", t, len(alphasCumprod))
		}
		ac := float64(alphasCumprod[t])
		sigma := math.Sqrt((1 - ac) / ac)
		return (1-huberC)/((1+sigma)*(1+sigma)) + huberC, nil
	}
	return 0, fmt.Errorf("train: unknown huber_schedule %q, valid: constant, exponential, snr", schedule)
}
