package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/lobanb/slider"
)

// TestUsageErrors: an unknown flag, a wrong argument count or an unknown command exits 2 with the
// command's usage; a value out of range exits 2 naming the flag and the value.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args      []string
		msg, used string // the message, and the usage line that follows it ("" for a value error)
	}{
		{[]string{"train", "--bogus", "preset.yaml"}, "loba train: unknown flag: --bogus", "loba train PRESET [flags]"},
		{[]string{"train", "a.yaml", "b.yaml"}, `loba train: want PRESET, got 2: ["a.yaml" "b.yaml"]`, "loba train PRESET [flags]"},
		{[]string{"inspect"}, "loba inspect: want MODEL, got none", "loba inspect MODEL [flags]"},
		{[]string{"eval", "p.yaml", "--lora"}, "loba eval: flag needs an argument: --lora", "loba eval PRESET --lora FILE [flags]"},
		{[]string{"sample", "m", "--prompt", "x", "--steps", "many"}, `invalid argument "many" for "--steps"`, "loba sample MODEL --prompt P [flags]"},
		{[]string{"toyworld", "fly"}, `loba toyworld: unknown command "fly" (want train or check)`, "loba toyworld <command>"},
		{[]string{"toyworld"}, "loba toyworld: which one: train or check?", "loba toyworld <command>"},
		{[]string{"setup", "kernel", "extra"}, "loba setup kernel: want no arguments", "loba setup kernel [flags]"},
		{[]string{"trian"}, `loba: unknown command "trian"`, "loba <command>"},
		{[]string{}, "loba: no command given", "loba <command>"},
		{[]string{"train", "--steps", "0", "p.yaml"}, "loba train: --steps 0: want a number of steps > 0", ""},
		{[]string{"sample", "m", "--prompt", "x", "--steps", "-1"}, "loba sample: --steps -1: want a number of denoising steps > 0", ""},
		{[]string{"sample", "m", "--prompt", "x", "--guidance", "-2"}, "loba sample: --guidance -2: want a finite scale > 0", ""},
		{[]string{"sample", "m", "--prompt", "x", "--lora", "f", "--strengths", "-1,x"}, `loba sample: --strengths -1,x: "x" is not a number`, ""},
		{[]string{"sample", "m", "--prompt", "x", "--strengths", "-1,1"}, "loba sample: --strengths -1,1: the strengths are those of a LoRA; give --lora FILE", ""},
		{[]string{"sample", "m"}, "loba sample: --prompt PROMPT is required", ""},
		{[]string{"eval", "p.yaml"}, "loba eval: --lora FILE is required", ""},
		{[]string{"toyworld", "train", "--batch", "0"}, "loba toyworld train: --batch 0: want a batch size > 0", ""},
		{[]string{"toyworld", "train", "--prediction", "x0"}, "loba toyworld train: --prediction x0: want v_prediction or epsilon", ""},
		{[]string{"toyworld", "train", "--shade", "0.3"}, "loba toyworld train: --shade 0.3: want a fraction in [0, 0.25] (0: pure palette colours)", ""},
		{[]string{"toyworld", "check", "dir", "--samples", "-5"}, "loba toyworld check: --samples -5: want a number of images > 0", ""},
		{[]string{"toyworld", "check", "dir", "--coupling", "-1"}, "loba toyworld check: --coupling -1: want a number of scenes >= 0", ""},
	} {
		code, stdout, stderr := runCLI(c.args...)
		require.Equal(t, 2, code, "loba %q: %s", c.args, stderr)
		require.Empty(t, stdout, "loba %q", c.args)
		require.Contains(t, stderr, c.msg, "loba %q", c.args)
		if c.used != "" {
			require.Contains(t, stderr, "Usage:\n  "+c.used, "loba %q: the command's usage follows", c.args)
		} else {
			require.Contains(t, stderr, "--help\" for usage.", "loba %q", c.args)
		}
	}
}

// flagLine is a flag's line in a help text: the flag, its value's name in capitals (or none), at
// least two spaces, its description.
var flagLine = regexp.MustCompile(`^  (-[a-z], )?    --[a-z0-9-]+( [A-Z]+)? {2,}\S|^  -h, --help {2,}\S|^  -v, --version {2,}\S`)

// TestHelpReadable: every command's -h prints on stdout, exits 0, shows no backquote, and each
// flag reads "--flag VALUE   description" (the old flag package turned a backquoted `loba eval`
// in a description into the value's name: "-no-eval loba eval").
func TestHelpReadable(t *testing.T) {
	for _, cmd := range [][]string{{}, {"train"}, {"inspect"}, {"plan"}, {"eval"}, {"sample"}, {"toyworld"},
		{"toyworld", "train"}, {"toyworld", "check"}, {"doctor"}, {"setup"}, {"setup", "kernel"}, {"setup", "cuda"}, {"version"}} {
		code, stdout, stderr := runCLI(append(cmd, "-h")...)
		require.Equal(t, 0, code, "loba %v -h: %s", cmd, stderr)
		require.Empty(t, stderr)
		require.NotContains(t, stdout, "`", "loba %v -h", cmd)
		require.Contains(t, stdout, "Usage:\n  loba", "loba %v -h", cmd)
		_, section, ok := strings.Cut(stdout, "\nFlags:\n")
		require.True(t, ok, "loba %v -h lists its flags", cmd)
		section, _, _ = strings.Cut(section, "\n\n")
		for _, l := range strings.Split(section, "\n") {
			if strings.HasPrefix(l, "  -") { // else a description's continued line
				require.Regexp(t, flagLine, l, "loba %v -h", cmd)
			}
		}
	}
	_, stdout, _ := runCLI("train", "--help")
	for _, want := range []string{"--no-eval           skip the preset's eval section", "--out DIR", "--steps N", "--cpuprofile FILE",
		"Examples:\n  loba train"} {
		require.Contains(t, stdout, want)
	}
}

// TestExpandHome: "~" and "~/…" are the home folder; other paths are left alone.
func TestExpandHome(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for in, want := range map[string]string{
		"~": home, "~/": home, "~/runs/age": filepath.Join(home, "runs", "age"),
		"runs/~": "runs/~", "~bob/x": "~bob/x", "/abs/~/x": "/abs/~/x", "org/repo": "org/repo", "": "",
	} {
		got, err := slider.ExpandHome(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	// A path flag expands when it is set, and keeps its default as it is.
	var out, model string
	f := pflag.NewFlagSet("t", pflag.ContinueOnError)
	pathFlag(f, &out, "out", "~/default", "")
	pathFlag(f, &model, "model", "", "")
	require.NoError(t, f.Parse([]string{"--model=~/models/sd15"}))
	require.Equal(t, filepath.Join(home, "models", "sd15"), model)
	require.Equal(t, "~/default", out)

	t.Setenv("HOME", "")
	_, err := slider.ExpandHome("~/x")
	require.ErrorContains(t, err, `"~/x" starts with ~ but the home folder is unknown`)
}

// TestHomePaths: `loba train ~/preset.yaml --out ~/run --cpuprofile ~/cpu.prof` reads and writes in
// the home folder, as a shell would have expanded it (a quoted "~/…" reaches loba unexpanded).
func TestHomePaths(t *testing.T) {
	testutil.Backend(t)
	home := t.TempDir()
	writePreset(t, home, "")
	t.Setenv("HOME", home)
	code, stdout, stderr := runCLI("train", "~/preset.yaml", "--out", "~/run", "--cpuprofile", "~/cpu.prof",
		"--steps", "1", "--no-eval", "--quiet")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, filepath.Join(home, "run", "lora.safetensors"))
	require.FileExists(t, filepath.Join(home, "run", "lora.safetensors"))
	info, err := os.Stat(filepath.Join(home, "cpu.prof"))
	require.NoError(t, err)
	require.Positive(t, info.Size())
	require.NoDirExists(t, "~", "no folder named ~ in the working directory")
}
