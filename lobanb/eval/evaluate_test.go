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

// TestEvaluateStartNoise: eval.start_noise reaches the sampler. The tiny pipeline's adapter moves
// the images with the strength; its 2-step sampler visits t = 501 and 1, so start_noise 500 holds
// the adapter at 0 for the first step only: strengths ±1 read differently than with the adapter on
// at both steps, and strength 0 reads the same.
func TestEvaluateStartNoise(t *testing.T) {
	pipe, size := tinyPipeline(t)
	targetMeans := func(startNoise int) []float64 {
		p, err := slider.ParsePreset([]byte(fmt.Sprintf(`objective: slider
targets: [{target_class: a shape, positive: a large shape, negative: a small shape}]
train: {resolution: %d}
eval:
  kind: slider
  target: blue_minus_red
  prompts: [a red circle]
  seeds: [0]
  strengths: [-1, 0, 1]
  steps: 2
  start_noise: %d
`, size, startNoise)), "eval.yaml")
		require.NoError(t, err)
		r, err := Evaluate(rundir.Dir(t.TempDir()), Options{Preset: p, Pipeline: pipe})
		require.NoError(t, err)
		require.Len(t, r.Slider.TargetMean, 3)
		return []float64{*r.Slider.TargetMean[0], *r.Slider.TargetMean[1], *r.Slider.TargetMean[2]}
	}
	on := targetMeans(0)
	require.NotEqual(t, on[1], on[0], "the adapter changes the image at strength -1")
	require.NotEqual(t, on[1], on[2], "and at strength 1")
	late := targetMeans(500)
	require.Equal(t, on[1], late[1], "strength 0 is the same image either way")
	require.NotEqual(t, on[0], late[0], "no adapter at t = 501 with start_noise 500")
	require.NotEqual(t, on[2], late[2])
}
