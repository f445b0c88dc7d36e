package eval

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRanks(t *testing.T) {
	require.Equal(t, []float64{1.5, 3, 1.5, 4}, Ranks([]float64{10, 20, 10, 30}))
	require.Equal(t, []float64{3, 2, 1}, Ranks([]float64{3, 2, 1}))
	require.Equal(t, []float64{2, 2, 2}, Ranks([]float64{7, 7, 7}))
	require.Empty(t, Ranks(nil))
}

func TestSpearman(t *testing.T) {
	s := []float64{-2, -1, 0, 1, 2}
	// Monotone, not linear: exactly ±1.
	require.Equal(t, 1.0, Spearman(s, []float64{0.01, 0.1, 1, 10, 100}))
	require.Equal(t, -1.0, Spearman(s, []float64{5, 4, 3, 2, -10}))
	// Ties: y ranks [1, 2, 3.5, 5, 3.5] against [1, 2, 3, 4, 5]: Σdxdy = 8, Σdx² = 10, Σdy² = 9.5,
	// ρ = 8/√95 (scipy.stats.spearmanr gives 0.8207826816681233).
	require.InDelta(t, 8/math.Sqrt(95), Spearman([]float64{1, 2, 3, 4, 5}, []float64{5, 6, 7, 8, 7}), 1e-15)
	require.InDelta(t, 0.8207826816681233, Spearman([]float64{1, 2, 3, 4, 5}, []float64{5, 6, 7, 8, 7}), 1e-15)
	// Ties on both sides: x ranks [1.5, 1.5, 3], y ranks [1, 2.5, 2.5]: dx [-.5, -.5, 1],
	// dy [-1, .5, .5]: Σdxdy = .5 − .25 + .5 = .75, Σdx² = 1.5, Σdy² = 1.5 → 0.5.
	require.InDelta(t, 0.5, Spearman([]float64{0, 0, 1}, []float64{1, 2, 2}), 1e-15)
	// Undefined cases are 0: a constant side, fewer than two points.
	require.Equal(t, 0.0, Spearman(s, []float64{3, 3, 3, 3, 3}))
	require.Equal(t, 0.0, Spearman([]float64{1, 1, 1}, []float64{1, 2, 3}))
	require.Equal(t, 0.0, Spearman([]float64{1}, []float64{2}))
	require.Equal(t, 0.0, Spearman(nil, nil))
	require.Panics(t, func() { Spearman([]float64{1, 2}, []float64{1}) })
}

func TestSlope(t *testing.T) {
	require.InDelta(t, 2.0, Slope([]float64{0, 1, 2}, []float64{1, 3, 5}), 1e-15)
	// x = −2…2, y = [0, 0, 0, 0, 10]: mean y 2, Σdx(y−ȳ) = 4 + 2 + 0 − 2 + 16 = 20, Σdx² = 10 → 2.
	require.InDelta(t, 2.0, Slope([]float64{-2, -1, 0, 1, 2}, []float64{0, 0, 0, 0, 10}), 1e-15)
	require.InDelta(t, -0.5, Slope([]float64{2, 4}, []float64{1, 0}), 1e-15)
	require.Equal(t, 0.0, Slope([]float64{1, 1}, []float64{1, 2}), "constant x")
	require.Equal(t, 0.0, Slope([]float64{1}, []float64{1}))
	require.Panics(t, func() { Slope([]float64{1, 2}, []float64{1}) })
}

func TestPearson(t *testing.T) {
	// x = [1, 2, 3], y = [1, 3, 2]: dx [-1, 0, 1], dy [-1, 1, 0] → Σdxdy 1, Σdx² 2, Σdy² 2 → 0.5.
	require.InDelta(t, 0.5, Pearson([]float64{1, 2, 3}, []float64{1, 3, 2}), 1e-15)
}
