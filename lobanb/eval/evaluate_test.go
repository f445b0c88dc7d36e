package eval

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/slider"
)

// TestEvaluateProgressAndStop: Evaluate reports its images as they are sampled (0 first, then
// each seed's, up to the total known from the start), and a Stop request ends it early with
// ErrStopped, having written neither eval.json nor grid.png.
func TestEvaluateProgressAndStop(t *testing.T) {
	pipe, size := tinyPipeline(t)
	p, err := slider.ParsePreset([]byte(fmt.Sprintf(`objective: slider
targets: [{target_class: a shape, positive: a large shape, negative: a small shape}]
train: {resolution: %d}
eval:
  kind: slider
  target: area
  prompts: [a red circle, a blue square]
  seeds: [0, 1, 2]
  strengths: [-1, 0, 1]
  steps: 1
`, size)), "eval.yaml")
	require.NoError(t, err)
	var progress [][2]int
	run := rundir.Dir(filepath.Join(t.TempDir(), "full"))
	_, err = Evaluate(run, Options{Preset: p, Pipeline: pipe,
		Progress: func(done, total int) { progress = append(progress, [2]int{done, total}) }})
	require.NoError(t, err)
	require.Equal(t, [][2]int{{0, 18}, {6, 18}, {12, 18}, {18, 18}}, progress)
	require.FileExists(t, run.EvalReport())
	require.FileExists(t, run.Grid())

	progress = nil
	stopped := rundir.Dir(filepath.Join(t.TempDir(), "stopped"))
	_, err = Evaluate(stopped, Options{Preset: p, Pipeline: pipe,
		Progress: func(done, total int) { progress = append(progress, [2]int{done, total}) },
		Stop:     func() bool { return len(progress) >= 2 }, // Ctrl-C during the first seed's images
	})
	require.True(t, errors.Is(err, ErrStopped), "err = %v", err)
	require.ErrorContains(t, err, "after 6 of 18 images")
	require.Equal(t, [][2]int{{0, 18}, {6, 18}}, progress, "no image is sampled after the stop")
	require.NoFileExists(t, stopped.EvalReport())
	require.NoFileExists(t, stopped.Grid())
}
