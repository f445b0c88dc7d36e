package slider

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFastModeChecks: the fast modes' settings load with their defaults, and every invalid one or
// invalid combination is an error naming the key.
func TestFastModeChecks(t *testing.T) {
	const base = "prompts:\n  - target: a circle\n"
	p, err := ParsePreset([]byte("denoise: none\n"+base), "p.yaml")
	require.NoError(t, err)
	assert.Equal(t, X0Pool{Size: 4, Steps: 50, Prompt: PoolTarget, Timesteps: PoolUniformTimesteps}, p.X0Pool, "the pool's defaults: steps = max_denoising_steps")
	p, err = ParsePreset([]byte("trajectory_cache: {size: 8, refresh_every: 20}\n"+base), "p.yaml")
	require.NoError(t, err)
	assert.Equal(t, TrajectoryCache{Size: 8, RefreshEvery: 20}, p.TrajectoryCache)
	assert.Equal(t, DenoisePartial, p.Denoise)
	for _, c := range []struct{ yaml, want string }{
		{"denoise: nothing\n", `denoise: invalid value "nothing"; valid values: partial, none`},
		{"trajectory_cache: {size: -1}\n", "trajectory_cache.size: invalid value -1; want >= 0 (0 = off)"},
		{"trajectory_cache: {size: 2, refresh_every: -3}\n", "trajectory_cache.refresh_every: invalid value -3"},
		{"trajectory_cache: {refresh_every: 3}\n", "trajectory_cache.refresh_every: 3 without a size"},
		{"mode: leco\ntrajectory_cache: {size: 2}\n", "trajectory_cache: is a mode loba option"},
		{"mode: leco\ndenoise: none\n", "denoise: none is a mode loba option"},
		{"denoise: none\ntrajectory_cache: {size: 2}\n", "trajectory_cache: has nothing to cache with denoise none"},
		{"denoise: none\ndenoise_with_adapter: true\n", "denoise_with_adapter: true with denoise none"},
		{"denoise: none\nx0_pool: {size: -2}\n", "x0_pool.size: invalid value -2; want >= 1"},
		{"denoise: none\nx0_pool: {prompt: positive}\n", `x0_pool.prompt: invalid value "positive"; valid values: target, neutral`},
		{"x0_pool: {size: 2}\n", "x0_pool: is denoise none's pool; denoise is partial"},
		{"denoise: none\nx0_pool: {timesteps: linear}\n", `x0_pool.timesteps: invalid value "linear"; valid values: uniform, partial`},
		{"trajectory_cache: {sise: 2}\n", `unknown key "trajectory_cache.sise"`},
	} {
		t.Run(c.want, func(t *testing.T) {
			_, err := ParsePreset([]byte(c.yaml+base), "p.yaml")
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}
