package toybase

import (
	"image"
	"math/rand/v2"
	"slices"

	"github.com/loba-dev/loba/models/toyworld"
)

// Coupling measures how much the base model ties the size it draws to the colour word — what a
// colour slider or a colour erase inherits: for each scene (shape, background and, with
// CheckOptions.CouplingSized, a size) the four colour prompts and the prompt without a colour
// ("a red circle on a white background", …, "a circle on a white background") are sampled from the
// same initial noise, and their size classes compared. An ideal colour edit (the base model's own
// rendering with the other colour named) changes the size class in PairDiffers of the scenes.
type Coupling struct {
	// Scenes is the number of (shape, background, noise) scenes.
	Scenes int `json:"scenes"`
	// SizeNamed: every prompt names the scene's size ("a small red circle on …"); otherwise the size
	// is left open.
	SizeNamed bool `json:"size_named"`
	// Differs is the fraction of scenes whose size class is not the same for the four colours.
	Differs float64 `json:"differs"`
	// OpenDiffers is the fraction of colour prompts (scenes × 4) whose size class differs from the
	// same scene's prompt without a colour.
	OpenDiffers float64 `json:"open_differs"`
	// PairDiffers is, for each pair of colour words ("red/blue"), the fraction of scenes whose two
	// size classes differ: the size change of an ideal slider between those colours.
	PairDiffers map[string]float64 `json:"pair_differs"`
	// Sizes counts the size classes read for each colour word ("" is the prompt without a colour).
	Sizes map[string]map[string]int `json:"sizes"`
}

// couplingColors are the colour words Coupling prompts with, "" last (no colour).
func couplingColors() []string { return append(toyworld.Colors(), "") }

// coupling samples o.Coupling scenes, each with every colour word of couplingColors, and scores
// them: one Sample call per colour word, so that scene i draws the same noise PCG(seed, i) in each.
func (c *Checker) coupling() (*Coupling, error) {
	o := c.o
	rng := rand.New(rand.NewPCG(o.Seed, 0xc0))
	shapes, backgrounds, sizeWords := toyworld.Shapes(), toyworld.Backgrounds(), toyworld.Sizes()
	scenes := make([][3]string, o.Coupling) // shape, background, size ("": open)
	for i := range scenes {
		scenes[i] = [3]string{shapes[rng.IntN(len(shapes))], backgrounds[rng.IntN(len(backgrounds))], ""}
		if o.CouplingSized {
			scenes[i][2] = sizeWords[rng.IntN(len(sizeWords))]
		}
	}
	sizes := make([][]string, len(couplingColors())) // [colour][scene]
	for k, color := range couplingColors() {
		prompts := make([]string, len(scenes))
		for i, s := range scenes {
			prompts[i] = toyworld.Prompt(s[0], color, s[2], s[1])
		}
		imgs, err := c.sample(prompts)
		if err != nil {
			return nil, err
		}
		sizes[k] = readSizes(imgs)
	}
	r := scoreCoupling(sizes)
	r.SizeNamed = o.CouplingSized
	return r, nil
}

// readSizes reads the size class of each image.
func readSizes(imgs []image.Image) []string {
	out := make([]string, len(imgs))
	for i, img := range imgs {
		out[i] = toyworld.Read(img).Size
	}
	return out
}

// scoreCoupling scores the size classes read per colour word (couplingColors' order, the prompt
// without a colour last) and scene.
func scoreCoupling(sizes [][]string) *Coupling {
	colors := couplingColors()
	open := sizes[len(sizes)-1]
	r := &Coupling{Scenes: len(open), Sizes: map[string]map[string]int{}, PairDiffers: map[string]float64{}}
	for k, color := range colors {
		r.Sizes[color] = map[string]int{}
		for _, s := range sizes[k] {
			r.Sizes[color][s]++
		}
	}
	for i := range open {
		var named []string
		for k := range colors[:len(colors)-1] {
			named = append(named, sizes[k][i])
			if sizes[k][i] != open[i] {
				r.OpenDiffers++
			}
		}
		slices.Sort(named)
		if len(slices.Compact(named)) > 1 {
			r.Differs++
		}
	}
	named := colors[:len(colors)-1]
	for a := range named {
		for b := a + 1; b < len(named); b++ {
			n := 0
			for i := range open {
				if sizes[a][i] != sizes[b][i] {
					n++
				}
			}
			if r.Scenes > 0 {
				r.PairDiffers[named[a]+"/"+named[b]] = float64(n) / float64(r.Scenes)
			}
		}
	}
	if r.Scenes > 0 {
		r.Differs /= float64(r.Scenes)
		r.OpenDiffers /= float64(r.Scenes * (len(colors) - 1))
	}
	return r
}
