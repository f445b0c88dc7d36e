package train

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/lobanb/slider"
)

func TestDenoiseKs(t *testing.T) {
	// Trailing spacing, N = 20: t*(k) = 999 − 50k.
	tStar := func(k int) int64 { return int64(999 - 50*k) }
	preset := func(yaml string) *slider.Preset {
		p, err := slider.ParsePreset([]byte(yaml+"prompts: [{target: a cat}]\n"), "ks.yaml")
		require.NoError(t, err)
		return p
	}
	ks, err := denoiseKs(preset("max_denoising_steps: 20\nmin_denoising_steps: 0\n"), tStar)
	require.NoError(t, err)
	require.Len(t, ks, 20, "k ∈ [0, N−1]")
	require.Equal(t, 0, ks[0])

	ks, err = denoiseKs(preset("max_denoising_steps: 20\n"), tStar)
	require.NoError(t, err)
	require.Equal(t, 1, ks[0], "default: k ∈ [1, N−1]")
	require.Len(t, ks, 19)

	ks, err = denoiseKs(preset("max_denoising_steps: 20\nmin_denoising_steps: 0\ntimestep_range: [800, 999]\n"), tStar)
	require.NoError(t, err)
	require.Equal(t, []int{0, 1, 2, 3}, ks, "t* = 999, 949, 899, 849 (799 < 800)")

	_, err = denoiseKs(preset("max_denoising_steps: 5\ntimestep_range: [850, 950]\n"), func(k int) int64 { return int64(999 - 200*k) })
	require.ErrorContains(t, err, "timestep_range [850 950] holds none")
	require.ErrorContains(t, err, "ks.yaml")
}
