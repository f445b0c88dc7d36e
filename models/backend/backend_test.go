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

// TestNewGo: GOMLX_BACKEND=go gives the Go backend, the same one to every caller (one per process);
// a name gomlx does not know is an error that names it.
func TestNewGo(t *testing.T) {
	t.Setenv(EnvBackend, "go")
	t.Setenv(EnvNoAutoInstall, "1")
	b, err := New()
	require.NoError(t, err)
	require.Equal(t, "go", b.String())
	again, err := New()
	require.NoError(t, err)
	require.Same(t, b, again)
	s, err := Open()
	require.NoError(t, err)
	require.Same(t, b, s.Backend)
	require.Contains(t, s.Line(), "go (pure Go, ")
	require.Contains(t, s.Line(), "GOMLX_BACKEND=go")
	t.Setenv(EnvBackend, "nope")
	_, err = New()
	require.ErrorContains(t, err, "nope")
}

// TestDescribeGo: the Go backend's account names its SIMD kernels (or why there are none).
func TestDescribeGo(t *testing.T) {
	t.Setenv(EnvBackend, "go")
	b, err := New()
	require.NoError(t, err)
	d := Describe(b)
	require.Regexp(t, `^go \(pure Go, (AVX-512|AVX2|no .*)\)$`, d)
	if SIMDEnabled {
		require.NotContains(t, d, "built without GOEXPERIMENT=simd")
	} else {
		require.Contains(t, d, "built without GOEXPERIMENT=simd")
	}
	require.Equal(t, "none", Describe(nil))
}
