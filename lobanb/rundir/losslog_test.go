package rundir

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadLoss(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "loss.csv")
	require.NoError(t, os.WriteFile(good, []byte("step,loss,lr,seconds\n1,0.5,0.001,0.1\n2,0.25,0.001,0.2\n"), 0o644))
	pts, err := ReadLossFile(good)
	require.NoError(t, err)
	require.Equal(t, []LossPoint{{1, 0.5, 0.001, 0.1}, {2, 0.25, 0.001, 0.2}}, pts)
	toy := filepath.Join(dir, "toy.csv") // the base trainer's columns
	require.NoError(t, os.WriteFile(toy, []byte("step,loss,seconds\n7,0.1,3\n"), 0o644))
	pts, err = ReadLossFile(toy)
	require.NoError(t, err)
	require.Equal(t, []LossPoint{{Step: 7, Loss: 0.1, Seconds: 3}}, pts)
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("step,loss\n1,0.5\n2,zz\n"), 0o644))
	_, err = ReadLossFile(bad)
	require.ErrorContains(t, err, "bad.csv line 3")
	require.ErrorContains(t, err, `"zz"`)
	noHeader := filepath.Join(dir, "nohdr.csv")
	require.NoError(t, os.WriteFile(noHeader, []byte("1,0.5\n"), 0o644))
	_, err = ReadLossFile(noHeader)
	require.ErrorContains(t, err, "no step column")
}

// TestLossLogResume: a resumed run keeps the header and the rows up to its checkpoint, appends
// after them, and a new folder's log starts with the header.
func TestLossLogResume(t *testing.T) {
	d := Dir(t.TempDir())
	l, err := d.OpenLossLog(0)
	require.NoError(t, err)
	for step := 1; step <= 4; step++ {
		l.Append(step, float32(step)/10, 0.001, float64(step))
	}
	require.NoError(t, l.Close())
	l, err = d.OpenLossLog(2) // resumed from the checkpoint at step 2
	require.NoError(t, err)
	l.Append(3, 0.125, 0.001, 3)
	require.NoError(t, l.Close())
	data, err := os.ReadFile(d.LossLog())
	require.NoError(t, err)
	require.Equal(t, "step,loss,lr,seconds\n1,0.1,0.001,1.000\n2,0.2,0.001,2.000\n3,0.125,0.001,3.000\n", string(data))
	pts, err := d.ReadLoss()
	require.NoError(t, err)
	require.Len(t, pts, 3)
}

func TestDirPaths(t *testing.T) {
	d := Dir("runs/x")
	require.Equal(t, filepath.Join("runs", "x", "cache", "conditioning.safetensors"), d.CondCache())
	require.Equal(t, filepath.Join("runs", "x", "samples", "step-000012.png"), d.Sample(12))
	require.Equal(t, "", Dir(t.TempDir()).LatestSample())
	tmp := Dir(t.TempDir())
	for _, step := range []int{9, 10, 100} {
		require.NoError(t, os.MkdirAll(filepath.Dir(tmp.Sample(step)), 0o755))
		require.NoError(t, os.WriteFile(tmp.Sample(step), nil, 0o644))
	}
	require.Equal(t, tmp.Sample(100), tmp.LatestSample())
	_, err := tmp.LoadPreset()
	require.ErrorContains(t, err, "preset.yaml")
}

// TestLossLogHeaderRepair: a loss.csv left empty (a run killed before its first step) or without its
// header (two runs in one folder) gets the header back, and a later reader parses it.
func TestLossLogHeaderRepair(t *testing.T) {
	for name, content := range map[string]string{
		"empty":          "",
		"headerless":     "1,0.5,0.001,1.000\n2,0.25,0.001,2.000\n",
		"garbage header": "\x00\x00\n1,0.5,0.001,1.000\n",
	} {
		t.Run(name, func(t *testing.T) {
			d := Dir(t.TempDir())
			require.NoError(t, os.WriteFile(d.LossLog(), []byte(content), 0o644))
			l, err := d.OpenLossLog(1)
			require.NoError(t, err)
			l.Append(2, 0.125, 0.001, 2)
			require.NoError(t, l.Close())
			pts, err := d.ReadLoss()
			require.NoError(t, err)
			require.NotEmpty(t, pts)
			require.Equal(t, 2, pts[len(pts)-1].Step)
			data, err := os.ReadFile(d.LossLog())
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(string(data), lossHeader+"\n"), "%q", data)
		})
	}
	// Opened and never appended to (killed before the first step): the header is on disk already.
	d := Dir(t.TempDir())
	l, err := d.OpenLossLog(0)
	require.NoError(t, err)
	data, err := os.ReadFile(d.LossLog())
	require.NoError(t, err)
	require.Equal(t, lossHeader+"\n", string(data))
	require.NoError(t, l.Close())
}

// TestLockReentrantInProcess: this process may take its own folder's lock again (and releases it
// hold by hold); the lock file names its PID.
func TestLockReentrantInProcess(t *testing.T) {
	d := Dir(t.TempDir())
	r1, err := d.Lock()
	require.NoError(t, err)
	r2, err := d.Lock()
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(string(d), LockFile))
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(os.Getpid()), strings.TrimSpace(string(b)))
	r2()
	r1()
	r3, err := d.Lock()
	require.NoError(t, err)
	r3()
}

// TestLossLogCutRow: a row cut short by a kill (no newline, or too few columns) is left out by
// ReadLoss before the resume and dropped by it, even where its digits would parse as an old step.
func TestLossLogCutRow(t *testing.T) {
	d := Dir(t.TempDir())
	full := lossHeader + "\n1,0.5,0.001,1.000\n2,0.25,0.001,2.000\n"
	require.NoError(t, os.WriteFile(d.LossLog(), []byte(full+"1"), 0o644))
	pts, err := d.ReadLoss()
	require.NoError(t, err)
	require.Len(t, pts, 2)
	require.NoError(t, os.WriteFile(d.LossLog(), []byte(full+"1\n3,0.1"), 0o644))
	l, err := d.OpenLossLog(2)
	require.NoError(t, err)
	l.Append(3, 0.125, 0.001, 3)
	require.NoError(t, l.Close())
	data, err := os.ReadFile(d.LossLog())
	require.NoError(t, err)
	require.Equal(t, full+"3,0.125,0.001,3.000\n", string(data))
}
