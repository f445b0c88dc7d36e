package backend

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfig(t *testing.T) {
	for in, want := range map[string]string{
		"go":                      "go:parallelism=-1",
		"go:parallelism=2":        "go:parallelism=2",
		"go:ops_sequential":       "go:ops_sequential",
		"go:dotgeneral_small":     "go:dotgeneral_small,parallelism=-1",
		"xla:cuda":                "xla:cuda",
		"xla:/opt/plugin.so,tf32": "xla:/opt/plugin.so,tf32",
	} {
		require.Equal(t, want, Config(in), in)
	}
}

func TestNewGo(t *testing.T) {
	t.Setenv(EnvBackend, "go")
	t.Setenv("GOMLX_NO_AUTO_INSTALL", "1")
	b, err := New()
	require.NoError(t, err)
	require.Equal(t, "go", b.String())
	t.Setenv(EnvBackend, "nope")
	_, err = New()
	require.ErrorContains(t, err, "nope")
}
