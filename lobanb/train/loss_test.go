package train

import (
	"math"
	"strings"
	"testing"

	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/loba-dev/loba/internal/testutil"
)

// lossInputs: pred − target = d, [B=2, C=2, H=1, W=2] with
// sample 0: d = [[1, −2], [0, 3]], sample 1: d = [[0.5, −0.5], [1, 1]].
var (
	lossTarget = []float32{0.5, 1, -1, 2, 0, 0, 3, -1}
	lossD      = []float64{1, -2, 0, 3, 0.5, -0.5, 1, 1}
)

func lossPred() []float32 {
	p := make([]float32, len(lossTarget))
	for i := range p {
		p[i] = lossTarget[i] + float32(lossD[i])
	}
	return p
}

func execLoss(t *testing.T, fn func(pred, target *Node) *Node) []float64 {
	t.Helper()
	out := MustExecOnce(testutil.Backend(t), fn,
		tensors.FromFlatDataAndDimensions(lossPred(), 2, 2, 1, 2), tensors.FromFlatDataAndDimensions(lossTarget, 2, 2, 1, 2))
	return toF64(tensors.MustCopyFlatData[float32](out))
}

func assertClose(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol*max(1, math.Abs(want[i])) {
			t.Errorf("%s[%d] = %.9g, want %.9g", what, i, got[i], want[i])
		}
	}
}

func TestLossPerSample(t *testing.T) {
	// pseudo-Huber per element with c = 0.5: 2c·(√(d²+c²) − c); smooth_l1 (sd-scripts): 2·(√(d²+c²) − c).
	ph := func(d, c float64) float64 { return 2 * c * (math.Sqrt(d*d+c*c) - c) }
	mean4 := func(f func(d float64) float64, s int) float64 {
		var sum float64
		for _, d := range lossD[4*s : 4*s+4] {
			sum += f(d)
		}
		return sum / 4
	}
	huber := func(d float64) float64 { return ph(d, 0.5) }
	smooth := func(d float64) float64 { return ph(d, 0.5) / 0.5 }
	cases := []struct {
		lossType string
		want     []float64
	}{
		{"l2", []float64{3.5, 0.625}}, // (1+4+0+9)/4, (0.25+0.25+1+1)/4
		{"", []float64{3.5, 0.625}},
		{"l1", []float64{1.5, 0.75}},
		{"huber", []float64{mean4(huber, 0), mean4(huber, 1)}},
		{"smooth_l1", []float64{mean4(smooth, 0), mean4(smooth, 1)}},
	}
	for _, c := range cases {
		got := execLoss(t, func(pred, target *Node) *Node { return perSampleLoss(pred, target, c.lossType, 0.5) })
		assertClose(t, "PerSampleLoss "+c.lossType, got, c.want, 1e-6)
	}
	// huber with c = 1, d = 1: 2(√2 − 1).
	if got := execLoss(t, func(pred, target *Node) *Node { return perSampleLoss(pred, target, "huber", 1) }); math.Abs(got[0]-(2*(math.Sqrt2-1)+2*(math.Sqrt(5)-1)+2*(math.Sqrt(10)-1))/4) > 1e-6 {
		t.Errorf("huber c=1: %v", got)
	}
	// Per-sample huber_c [B] = [0.5, 2].
	got := execLoss(t, func(pred, target *Node) *Node {
		c := Const(pred.Graph(), []float32{0.5, 2})
		return PerSampleMean(elementwiseLoss(pred, target, "huber", c))
	})
	assertClose(t, "huber per-sample c", got, []float64{mean4(huber, 0), mean4(func(d float64) float64 { return ph(d, 2) }, 1)}, 1e-6)

	err := exceptions.TryCatch[error](func() {
		execLoss(t, func(pred, target *Node) *Node { return perSampleLoss(pred, target, "mse", 0) })
	})
	if err == nil || !strings.Contains(err.Error(), `"mse"`) {
		t.Errorf("unknown loss type: %v", err)
	}
	if err := validateLossType("mse", 0); err == nil || !strings.Contains(err.Error(), "smooth_l1") {
		t.Errorf("ValidateLossType: %v", err)
	}
	if err := validateLossType("huber", 0); err == nil {
		t.Error("huber with huber_c 0 accepted")
	}
	for _, lt := range []string{"", "l2", "l1", "huber", "smooth_l1"} {
		if err := validateLossType(lt, 0.1); err != nil {
			t.Errorf("%q: %v", lt, err)
		}
	}
}

func TestLossMasked(t *testing.T) {
	// Squared errors: sample 0 [[1, 4], [0, 9]], sample 1 [[0.25, 0.25], [1, 1]] over [C=2, W=2].
	cases := []struct {
		mask []float32 // [2, 1, 1, 2]: one weight per (sample, w), shared by the channels
		want []float64
	}{
		{[]float32{1, 0, 1, 1}, []float64{(1 + 0) / 2.0, 2.5 / 4}},
		{[]float32{1, 1, 0.5, 0.25}, []float64{3.5, (0.5*0.25 + 0.25*0.25 + 0.5*1 + 0.25*1) / 1.5}},
		{[]float32{0, 0, 0, 2}, []float64{0, (2*0.25 + 2*1) / 4}}, // all-zero mask → 0
	}
	for _, c := range cases {
		got := execLoss(t, func(pred, target *Node) *Node {
			mask := Const(pred.Graph(), tensors.FromFlatDataAndDimensions(c.mask, 2, 1, 1, 2))
			return maskedPerSampleLoss(pred, target, mask)
		})
		assertClose(t, "MaskedPerSampleLoss", got, c.want, 1e-6)
	}
}

func TestLossWeightedMean(t *testing.T) {
	out := MustExecOnce(testutil.Backend(t), func(l, w *Node) *Node { return weightedMean(l, w) },
		[]float32{1, 2, 3}, []float32{0.5, 1, 2})
	if got := tensors.ToScalar[float32](out); math.Abs(float64(got)-8.5/3) > 1e-6 {
		t.Errorf("WeightedMean = %v, want %v", got, 8.5/3)
	}
	out = MustExecOnce(testutil.Backend(t), func(l *Node) *Node { return weightedMean(l, nil) }, []float32{1, 2, 6})
	if got := tensors.ToScalar[float32](out); got != 3 {
		t.Errorf("WeightedMean(nil weights) = %v, want 3", got)
	}
}

func TestLossSNRAndMinSNRWeights(t *testing.T) {
	ac := []float32{0.99, 0.5, 0.2, 0, 1}
	for _, ts := range []any{[]int64{1, 0, 3, 2, 4}, []int32{1, 0, 3, 2, 4}} {
		out := MustExecOnce(testutil.Backend(t), func(t *Node) *Node { return SNRFromAlphasCumprod(ac, t) }, ts)
		got := toF64(tensors.MustCopyFlatData[float32](out))
		want := []float64{1, float64(ac[0]) / (1 - float64(ac[0])), 0, 0.25, math.Inf(1)}
		if !math.IsInf(got[4], 1) {
			t.Errorf("SNR(ᾱ=1) = %v, want +Inf", got[4])
		}
		assertClose(t, "SNR", got[:4], want[:4], 1e-6)
	}

	snr := []float32{0, 0.5, 5, 20, float32(math.Inf(1))}
	for _, c := range []struct {
		v    bool
		want []float64
	}{
		{false, []float64{1, 1, 1, 0.25, 0}},                  // min(SNR, 5)/SNR, limit 1 at SNR = 0
		{true, []float64{0, 0.5 / 1.5, 5.0 / 6, 5.0 / 21, 0}}, // min(SNR, 5)/(SNR + 1)
	} {
		out := MustExecOnce(testutil.Backend(t), func(s *Node) *Node { return MinSNRWeights(s, 5, c.v) }, snr)
		assertClose(t, "MinSNRWeights", toF64(tensors.MustCopyFlatData[float32](out)), c.want, 1e-6)
	}
}

func TestLossHuberThreshold(t *testing.T) {
	ac := []float32{1, 0.5}
	for _, c := range []struct {
		schedule string
		t        int
		scale    float64
		want     float64
	}{
		{"constant", 7, 2, 0.2},
		{"exponential", 0, 1.5, 1.5},
		{"exponential", 500, 1, math.Sqrt(0.1)},
		{"exponential", 1000, 1, 0.1},
		{"snr", 0, 1, 1},     // σ = 0
		{"snr", 1, 3, 0.325}, // σ = 1: 0.9/4 + 0.1 (no scale)
	} {
		got, err := huberThreshold(c.schedule, 0.1, c.scale, c.t, 1000, ac)
		if err != nil || math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s t=%d: %v, %v; want %v", c.schedule, c.t, got, err, c.want)
		}
	}
	if _, err := huberThreshold("linear", 0.1, 1, 0, 1000, ac); err == nil || !strings.Contains(err.Error(), "linear") {
		t.Errorf("unknown schedule: %v", err)
	}
	if _, err := huberThreshold("snr", 0.1, 1, 2, 1000, ac); err == nil {
		t.Error("out-of-range timestep accepted")
	}
}
