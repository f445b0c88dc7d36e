package eval

// Metrics of slider evaluation that know nothing about models: rank correlation and slope.

import (
	"fmt"
	"math"
	"sort"
)

// Ranks returns the rank of each value of x (1 = smallest), ties getting the average of the ranks
// they span (the "fractional" ranking of scipy.stats.rankdata's default method "average").
func Ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] < x[idx[b]] })
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && x[idx[j]] == x[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2 // mean of the 1-based ranks i+1 … j
		for k := i; k < j; k++ {
			r[idx[k]] = avg
		}
		i = j
	}
	return r
}

// Pearson is the sample correlation coefficient of x and y. It is 0 when there are fewer than two
// points or when either side is constant (the correlation is undefined there; 0 reads as "no
// effect", which is what a slider that changes nothing should score). It panics when the lengths
// differ.
func Pearson(x, y []float64) float64 {
	checkLens("Pearson", x, y)
	n := len(x)
	if n < 2 {
		return 0
	}
	mx, my := mean(x), mean(y)
	var sxy, sxx, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	r := sxy / math.Sqrt(sxx*syy)
	return max(-1, min(1, r)) // guard rounding just outside [-1, 1]
}

// Spearman is the Spearman rank correlation of x and y: the Pearson correlation of their ranks,
// ties taking average ranks (as scipy.stats.spearmanr). It is 0 when there are fewer than two points
// or when either side is constant (e.g. a read-out that does not move with the strength). It panics
// when the lengths differ.
func Spearman(x, y []float64) float64 {
	checkLens("Spearman", x, y)
	return Pearson(Ranks(x), Ranks(y))
}

// Slope is the least-squares slope of y against x (cov(x, y) / var(x)). It is 0 when there are
// fewer than two points or x is constant. It panics when the lengths differ.
func Slope(x, y []float64) float64 {
	checkLens("Slope", x, y)
	if len(x) < 2 {
		return 0
	}
	mx, my := mean(x), mean(y)
	var sxy, sxx float64
	for i := range x {
		dx := x[i] - mx
		sxy += dx * (y[i] - my)
		sxx += dx * dx
	}
	if sxx == 0 {
		return 0
	}
	return sxy / sxx
}

func mean(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

func checkLens(name string, x, y []float64) {
	if len(x) != len(y) {
		panic(fmt.Sprintf("eval.%s: x has %d values and y %d", name, len(x), len(y)))
	}
}
