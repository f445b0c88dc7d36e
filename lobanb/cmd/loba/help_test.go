package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHelpExitsZero: -h/--help is asked for, not an error: every command exits 0 with its usage,
// toyworld's included.
func TestHelpExitsZero(t *testing.T) {
	for _, cmd := range []string{"inspect", "plan", "train", "sample", "eval", "toyworld", "doctor"} {
		for _, h := range []string{"-h", "--help"} {
			var stdout, stderr bytes.Buffer
			code := run([]string{cmd, h}, &stdout, &stderr)
			require.Equal(t, 0, code, "loba %s %s: %s", cmd, h, stderr.String())
			require.NotContains(t, stderr.String(), "unknown subcommand")
			require.Contains(t, strings.ToLower(stdout.String()+stderr.String()), "usage", "loba %s %s", cmd, h)
		}
	}
}

// TestVersion: loba --version names the build.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"--version", "version"} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 0, run([]string{arg}, &stdout, &stderr))
		require.True(t, strings.HasPrefix(stdout.String(), "loba "), stdout.String())
	}
}

// TestNegativeStepsRejected: --steps -3 is an error, not silently ignored.
func TestNegativeStepsRejected(t *testing.T) {
	preset := writePreset(t, t.TempDir(), "")
	var stdout, stderr bytes.Buffer
	code := run([]string{"train", "--steps", "-3", preset}, &stdout, &stderr)
	require.Equal(t, 2, code)
	require.Contains(t, stderr.String(), "--steps -3")
}
