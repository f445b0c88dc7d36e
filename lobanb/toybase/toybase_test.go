package toybase

import (
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/toyworld"
)

// TestInitTrainResumeCheck: a fresh toy model folder loads as a pipeline, trains a few steps,
// resumes from its checkpoint, and Check scores images generated from it.
func TestInitTrainResumeCheck(t *testing.T) {
	backend := testutil.Backend(t)
	dir := filepath.Join(t.TempDir(), "toy")
	o := TrainOptions{Dir: dir, Steps: 2, BatchSize: 4, Seed: 1, EMADecay: 0.99, CheckpointEvery: 2, Backend: backend}
	require.NoError(t, Train(o))
	o.Steps = 3
	require.NoError(t, Train(o)) // resumes at step 2
	csv, err := os.ReadFile(dir + ".train/loss.csv")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	require.Len(t, lines, 4, "header and steps 1, 2, 3 once each: %q", lines)
	require.True(t, strings.HasPrefix(lines[3], "3,"))
	r, err := Check(dir, CheckOptions{Samples: 4, Steps: 2, Backend: backend})
	require.NoError(t, err)
	require.Equal(t, 4, r.Samples)
	for _, acc := range []float64{r.ColorAccuracy, r.SizeAccuracy, r.ShapeAccuracy, r.BackgroundAccuracy} {
		require.GreaterOrEqual(t, acc, 0.0)
		require.LessOrEqual(t, acc, 1.0)
	}
	// Rendered scenes score perfectly: the scoring is right.
	var imgs []image.Image
	var scenes []toyworld.Scene
	rng := rand.New(rand.NewPCG(5, 5))
	for range 20 {
		s := toyworld.Sample(rng)
		scenes = append(scenes, s)
		imgs = append(imgs, toyworld.Render(s, ImageSize, ImageSize))
	}
	perfect := score(scenes, imgs)
	require.Equal(t, 1.0, perfect.ColorAccuracy)
	require.Equal(t, 1.0, perfect.SizeAccuracy)
	require.Equal(t, 1.0, perfect.ShapeAccuracy)
}
