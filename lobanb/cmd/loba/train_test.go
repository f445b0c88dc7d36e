package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures/tinypipe"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/lobanb/train"
	"github.com/loba-dev/loba/models/safetensors"
)

// TestMain lets a test re-run this binary as the `loba` command (LOBA_TEST_CLI=1), so a real
// process can be killed with SIGKILL in the middle of a run.
func TestMain(m *testing.M) {
	if os.Getenv("LOBA_TEST_CLI") == "1" {
		os.Exit(run(strings.Split(os.Getenv("LOBA_TEST_ARGS"), "\x1f"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// writePreset writes a small LOBA preset on a tiny fixture pipeline and returns its path.
func writePreset(t *testing.T, dir, extra string) string {
	t.Helper()
	tp := tinypipe.First(t, false)
	yaml := fmt.Sprintf(`model:
  name_or_path: %s
objective: leco
mode: leco
max_denoising_steps: 4
network:
  targets: lierla
  rank: 4
  alpha: 1
train:
  steps: 8
  lr: 0.001
  seed: 11
  resolution: 16
  checkpoint_every: 2
prompts:
  - target: a red cube
    action: erase
%s`, tp.Dir, extra)
	path := filepath.Join(dir, "preset.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o644))
	return path
}

// writeToyPreset writes a short slider preset on the toy world's base model (the model its eval
// section measures), with eval appended, and returns its path.
func writeToyPreset(t *testing.T, dir, eval string) string {
	t.Helper()
	path := filepath.Join(dir, "toy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`objective: slider
max_denoising_steps: 2
targets:
  - {target_class: a shape, positive: a large shape, negative: a small shape}
network: {targets: lierla, rank: 2, alpha: 2}
train: {steps: 2, lr: 1.0e-3, resolution: 32, seed: 3, checkpoint_every: 2}
`+eval), 0o644))
	return path
}

func runCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestTrainCommand: `loba train PRESET --out DIR` writes the LoRA, the loss log and checkpoints.
func TestTrainCommand(t *testing.T) {
	testutil.Backend(t)
	dir := t.TempDir()
	preset := writePreset(t, dir, "")
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runCLI("train", preset, "--out", out, "--quiet")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "lora.safetensors")
	csv, err := os.ReadFile(filepath.Join(out, "loss.csv"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	require.Equal(t, "step,loss,lr,seconds", lines[0])
	require.Len(t, lines, 9)
	ckpts, err := train.ListCheckpoints(filepath.Join(out, "checkpoints"))
	require.NoError(t, err)
	require.NotEmpty(t, ckpts)
	f, err := safetensors.Open(filepath.Join(out, "lora.safetensors"))
	require.NoError(t, err)
	defer f.Close()
	md := f.Metadata()
	require.Equal(t, "networks.lora", md["ss_network_module"])
	require.Equal(t, "4", md["ss_network_dim"])
	require.Contains(t, md["loba_preset"], "a red cube")
	var alphas int
	for _, n := range f.Names() {
		if strings.HasSuffix(n, ".alpha") {
			info, _ := f.Info(n)
			require.Empty(t, info.Shape, "alpha must be 0-d")
			alphas++
		}
	}
	require.Positive(t, alphas)
}

// TestTrainBadPresets: a typo'd key and a NaN-producing learning rate each fail with a clear message;
// the NaN run keeps its last good checkpoint.
func TestTrainBadPresets(t *testing.T) {
	testutil.Backend(t)
	dir := t.TempDir()
	preset := writePreset(t, dir, "")
	data, err := os.ReadFile(preset)
	require.NoError(t, err)
	typo := filepath.Join(dir, "typo.yaml")
	require.NoError(t, os.WriteFile(typo, []byte(strings.Replace(string(data), "  lr: 0.001", "  lerning_rate: 0.001", 1)), 0o644))
	code, _, stderr := runCLI("train", typo, "--out", filepath.Join(dir, "typo-out"), "--quiet")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "lerning_rate")
	require.Contains(t, stderr, "typo.yaml")
	require.Contains(t, stderr, "lr") // the valid keys are listed

	nan := filepath.Join(dir, "nan.yaml")
	require.NoError(t, os.WriteFile(nan, []byte(strings.Replace(strings.Replace(string(data), "  lr: 0.001", "  lr: 1.0e+30", 1),
		"checkpoint_every: 2", "checkpoint_every: 1", 1)), 0o644))
	out := filepath.Join(dir, "nan-out")
	code, _, stderr = runCLI("train", nan, "--out", out, "--quiet")
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "not finite")
	require.Contains(t, stderr, "learning rate")
	ckpts, err := train.ListCheckpoints(filepath.Join(out, "checkpoints"))
	require.NoError(t, err)
	require.NotEmpty(t, ckpts, "the last good checkpoint is kept")
	c, err := train.LoadCheckpoint(ckpts[len(ckpts)-1])
	require.NoError(t, err)
	for k, v := range c.Variables {
		for _, x := range mustFloats(t, v) {
			require.False(t, x != x || x > 1e38 || x < -1e38, "checkpoint value of %s is not finite", k)
		}
	}
	require.NoFileExists(t, filepath.Join(out, "lora.safetensors"))
}

// TestTrainKillResume: a run killed with SIGKILL after a checkpoint and then resumed ends with
// adapter weights bit-identical to an uninterrupted run with the same seed.
func TestTrainKillResume(t *testing.T) {
	testutil.Backend(t)
	dir := t.TempDir()
	preset := writePreset(t, dir, "")
	full := filepath.Join(dir, "full")
	code, _, stderr := runCLI("train", preset, "--out", full, "--quiet")
	require.Equal(t, 0, code, stderr)

	killed := filepath.Join(dir, "killed")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOBA_TEST_CLI=1", "LOBA_TEST_ARGS="+strings.Join([]string{"train", preset, "--out", killed, "--quiet"}, "\x1f"))
	var childErr bytes.Buffer
	cmd.Stderr = &childErr
	require.NoError(t, cmd.Start())
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ckpts, _ := train.ListCheckpoints(filepath.Join(killed, "checkpoints"))
		if len(ckpts) > 0 && strings.HasSuffix(ckpts[len(ckpts)-1], "00000004") {
			break
		}
		require.True(t, time.Now().Before(deadline), "no checkpoint at step 4: %s", childErr.String())
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	require.NoFileExists(t, filepath.Join(killed, "lora.safetensors"), "the run must have been killed before the end")

	code, _, stderr = runCLI("train", preset, "--out", killed, "--quiet")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "resuming from step")

	a, err := safetensors.ReadTensors(filepath.Join(full, "lora.safetensors"), 0)
	require.NoError(t, err)
	b, err := safetensors.ReadTensors(filepath.Join(killed, "lora.safetensors"), 0)
	require.NoError(t, err)
	require.Equal(t, len(a), len(b))
	for k, ta := range a {
		tb, ok := b[k]
		require.True(t, ok, k)
		require.Equal(t, ta.Shape(), tb.Shape(), k)
		require.Equal(t, tensorBytes(t, ta), tensorBytes(t, tb), "%s differs after kill and resume", k)
	}
	fa, err := os.ReadFile(filepath.Join(full, "lora.safetensors"))
	require.NoError(t, err)
	fb, err := os.ReadFile(filepath.Join(killed, "lora.safetensors"))
	require.NoError(t, err)
	require.Equal(t, fa, fb, "same preset and seed: byte-identical lora.safetensors")
	la, err := os.ReadFile(filepath.Join(full, "loss.csv"))
	require.NoError(t, err)
	lb, err := os.ReadFile(filepath.Join(killed, "loss.csv"))
	require.NoError(t, err)
	require.Equal(t, lossColumn(string(la)), lossColumn(string(lb)), "the resumed run logs the same losses")
}

// lossColumn keeps step and loss of a loss.csv (seconds differ between runs).
func lossColumn(csv string) []string {
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(csv), "\n") {
		f := strings.Split(line, ",")
		out = append(out, f[0]+","+f[1])
	}
	return out
}

func tensorBytes(t *testing.T, x *tensors.Tensor) []byte {
	var out []byte
	require.NoError(t, x.ConstBytes(func(b []byte) { out = append([]byte(nil), b...) }))
	return out
}

func mustFloats(t *testing.T, x *tensors.Tensor) []float32 {
	t.Helper()
	x32, err := x.LocalClone()
	require.NoError(t, err)
	if x32.DType() != dtypes.Float32 {
		t.Fatalf("checkpoint tensor dtype %s, want float32", x32.DType())
	}
	return tensors.MustCopyFlatData[float32](x32)
}

// TestEvalCommand: `loba eval PRESET --lora F --out DIR` prints and writes the preset's evaluation.
func TestEvalCommand(t *testing.T) {
	testutil.Backend(t)
	dir := t.TempDir()
	preset := writeToyPreset(t, dir, `eval:
  kind: slider
  target: area
  prompts: [a red circle on a white background]
  seeds: [0]
  strengths: [-1, 0, 1]
  steps: 2
`)
	// --no-eval: the LoRA without the evaluation.
	out := filepath.Join(dir, "noeval")
	code, _, stderr := runCLI("train", preset, "--out", out, "--quiet", "--steps", "1", "--no-eval")
	require.Equal(t, 0, code, stderr)
	require.FileExists(t, filepath.Join(out, "lora.safetensors"))
	require.NoFileExists(t, filepath.Join(out, "eval.json"))

	out = filepath.Join(dir, "out")
	code, _, stderr = runCLI("train", preset, "--out", out, "--quiet", "--steps", "1")
	require.Equal(t, 0, code, stderr)
	require.FileExists(t, filepath.Join(out, "eval.json"))
	evalDir := filepath.Join(dir, "eval")
	code, stdout, stderr := runCLI("eval", preset, "--lora", filepath.Join(out, "lora.safetensors"), "--out", evalDir)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "effect_spearman")
	require.FileExists(t, filepath.Join(evalDir, "grid.png"))
	code, _, stderr = runCLI("eval", preset, "--out", evalDir)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--lora")
}

// TestTrainFolderLocked: a second `loba train` on a folder where a run is training exits 1 at once,
// naming the first's PID; the first finishes unharmed.
func TestTrainFolderLocked(t *testing.T) {
	testutil.Backend(t)
	dir := t.TempDir()
	preset := writePreset(t, dir, "")
	out := filepath.Join(dir, "run")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOBA_TEST_CLI=1", "LOBA_TEST_ARGS="+strings.Join([]string{"train", preset, "--out", out, "--quiet", "--steps", "40"}, "\x1f"))
	var childErr bytes.Buffer
	cmd.Stderr = &childErr
	require.NoError(t, cmd.Start())
	deadline := time.Now().Add(5 * time.Minute)
	for { // the first run holds the folder once it logs its first step
		if b, err := os.ReadFile(filepath.Join(out, "loss.csv")); err == nil && strings.Count(string(b), "\n") >= 2 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the first run did not start: %s", childErr.String())
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	code, _, stderr := runCLI("train", preset, "--out", out, "--quiet", "--steps", "40")
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, fmt.Sprintf("process %d", cmd.Process.Pid))
	require.Less(t, time.Since(start), time.Minute, "refused at once, without training")
	require.NoError(t, cmd.Wait(), childErr.String())
	require.FileExists(t, filepath.Join(out, "lora.safetensors"))
	ckpts, err := train.ListCheckpoints(filepath.Join(out, "checkpoints"))
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(ckpts[len(ckpts)-1], "00000040"), "the first run finished: %v", ckpts)
}
