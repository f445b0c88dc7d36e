package schedulers

// Ports the numpy arithmetic of diffusers' set_timesteps (timestep_spacing "linspace", "leading",
// "trailing") and of EulerDiscreteScheduler's sigma interpolation (np.interp) and sigma
// conversions, reproducing numpy 1.24's float64 formulas.

import (
	"fmt"
	"math"
)

// npLinspace reproduces np.linspace(start, stop, num) (endpoint=True) in float64:
// y[i] = i·step + start with step = (stop-start)/(num-1), and y[num-1] = stop exactly.
func npLinspace(start, stop float64, num int) []float64 {
	if num <= 0 {
		return nil
	}
	y := make([]float64, num)
	div := num - 1
	delta := stop - start
	for i := range y {
		y[i] = float64(i)
	}
	if div > 0 {
		step := delta / float64(div)
		if step == 0 {
			for i := range y {
				y[i] = float64(y[i]/float64(div)) * delta
			}
		} else {
			for i := range y {
				y[i] = float64(y[i] * step)
			}
		}
	} else {
		for i := range y {
			y[i] = float64(y[i] * delta)
		}
	}
	for i := range y {
		y[i] += start
	}
	if num > 1 {
		y[num-1] = stop
	}
	return y
}

// npArange reproduces np.arange(start, stop, step) for float64: length ceil((stop-start)/step),
// y[0] = start, y[1] = start+step, and y[i] = start + i·delta for i ≥ 2 with
// delta = (start+step) - start (numpy's DOUBLE_fill).
func npArange(start, stop, step float64) []float64 {
	length := int(math.Ceil((stop - start) / step))
	if length <= 0 {
		return nil
	}
	y := make([]float64, length)
	y[0] = start
	if length > 1 {
		y[1] = start + step
		delta := y[1] - y[0]
		for i := 2; i < length; i++ {
			y[i] = start + float64(float64(i)*delta)
		}
	}
	return y
}

// spacedTimesteps returns the float64 timesteps of set_timesteps(n) before the final dtype cast,
// in descending order, for timestep_spacing "linspace", "leading" or "trailing":
//
//	linspace: np.linspace(0, N-1, n)[::-1]                  (not rounded here)
//	leading:  (np.arange(0, n) * (N // n)).round()[::-1] + steps_offset
//	trailing: np.round(np.arange(N, 0, -N/n)) - 1
func spacedTimesteps(spacing string, numTrain, n, stepsOffset int) ([]float64, error) {
	var ts []float64
	switch spacing {
	case "linspace":
		ts = npLinspace(0, float64(numTrain-1), n)
	case "leading":
		ratio := numTrain / n
		ts = make([]float64, n)
		for i := range ts {
			ts[i] = float64(i*ratio + stepsOffset)
		}
	case "trailing":
		ts = npArange(float64(numTrain), 0, -float64(numTrain)/float64(n))
		for i := range ts {
			ts[i] = math.RoundToEven(ts[i]) - 1
		}
		return ts, nil // already descending
	default:
		return nil, fmt.Errorf("timestep_spacing %q is not supported; valid: %v", spacing, validTimestepSpacings)
	}
	for i, j := 0, len(ts)-1; i < j; i, j = i+1, j-1 {
		ts[i], ts[j] = ts[j], ts[i]
	}
	return ts, nil
}

// npInterp reproduces np.interp(x, arange(len(fp)), fp) in float64 for x inside [0, len(fp)-1]:
// values at a grid point are returned exactly; otherwise slope·(x - j) + fp[j] with
// slope = fp[j+1] - fp[j].
func npInterp(x float64, fp []float64) float64 {
	n := len(fp)
	switch {
	case math.IsNaN(x):
		return x
	case x < 0:
		return fp[0]
	case x >= float64(n-1):
		return fp[n-1]
	}
	j := int(math.Floor(x))
	if float64(j) == x {
		return fp[j]
	}
	slope := (fp[j+1] - fp[j]) / 1
	r := float64(slope*(x-float64(j))) + fp[j]
	if math.IsNaN(r) {
		r = float64(slope*(x-float64(j+1))) + fp[j+1]
		if math.IsNaN(r) && fp[j] == fp[j+1] {
			r = fp[j]
		}
	}
	return r
}

// sigmaToT ports EulerDiscreteScheduler._sigma_to_t: the fractional training timestep whose log
// sigma interpolates log_sigmas (an increasing table) linearly.
func sigmaToT(sigma float64, logSigmas []float64) float64 {
	logSigma := math.Log(math.Max(sigma, 1e-10))
	n := len(logSigmas)
	// low_idx = cumsum(dists >= 0).argmax(): the last index with log_sigma >= log_sigmas[i]
	// (0 when there is none), clipped to n-2.
	low, count, best := 0, 0, 0
	for i, ls := range logSigmas {
		if logSigma-ls >= 0 {
			count++
			if count > best {
				best, low = count, i
			}
		}
	}
	if low > n-2 {
		low = n - 2
	}
	high := low + 1
	lo, hi := logSigmas[low], logSigmas[high]
	w := (lo - logSigma) / (lo - hi)
	w = math.Min(math.Max(w, 0), 1)
	return float64((1-w)*float64(low)) + float64(w*float64(high))
}

// karrasSigmas ports EulerDiscreteScheduler._convert_to_karras (Karras et al. 2022, eq. 5, rho = 7).
func karrasSigmas(sigmaMin, sigmaMax float64, n int) []float64 {
	const rho = 7.0
	ramp := npLinspace(0, 1, n)
	minInvRho := math.Pow(sigmaMin, 1/rho)
	maxInvRho := math.Pow(sigmaMax, 1/rho)
	out := make([]float64, n)
	for i, r := range ramp {
		out[i] = math.Pow(maxInvRho+float64(r*(minInvRho-maxInvRho)), rho)
	}
	return out
}

// exponentialSigmas ports EulerDiscreteScheduler._convert_to_exponential.
func exponentialSigmas(sigmaMin, sigmaMax float64, n int) []float64 {
	ls := npLinspace(math.Log(sigmaMax), math.Log(sigmaMin), n)
	out := make([]float64, n)
	for i, v := range ls {
		out[i] = math.Exp(v)
	}
	return out
}

// roundHalfEven is np.round / np.around for float64 (round half to even).
func roundHalfEven(x float64) float64 { return math.RoundToEven(x) }
