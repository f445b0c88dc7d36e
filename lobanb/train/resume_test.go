package train

import (
	"bytes"
	"maps"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/safetensors"
)

// trainIn trains p in out to the end and returns the LoRA's bytes and the run's log.
func trainIn(t *testing.T, p *slider.Preset, out string) ([]byte, string) {
	t.Helper()
	_, data, log := trainRun(t, p, out)
	return data, log
}

// trainRun is trainIn that also returns the (finished) run.
func trainRun(t *testing.T, p *slider.Preset, out string) (*Run, []byte, string) {
	t.Helper()
	var log bytes.Buffer
	run, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t), Log: &log})
	require.NoError(t, err)
	res, err := run.Train()
	require.NoError(t, err)
	data, err := os.ReadFile(res.LoRAPath)
	require.NoError(t, err)
	return run, data, log.String()
}

// TestResumeExtendsSteps (issue 15 acceptance 3): a finished 2-step run re-run with train.steps = 4
// continues from step 2, and with a constant learning rate its LoRA is byte-identical to a single
// 4-step run's.
func TestResumeExtendsSteps(t *testing.T) {
	out := t.TempDir()
	p := tinyPreset(t, 2)
	require.Equal(t, ScheduleConstant, p.Train.LRScheduler)
	trainIn(t, p, out)

	p4 := tinyPreset(t, 4)
	p4.Model.NameOrPath = p.Model.NameOrPath
	extended, log := trainIn(t, p4, out)
	require.Contains(t, log, "resuming from step 2 of 4")
	require.Contains(t, log, "extending the run from train.steps = 2 to 4")
	pts, err := rundir.Dir(out).ReadLoss()
	require.NoError(t, err)
	require.Len(t, pts, 4)

	single, _ := trainIn(t, p4, t.TempDir())
	require.Equal(t, single, extended, "an extended constant-LR run equals a single run of the larger step count")
}

// TestResumeExtendDecayingSchedule: with a cosine schedule extending says what it does to the
// schedule (the steps done followed the shorter curve).
func TestResumeExtendDecayingSchedule(t *testing.T) {
	out := t.TempDir()
	p := tinyPreset(t, 2)
	p.Train.LRScheduler = ScheduleCosine
	trainIn(t, p, out)
	p4 := tinyPreset(t, 4)
	p4.Model.NameOrPath, p4.Train.LRScheduler = p.Model.NameOrPath, ScheduleCosine
	_, log := trainIn(t, p4, out)
	require.Contains(t, log, "train.lr_scheduler cosine depends on train.steps")
	require.Contains(t, log, "differs from one trained for 4 steps at once")
}

// TestResumeRefusesChangedFunction: a re-run whose preset changes the trained function is refused
// before any model loads (a model path that does not exist is never opened), naming the keys.
func TestResumeRefusesChangedFunction(t *testing.T) {
	out := t.TempDir()
	p := tinyPreset(t, 1)
	trainIn(t, p, out)

	q := tinyPreset(t, 1)
	q.Network.Rank = p.Network.Rank * 2
	q.Prompts[0].Target = "a blue ball"
	q.Model.NameOrPath = filepath.Join(t.TempDir(), "no-such-model")
	_, err := setup(q, Options{OutDir: out, Backend: testutil.Backend(t)})
	require.Error(t, err)
	for _, want := range []string{"network.rank", "prompts.0.target", "model.name_or_path", "another --out"} {
		require.Contains(t, err.Error(), want)
	}
	require.NotContains(t, err.Error(), "no such file")

	// Fewer steps than the checkpoint reached: refused too.
	r := tinyPreset(t, 1)
	r.Model.NameOrPath = p.Model.NameOrPath
	trainIn(t, withSteps(r, 3), out)
	two := withSteps(tinyPreset(t, 2), 2)
	two.Model.NameOrPath = p.Model.NameOrPath
	_, err = setup(two, Options{OutDir: out, Backend: testutil.Backend(t)})
	require.ErrorContains(t, err, "past train.steps = 2")
}

func withSteps(p *slider.Preset, steps int) *slider.Preset {
	p.Train.Steps = steps
	return p
}

// TestResumeFallsBackPastBadCheckpoints (issue 15 item 5): of three checkpoints, the newest truncated
// and the one before holding NaN, a re-run sets both aside, says so, resumes from step 1 and ends with
// the LoRA of an uninterrupted run.
func TestResumeFallsBackPastBadCheckpoints(t *testing.T) {
	model := tinyPreset(t, 1).Model.NameOrPath
	preset := func() *slider.Preset {
		p := tinyPreset(t, 3)
		p.Train.CheckpointEvery, p.Model.NameOrPath = 1, model
		return p
	}
	want, _ := trainIn(t, preset(), t.TempDir())

	out := t.TempDir()
	trainIn(t, preset(), out)
	root := rundir.Dir(out).Checkpoints()
	all, err := ListCheckpoints(root)
	require.NoError(t, err)
	require.Len(t, all, 3)
	require.NoError(t, os.Truncate(filepath.Join(all[2], ckptTensors), 100))
	poisonCheckpoint(t, all[1])

	_, log := trainIn(t, preset(), out)
	require.Contains(t, log, "set aside as "+filepath.Join(root, "corrupt-step-00000003"))
	require.Contains(t, log, "set aside as "+filepath.Join(root, "corrupt-step-00000002"))
	require.Contains(t, log, "not finite")
	require.Contains(t, log, "resuming from step 1 of 3")
	got, err := os.ReadFile(rundir.Dir(out).LoRA())
	require.NoError(t, err)
	require.Equal(t, want, got, "resumed from the last good checkpoint: the LoRA of an uninterrupted run")
	pts, err := rundir.Dir(out).ReadLoss()
	require.NoError(t, err)
	require.Len(t, pts, 3)
}

// poisonCheckpoint rewrites a checkpoint's tensors with a NaN in the first value of one of them.
func poisonCheckpoint(t *testing.T, dir string) {
	t.Helper()
	file := filepath.Join(dir, ckptTensors)
	ts, err := safetensors.ReadTensors(file, 0)
	require.NoError(t, err)
	for k, v := range ts {
		if v.DType() == dtypes.Float32 {
			buf := tensors.MustCopyFlatData[float32](v)
			buf[0] = float32(math.NaN())
			ts[k] = tensors.FromFlatDataAndDimensions(buf, v.Shape().Dimensions...)
			break
		}
	}
	require.NoError(t, safetensors.Write(file, ts, map[string]string{"format": "loba-checkpoint"}))
}

// TestSaveEvery: train.save_every writes a loadable LoRA every N steps (lora-step-NNNNNN.safetensors);
// the last is the final LoRA.
func TestSaveEvery(t *testing.T) {
	out := t.TempDir()
	p := tinyPreset(t, 4)
	p.Train.SaveEvery = 2
	final, _ := trainIn(t, p, out)
	d := rundir.Dir(out)
	at4, err := os.ReadFile(d.LoRAStep(4))
	require.NoError(t, err)
	require.Equal(t, final, at4)
	f, err := safetensors.Open(d.LoRAStep(2))
	require.NoError(t, err)
	defer f.Close()
	require.Equal(t, "2", f.Metadata()["loba_steps"])
}

// TestResumeIgnoresNewDefaultKeys: a checkpoint written before a setting existed (its key absent)
// resumes when the setting is at its default, and not when it is set.
func TestResumeIgnoresNewDefaultKeys(t *testing.T) {
	p := tinyPreset(t, 1)
	now, err := trainedFunction(p)
	require.NoError(t, err)
	was := maps.Clone(now)
	delete(was, "style_stats")
	delete(was, "concept_mask.enabled")
	c := &Checkpoint{Dir: "ckpt/step-00000001", Function: was}
	require.NoError(t, c.compatible(now, p))
	p.ConceptMask.Enabled = true
	now, err = trainedFunction(p)
	require.NoError(t, err)
	require.ErrorContains(t, c.compatible(now, p), "concept_mask.enabled: (unset) → true")
}
