package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/lobanb/rundir"
)

// TestTrainResumeShowsStep: a run trained to step 2 and then continued to 3 says that it resumes
// from step 2 of 3, and its progress bar starts there (the old bar started at 0).
func TestTrainResumeShowsStep(t *testing.T) {
	testutil.Backend(t)
	dir := t.TempDir()
	preset := writePreset(t, dir, "")
	out := filepath.Join(dir, "run")
	code, stdout, stderr := runCLI("train", preset, "--out", out, "--steps", "2", "--quiet")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "2 steps")
	code, stdout, stderr = runCLI("train", preset, "--out", out, "--steps", "3")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "resuming from step 2 of 3")
	first := strings.Index(stderr, "(2/3")
	require.GreaterOrEqual(t, first, 0, "the bar shows step 2 of 3: %q", stderr)
	require.NotContains(t, stderr[:first], "/3", "the bar starts at step 2: %q", stderr)
	require.Contains(t, stderr, "(3/3")
}

// longEval is an evaluation long enough (6 seeds, one sampling call each) for a Ctrl-C to land in.
const longEval = `eval:
  kind: slider
  target: area
  prompts: [a red circle on a white background]
  seeds: [0, 1, 2, 3, 4, 5]
  strengths: [-1, 0, 1]
  steps: 2
`

// interruptDuringEval runs the CLI in a child process, sends it one SIGINT once its stderr shows
// the evaluation, and returns the exit code and stderr.
func interruptDuringEval(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOBA_TEST_CLI=1", "LOBA_TEST_ARGS="+strings.Join(args, "\x1f"))
	pipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var mu sync.Mutex
	var stderr bytes.Buffer
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		_, _ = io.Copy(lockedWriter{&mu, &stderr}, pipe)
	}()
	read := func() string { mu.Lock(); defer mu.Unlock(); return stderr.String() }
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(read(), "evaluating") {
		select {
		case <-eof:
			_ = cmd.Wait()
			t.Fatalf("the process ended before its evaluation: %s", read())
		default:
		}
		require.True(t, time.Now().Before(deadline), "no evaluation: %s", read())
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	<-eof
	err = cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("the first Ctrl-C killed the process (%v): %s", err, read())
	}
	return code, read()
}

// lockedWriter writes to w under mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// TestCtrlCStopsEval: the first Ctrl-C during `loba eval` stops the evaluation (exit 1, nothing
// written) and during `loba train`'s evaluation stops it with the LoRA saved, saying how to
// evaluate later. Before, the first Ctrl-C was ignored by the evaluation (or killed loba eval).
func TestCtrlCStopsEval(t *testing.T) {
	testutil.Backend(t)
	dir := t.TempDir()
	preset := writeToyPreset(t, dir, longEval)
	out := filepath.Join(dir, "run")
	code, stderr := interruptDuringEval(t, "train", preset, "--out", out, "--steps", "1")
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "evaluation stopped")
	require.Contains(t, stderr, "the LoRA is saved")
	require.Contains(t, stderr, "loba train: stopping at the end of this step (or these images); Ctrl-C again quits at once")
	require.Contains(t, stderr, "loba eval "+preset+" --lora "+filepath.Join(out, rundir.LoRAFile))
	require.FileExists(t, filepath.Join(out, rundir.LoRAFile))
	require.NoFileExists(t, filepath.Join(out, rundir.EvalFile))

	evalDir := filepath.Join(dir, "eval")
	code, stderr = interruptDuringEval(t, "eval", preset, "--lora", filepath.Join(out, rundir.LoRAFile), "--out", evalDir)
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "evaluation stopped")
	require.Contains(t, stderr, "nothing written")
	require.Contains(t, stderr, "loba eval: stopping after the images being sampled; Ctrl-C again quits at once")
	require.NoFileExists(t, filepath.Join(evalDir, rundir.EvalFile))
	require.NoFileExists(t, filepath.Join(evalDir, rundir.GridFile))
}
