package schedulers

// Ports the beta-schedule code shared by diffusers' scheduling_ddpm.py, scheduling_ddim.py and
// scheduling_euler_discrete.py (diffusers 58eb52c0): the beta schedules, betas_for_alpha_bar,
// rescale_zero_terminal_snr and alphas_cumprod, with torch's float32 arithmetic reproduced so that
// the tables are bit-identical to diffusers on x86-64 CPU.

import (
	"fmt"
	"math"
)

// fma32 is a float32 fused multiply-add, round32(a·b + c) with a single rounding, as the FMA
// instructions that torch's AVX2 kernels are compiled to.
func fma32(a, b, c float32) float32 {
	// Exact: 24+24 bits fit in a float64 mantissa (the conversion forbids Go from fusing it into an FMA).
	p := float64(float64(a) * float64(b))
	s := p + float64(c)
	// TwoSum: s + e == p + c exactly.
	bb := s - p
	e := (p - (s - bb)) + (float64(c) - bb)
	r := float32(s)
	if e == 0 || float64(r) == s {
		return r
	}
	// s is not a float32: the only case where rounding s differs from rounding s+e is when s is
	// exactly halfway between two float32 values.
	var other float32
	if float64(r) < s {
		other = math.Nextafter32(r, float32(math.Inf(1)))
	} else {
		other = math.Nextafter32(r, float32(math.Inf(-1)))
	}
	if mid := (float64(r) + float64(other)) / 2; mid != s {
		return r
	}
	// True value s+e lies on e's side of the midpoint.
	if (e > 0) == (float64(other) > s) {
		return other
	}
	return r
}

// torchLinspace32 reproduces torch.linspace(start, end, steps, dtype=torch.float32) on an x86-64
// CPU (ATen's linspace_kernel, AVX2 build with FMA contraction): start and end are rounded to
// float32, step = (end - start) / (steps - 1) in float32; the first half counts up from start
// (start + step·i) and the second half down from end (end - step·(steps-1-i)); vectorised lanes of 8
// are base + k·step. Every multiply-add is a fused float32 FMA.
func torchLinspace32(start, end float64, steps int) []float32 {
	if steps <= 0 {
		return nil
	}
	s, e := float32(start), float32(end)
	if steps == 1 {
		return []float32{s}
	}
	step := (e - s) / float32(steps-1)
	half := steps / 2
	value := func(i int) float32 {
		if i < half {
			return fma32(step, float32(i), s)
		}
		return fma32(-step, float32(steps-i-1), e)
	}
	const lanes = 8 // Vectorized<float>::size() for AVX2
	out := make([]float32, steps)
	i := 0
	for ; i+2*lanes <= steps; i += 2 * lanes {
		for v := 0; v < 2; v++ {
			base := value(i + v*lanes)
			for k := 0; k < lanes; k++ {
				out[i+v*lanes+k] = fma32(float32(k), step, base)
			}
		}
	}
	for ; i < steps; i++ {
		out[i] = value(i)
	}
	return out
}

// betasForAlphaBar ports diffusers betas_for_alpha_bar (computed in float64, then torch.tensor(...,
// dtype=float32)). transform is "cosine" (squaredcos_cap_v2) or "laplace".
func betasForAlphaBar(n int, transform string) []float32 {
	const maxBeta = 0.999
	var alphaBar func(t float64) float64
	switch transform {
	case "cosine":
		alphaBar = func(t float64) float64 {
			c := math.Cos((t + 0.008) / 1.008 * math.Pi / 2)
			return c * c
		}
	case "laplace":
		alphaBar = func(t float64) float64 {
			lmb := -0.5 * math.Copysign(1, 0.5-t) * math.Log(1-2*math.Abs(0.5-t)+1e-6)
			snr := math.Exp(lmb)
			return math.Sqrt(snr / (1 + snr))
		}
	default:
		panic(fmt.Sprintf("schedulers: unknown alpha_bar transform %q", transform))
	}
	betas := make([]float32, n)
	for i := range betas {
		t1 := float64(i) / float64(n)
		t2 := float64(i+1) / float64(n)
		betas[i] = float32(math.Min(1-alphaBar(t2)/alphaBar(t1), maxBeta))
	}
	return betas
}

// sigmoidBetas ports DDPMScheduler's "sigmoid" schedule: sigmoid(linspace(-6, 6, n)) ·
// (beta_end - beta_start) + beta_start, in float32.
func sigmoidBetas(n int, betaStart, betaEnd float64) []float32 {
	x := torchLinspace32(-6, 6, n)
	scale, offset := float32(betaEnd-betaStart), float32(betaStart)
	betas := make([]float32, n)
	for i, v := range x {
		sig := float32(1 / (1 + math.Exp(-float64(v))))
		betas[i] = float32(sig*scale) + offset
	}
	return betas
}

// computeBetas builds the betas of cfg (trained_betas, or beta_schedule), then applies
// rescale_betas_zero_snr. cfg must be valid.
func computeBetas(cfg *Config) []float32 {
	n := cfg.NumTrainTimesteps
	var betas []float32
	switch {
	case cfg.TrainedBetas != nil:
		betas = make([]float32, len(cfg.TrainedBetas))
		for i, b := range cfg.TrainedBetas {
			betas[i] = float32(b)
		}
	case cfg.BetaSchedule == "linear":
		betas = torchLinspace32(cfg.BetaStart, cfg.BetaEnd, n)
	case cfg.BetaSchedule == "scaled_linear":
		betas = torchLinspace32(math.Sqrt(cfg.BetaStart), math.Sqrt(cfg.BetaEnd), n)
		for i, b := range betas {
			betas[i] = float32(b * b)
		}
	case cfg.BetaSchedule == "squaredcos_cap_v2":
		betas = betasForAlphaBar(n, "cosine")
	case cfg.BetaSchedule == "laplace":
		betas = betasForAlphaBar(n, "laplace")
	case cfg.BetaSchedule == "sigmoid":
		betas = sigmoidBetas(n, cfg.BetaStart, cfg.BetaEnd)
	default:
		panic(fmt.Sprintf("schedulers: beta_schedule %q passed validation", cfg.BetaSchedule))
	}
	if cfg.RescaleBetasZeroSNR {
		betas = rescaleZeroTerminalSNR(betas)
	}
	return betas
}

// alphasFromBetas is alphas = 1 - betas in float32.
func alphasFromBetas(betas []float32) []float32 {
	alphas := make([]float32, len(betas))
	for i, b := range betas {
		alphas[i] = 1 - b
	}
	return alphas
}

// cumprod32 reproduces torch.cumprod on a CPU float32 tensor: the running product is accumulated in
// float64 (at::acc_type<float>) and each prefix is rounded to float32.
func cumprod32(x []float32) []float32 {
	out := make([]float32, len(x))
	acc := 1.0
	for i, v := range x {
		acc *= float64(v)
		out[i] = float32(acc)
	}
	return out
}

// rescaleZeroTerminalSNR ports diffusers rescale_zero_terminal_snr (Lin et al. 2023, "Common
// Diffusion Noise Schedules and Sample Steps are Flawed", Algorithm 1) in float32: shift and scale
// sqrt(alphas_cumprod) so that the last value is exactly 0 and the first is unchanged.
func rescaleZeroTerminalSNR(betas []float32) []float32 {
	n := len(betas)
	ac := cumprod32(alphasFromBetas(betas))
	sqrtAC := make([]float32, n)
	for i, a := range ac {
		sqrtAC[i] = float32(math.Sqrt(float64(a))) // correctly rounded float32 sqrt
	}
	s0, sT := sqrtAC[0], sqrtAC[n-1]
	ratio := s0 / (s0 - sT)
	alphasBar := make([]float32, n)
	for i, s := range sqrtAC {
		s = (s - sT) * ratio
		alphasBar[i] = float32(s * s)
	}
	out := make([]float32, n)
	out[0] = 1 - alphasBar[0]
	for i := 1; i < n; i++ {
		out[i] = 1 - alphasBar[i]/alphasBar[i-1]
	}
	return out
}
