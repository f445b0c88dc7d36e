package toyworld

import (
	"image"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPromptAndFullCaption(t *testing.T) {
	s := Scene{Shape: "circle", Color: "red", Size: "large", Background: "white", CX: 0.5, CY: 0.5}
	require.Equal(t, "a large red circle on a white background", FullCaption(s))
	require.Equal(t, "a red shape", Prompt("", "red", "", ""))
	require.Equal(t, "a large circle", Prompt("circle", "", "large", ""))
	require.Equal(t, "a circle on a black background", Prompt("circle", "", "", "black"))
	require.Equal(t, "a shape", Prompt("", "", "", ""))
}

func TestParseSynonyms(t *testing.T) {
	want := map[string]string{AttrSize: "large", AttrColor: "red", AttrShape: "circle", AttrBackground: "black"}
	for _, c := range []string{"a big red disc on black", "a large red circle on a black background",
		"Huge red circle, black background", "a circle that is huge and red against a black backdrop"} {
		require.Equal(t, want, Parse(c), c)
	}
	require.Equal(t, map[string]string{AttrSize: "small", AttrShape: "square"}, Parse("a tiny box"))
	require.Equal(t, map[string]string{AttrSize: "medium"}, Parse("a mid-sized object"))
	require.Equal(t, map[string]string{AttrColor: "blue"}, Parse("a blue shape"))
}

func TestCaptionGrammar(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	vocab := Vocabulary()
	require.True(t, slices.IsSorted(vocab))
	require.Equal(t, len(vocab), len(slices.Compact(slices.Clone(vocab))))
	const n = 4000
	named := map[string]int{}
	distinct := map[string]bool{}
	maxWords := 0
	for range n {
		s := Sample(rng)
		full := Parse(FullCaption(s))
		for _, attr := range Attributes() {
			require.Equal(t, s.Attr(attr), full[attr], "%s of %q", attr, FullCaption(s))
		}
		c := Caption(s, rng)
		distinct[c] = true
		require.Equal(t, c, strings.TrimSpace(c))
		require.NotContains(t, c, "  ")
		words := splitWords(c)
		maxWords = max(maxWords, len(words))
		for _, w := range words {
			require.Contains(t, vocab, w, "caption %q", c)
		}
		for attr, class := range Parse(c) {
			require.Equal(t, s.Attr(attr), class, "caption %q names %s %s", c, attr, class)
			named[attr]++
		}
	}
	t.Logf("%d captions, %d distinct, ≤ %d words, vocabulary %d words; named: %v", n, len(distinct), maxWords, len(vocab), named)
	require.LessOrEqual(t, maxWords, 16) // ≤ 3 BPE tokens a word: far below CLIP's 75
	for _, attr := range Attributes() {
		rate := 1 - float64(named[attr])/n
		require.Less(t, math.Abs(rate-OmitProbability), 0.03, "omission rate of %s = %.3f", attr, rate)
	}
	require.Greater(t, len(distinct), 1000)
}

func TestBatchDeterministic(t *testing.T) {
	const n, w, h = 5, 32, 32
	x1, c1, s1 := Batch(rand.New(rand.NewPCG(9, 9)), n, w, h)
	x2, c2, s2 := Batch(rand.New(rand.NewPCG(9, 9)), n, w, h)
	imgs, c3, s3 := BatchImages(rand.New(rand.NewPCG(9, 9)), n, w, h)
	require.Equal(t, x1, x2)
	require.Equal(t, c1, c2)
	require.Equal(t, s1, s2)
	require.Equal(t, c1, c3)
	require.Equal(t, s1, s3)
	require.Len(t, x1, n*3*h*w)
	for _, v := range x1 {
		require.True(t, v == -1 || v == 1)
	}
	x4, _, _, err := ImagesToCHW([]image.Image{imgs[0], imgs[1], imgs[2], imgs[3], imgs[4]})
	require.NoError(t, err)
	require.Equal(t, x1, x4)
	_, _, s5 := Batch(rand.New(rand.NewPCG(9, 10)), n, w, h)
	require.NotEqual(t, s1, s5)
}
