package train

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
)

// TestGradientCheckpointingSameLosses: train.gradient_checkpointing on and off give the same losses
// over three LECO steps on the tiny SD1.5 fixture pipeline (the rematerialised backward pass
// computes the same gradients, up to the order of a few float32 sums), and the options reach the
// graphs: on turns checkpointing on, auto leaves it off for a UNet this small.
func TestGradientCheckpointingSameLosses(t *testing.T) {
	losses := map[string][]float32{}
	for _, mode := range []string{"off", "on", "auto"} {
		p := tinyPreset(t, 3)
		p.Train.GradientCheckpointing = mode
		run, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
		require.NoError(t, err)
		mem, err := memoryOptions(p.Train, run.Pipeline)
		require.NoError(t, err)
		require.Equal(t, mode == "on", mem.GradientCheckpointing, "gradient_checkpointing %s", mode)
		if mode == "auto" {
			continue
		}
		res, err := run.Train()
		require.NoError(t, err)
		require.Len(t, res.FirstLosses, 3)
		losses[mode] = res.FirstLosses
	}
	t.Logf("losses off %v, on %v", losses["off"], losses["on"])
	for i, want := range losses["off"] {
		got := losses["on"][i]
		require.InEpsilonf(t, want, got, 1e-6, "step %d: loss with checkpointing %v, without %v", i+1, got, want)
	}
}
