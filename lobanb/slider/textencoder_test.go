package slider

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTextEncoderNetworkChecks: network.text_encoder takes the network's rank and alpha by default,
// and invalid settings are errors naming the key.
func TestTextEncoderNetworkChecks(t *testing.T) {
	const base = "prompts:\n  - target: a circle\n"
	p, err := ParsePreset([]byte("network: {targets: none, rank: 8, alpha: 2, text_encoder: {targets: lierla}}\n"+base), "p.yaml")
	require.NoError(t, err)
	te := p.Network.TextEncoder
	require.True(t, te.Enabled())
	assert.Equal(t, 8, te.Rank)
	assert.Equal(t, 2.0, *te.Alpha)
	assert.Equal(t, 1.0, *te.LRScale)
	assert.Equal(t, "lierla", te.LoRATargets().Preset)
	p, err = ParsePreset([]byte("network: {text_encoder: {targets: mlp, rank: 2, lr_scale: 0.5}}\n"+base), "p.yaml")
	require.NoError(t, err)
	assert.Equal(t, "none", p.Network.TextEncoder.LoRATargets().Preset)
	assert.Equal(t, "mlp", p.Network.TextEncoder.LoRATargets().Selectors[0].Match)
	p, err = ParsePreset([]byte(base), "p.yaml")
	require.NoError(t, err)
	assert.False(t, p.Network.TextEncoder.Enabled(), "off by default")
	for _, c := range []struct{ yaml, want string }{
		{"network: {targets: none}\n", "network.targets: none trains no UNet module"},
		{"network: {text_encoder: {targets: ff}}\n", `network.text_encoder.targets: invalid value "ff"`},
		{"network: {text_encoder: {rank: 4}}\n", "network.text_encoder: rank, alpha or lr_scale without targets"},
		{"network: {text_encoder: {targets: lierla, alpha: -1}}\n", "network.text_encoder.alpha: invalid value -1"},
		{"network: {text_encoder: {targets: lierla, lr_scale: -1}}\n", "network.text_encoder.lr_scale: invalid value -1"},
	} {
		t.Run(c.want, func(t *testing.T) {
			_, err := ParsePreset([]byte(c.yaml+base), "p.yaml")
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}
