package toybase

import (
	"fmt"
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
	o := TrainOptions{Dir: dir, Steps: 2, BatchSize: 4, Seed: 1, Optimizer: OptimizerOptions{EMADecay: 0.99},
		Output: OutputOptions{CheckpointEvery: 2}, Backend: backend}
	require.NoError(t, Train(o))
	o.Steps, o.Output.ExportEvery, o.Output.CheckSamples = 3, 3, 3
	require.NoError(t, Train(o)) // resumes at step 2, checks the EMA weights at step 3
	csv, err := os.ReadFile(dir + ".train/loss.csv")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	require.Len(t, lines, 4, "header and steps 1, 2, 3 once each: %q", lines)
	require.True(t, strings.HasPrefix(lines[3], "3,"))
	// The in-training check (EMA weights copied into the checker) equals a check of the exported folder.
	curve, err := os.ReadFile(dir + ".train/check.csv")
	require.NoError(t, err)
	rows := strings.Split(strings.TrimSpace(string(curve)), "\n")
	require.Len(t, rows, 2, "header and step 3: %q", rows)
	require.FileExists(t, dir+".train/checks/step-00000003.json")
	exported, err := Check(dir, CheckOptions{Samples: 3, Seed: 7, Backend: backend})
	require.NoError(t, err)
	f := strings.Split(rows[1], ",")
	require.Equal(t, "3", f[0])
	require.Equal(t, []string{fmt.Sprintf("%.4f", exported.ColorAccuracy), fmt.Sprintf("%.4f", exported.SizeAccuracy),
		fmt.Sprintf("%.4f", exported.ShapeAccuracy), fmt.Sprintf("%.4f", exported.BackgroundAccuracy), "3"}, f[2:])

	r, err := Check(dir, CheckOptions{Samples: 4, Steps: 2, Coupling: 3, Backend: backend})
	require.NoError(t, err)
	require.Equal(t, 4, r.Samples)
	require.NotNil(t, r.Coupling)
	require.Equal(t, 3, r.Coupling.Scenes)
	require.Len(t, r.Coupling.Sizes, 5, "four colour words and none")
	for color, counts := range r.Coupling.Sizes {
		n := 0
		for _, c := range counts {
			n += c
		}
		require.Equal(t, 3, n, "colour %q: one image per scene", color)
	}
	require.False(t, r.Coupling.SizeNamed)
	require.Len(t, r.Coupling.PairDiffers, 6)
	sized, err := Check(dir, CheckOptions{Samples: 1, Steps: 2, Coupling: 2, CouplingSized: true, Backend: backend})
	require.NoError(t, err)
	require.True(t, sized.Coupling.SizeNamed)
	require.Equal(t, 2, sized.Coupling.Scenes)
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
	for _, s := range scenes {
		require.Positive(t, perfect.Confusion["color"][s.Color][s.Color], "the diagonal counts %s", s.Color)
	}
	total := 0
	for _, row := range perfect.Confusion["size"] {
		for _, n := range row {
			total += n
		}
	}
	require.Equal(t, len(scenes), total)
}

// TestCheckerRefresh: a checker loaded from one model and refreshed with another model's weights
// generates exactly what a checker of the other model does.
func TestCheckerRefresh(t *testing.T) {
	backend := testutil.Backend(t)
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	require.NoError(t, Init(a, 1, "epsilon"))
	require.NoError(t, Init(b, 2, "epsilon"))
	o := CheckOptions{Samples: 2, Steps: 2, Seed: 3, Backend: backend}
	ca, err := NewChecker(a, o)
	require.NoError(t, err)
	cb, err := NewChecker(b, o)
	require.NoError(t, err)
	_, before, err := ca.generate()
	require.NoError(t, err)
	_, want, err := cb.generate()
	require.NoError(t, err)
	require.NotEqual(t, before, want, "differently seeded models generate different images")
	require.NoError(t, ca.Refresh(cb.p.Ctx, ""))
	_, got, err := ca.generate()
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.ErrorContains(t, ca.Refresh(cb.p.Ctx, "/ema"), "no weight /ema/")
}

// TestCaptionDropout: about the given fraction of training captions is empty (the unconditional
// prediction CFG and LECO need is trained), none with dropout < 0.
func TestCaptionDropout(t *testing.T) {
	count := func(dropout float64) (empty int) {
		rng := rand.New(rand.NewPCG(1, 2))
		for range 50 {
			_, captions := trainingBatch(rng, 20, dropout, 0)
			for _, c := range captions {
				if c == "" {
					empty++
				}
			}
		}
		return empty
	}
	require.InDelta(t, 100, count(0.1), 30, "1000 captions at 10%")
	require.Zero(t, count(-1))
}

// TestEmbeddedBase: the committed base model (models/toyworld/base) is embedded, extracts into a
// folder that loads like any diffusers model, and draws what it is asked for. 12 seeded samples
// (the README's figures are `loba toyworld check --samples 200`): colour and background are read
// back at least 9 times in 12 (the model: 95.5% and 100% over 200).
func TestEmbeddedBase(t *testing.T) {
	t.Setenv(toyworld.EnvModel, "")
	require.True(t, toyworld.HasBase(), "models/toyworld/base holds no model_index.json")
	dir, err := toyworld.BaseDir()
	require.NoError(t, err)
	r, err := Check(dir, CheckOptions{Samples: 12, Seed: 7, Backend: testutil.Backend(t)})
	require.NoError(t, err)
	t.Logf("embedded base, 12 samples: colour %.2f size %.2f shape %.2f background %.2f",
		r.ColorAccuracy, r.SizeAccuracy, r.ShapeAccuracy, r.BackgroundAccuracy)
	require.GreaterOrEqual(t, r.ColorAccuracy, 0.75)
	require.GreaterOrEqual(t, r.BackgroundAccuracy, 0.75)
}

// TestScoreCoupling: the coupling scores of hand-made read-outs — a scene whose colours all read
// medium, one where yellow reads large, one where only the prompt without a colour reads small.
func TestScoreCoupling(t *testing.T) {
	// [colour: red, green, blue, yellow, none][scene]
	sizes := [][]string{
		{"medium", "medium", "medium"},
		{"medium", "medium", "medium"},
		{"medium", "medium", "medium"},
		{"medium", "large", "medium"},
		{"medium", "medium", "small"},
	}
	require.Equal(t, []string{"red", "green", "blue", "yellow", ""}, couplingColors())
	r := scoreCoupling(sizes)
	require.Equal(t, 3, r.Scenes)
	require.InDelta(t, 1.0/3, r.Differs, 1e-12, "only scene 1's colours disagree")
	require.InDelta(t, 5.0/12, r.OpenDiffers, 1e-12, "scene 1: yellow; scene 2: all four against small")
	require.Equal(t, map[string]int{"medium": 2, "large": 1}, r.Sizes["yellow"])
	require.Equal(t, map[string]int{"medium": 2, "small": 1}, r.Sizes[""])
	require.Len(t, r.PairDiffers, 6, "every pair of the four colours")
	for pair, v := range r.PairDiffers {
		want := 0.0
		if strings.Contains(pair, "yellow") {
			want = 1.0 / 3 // scene 1
		}
		require.InDelta(t, want, v, 1e-12, pair)
	}
}
