package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/killpoint"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/lobanb/train"
	"github.com/loba-dev/loba/models/safetensors"
)

// killPreset is a short toy-world run that passes every kill point: conditioning cache, steps,
// checkpoints every 2 steps, a LoRA every 3 (train.save_every), the final LoRA and the evaluation.
const killPreset = `objective: slider
max_denoising_steps: 2
targets:
  - target_class: a shape
    positive: a large shape
    negative: a small shape
network: {targets: lierla, rank: 2, alpha: 2}
train: {steps: 6, lr: 1.0e-3, resolution: 32, seed: 3, checkpoint_every: 2, save_every: 3}
eval:
  kind: slider
  target: area
  prompts: [a red circle on a white background]
  seeds: [0]
  strengths: [-1, 0, 1]
  steps: 2
`

// TestKillAnywhere (issue 15 acceptance 1): a real `loba train` process is killed with SIGKILL at
// each point a run writes or computes — before the first step, mid-run, inside a checkpoint, inside
// the LoRA writes, inside the evaluation — and at three instants from outside, then run again. Every file in the folder parses right after
// the kill and after the re-run, no temporary file is left, and the final LoRA is byte-identical to
// an uninterrupted run's.
func TestKillAnywhere(t *testing.T) {
	testutil.Backend(t)
	dir := t.TempDir()
	preset := filepath.Join(dir, "kill.yaml")
	require.NoError(t, os.WriteFile(preset, []byte(killPreset), 0o644))
	ref := filepath.Join(dir, "ref")
	code, _, stderr := runCLI("train", preset, "--out", ref, "--quiet")
	require.Equal(t, 0, code, stderr)
	want, err := os.ReadFile(filepath.Join(ref, rundir.LoRAFile))
	require.NoError(t, err)
	checkRunFolder(t, ref, true)

	for _, point := range []string{
		"write:preset.yaml",              // the run's preset, written under the lock
		"write:conditioning.safetensors", // the conditioning cache
		"step:1",                         // before the first step
		"checkpoint:1",                   // the first checkpoint written, not yet in place
		"step:4",                         // mid-run, after the checkpoint of step 2
		"step:6",                         // before the last step
		"write:state.safetensors:2",      // inside the second checkpoint's tensors
		"checkpoint:3",                   // the third checkpoint written, not yet in place
		"write:lora-step-000003.safetensors",
		"write:lora.safetensors", // inside the final LoRA write
		"eval:2",                 // during the evaluation
		"write:eval.json",
		"write:grid.png",
		"after:1.2s", "after:2.0s", "after:2.6s", // from outside, at whatever instant that is
	} {
		t.Run(strings.ReplaceAll(point, ":", "_"), func(t *testing.T) {
			out := filepath.Join(dir, strings.NewReplacer(":", "_", ".", "_").Replace(point))
			if d, ok := strings.CutPrefix(point, "after:"); ok {
				killAfter(t, d, preset, out)
			} else {
				killedAt(t, point, preset, out)
			}
			checkRunFolder(t, out, false)
			code, _, stderr := runCLI("train", preset, "--out", out, "--quiet")
			require.Equal(t, 0, code, stderr)
			checkRunFolder(t, out, true)
			got, err := os.ReadFile(filepath.Join(out, rundir.LoRAFile))
			require.NoError(t, err)
			require.Equal(t, want, got, "killed at %s and run again: the LoRA of an uninterrupted run", point)
			require.FileExists(t, filepath.Join(out, rundir.EvalFile))
		})
	}
}

// killedAt runs `loba train` in a child process that kills itself at the kill point, and checks that
// it died of SIGKILL.
func killedAt(t *testing.T, point, preset, out string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOBA_TEST_CLI=1", killpoint.Env+"="+point,
		"LOBA_TEST_ARGS="+strings.Join([]string{"train", preset, "--out", out, "--quiet"}, "\x1f"))
	var childErr bytes.Buffer
	cmd.Stderr = &childErr
	err := cmd.Run()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "the run was not killed at %s: %v %s", point, err, childErr.String())
	ws, ok := exit.Sys().(syscall.WaitStatus)
	require.True(t, ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL, "killed at %s: %v %s", point, err, childErr.String())
}

// killAfter starts `loba train` in a child process and sends it SIGKILL after the delay (a Go
// duration), unless it finished before.
func killAfter(t *testing.T, delay, preset, out string) {
	t.Helper()
	d, err := time.ParseDuration(delay)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOBA_TEST_CLI=1",
		"LOBA_TEST_ARGS="+strings.Join([]string{"train", preset, "--out", out, "--quiet"}, "\x1f"))
	require.NoError(t, cmd.Start())
	timer := time.AfterFunc(d, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
	err = cmd.Wait()
	if timer.Stop() {
		t.Logf("the run finished before %s: nothing was killed", delay)
		require.NoError(t, err)
	}
}

// checkRunFolder checks that every file in a run folder parses as what its name says. A finished
// folder has no temporary file left and a LoRA.
func checkRunFolder(t *testing.T, dir string, finished bool) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if strings.Contains(name, ".tmp-") {
			require.False(t, finished, "a temporary file is left after the re-run: %s", path)
			return filepath.SkipDir // an interrupted write's leftover: the next run cleans it
		}
		if d.IsDir() {
			if strings.HasPrefix(name, "step-") {
				_, err := train.LoadCheckpoint(path)
				require.NoError(t, err, "checkpoint %s", path)
				return filepath.SkipDir
			}
			return nil
		}
		checkFile(t, path)
		return nil
	})
	require.NoError(t, err)
	if finished {
		require.FileExists(t, filepath.Join(dir, rundir.LoRAFile))
	}
}

// checkFile parses one file of a run folder by its extension.
func checkFile(t *testing.T, path string) {
	t.Helper()
	switch filepath.Ext(path) {
	case ".safetensors":
		_, err := safetensors.ReadTensors(path, 0)
		require.NoError(t, err, path)
	case ".json":
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		require.True(t, json.Valid(data), "%s is not valid JSON", path)
	case ".png":
		f, err := os.Open(path)
		require.NoError(t, err)
		defer f.Close()
		_, err = png.Decode(f)
		require.NoError(t, err, path)
	case ".csv":
		_, err := rundir.ReadLossFile(path)
		require.NoError(t, err, path)
	case ".yaml":
		_, _, err := slider.Load(path)
		require.NoError(t, err, path)
	case ".lock":
		require.Equal(t, rundir.LockFile, filepath.Base(path), "unexpected file %s", path)
	default:
		t.Errorf("unexpected file %s", path)
	}
}
