package lobanb

import (
	"image"

	"github.com/loba-dev/loba/lobanb/slider"
)

// The Must twins panic with the error instead of returning it: in a GoNB cell the panic is the
// cell's error output.

// MustLoad is Load that panics on error.
func MustLoad(ref string) *Model { return must(Load(ref)) }

// MustPreset is Preset that panics on error.
func MustPreset(path string) *slider.Preset { return must(Preset(path)) }

// MustSlider is Slider that panics on error.
func MustSlider(model, name, targetClass, positive, negative string) *slider.Preset {
	return must(Slider(model, name, targetClass, positive, negative))
}

// MustTrain is Train that panics on error.
func MustTrain(p *slider.Preset, dir string) *Result { return must(Train(p, dir)) }

// MustChart is Chart that panics on error.
func MustChart(dir string) {
	if err := Chart(dir); err != nil {
		panic(err)
	}
}

// MustGrid is Grid that panics on error.
func MustGrid(dir string, prompts []string, strengths ...float64) image.Image {
	return must(Grid(dir, prompts, strengths...))
}

// MustEval is Eval that panics on error.
func MustEval(dir string) any { return must(Eval(dir)) }

// MustSave is Save that panics on error.
func MustSave(dir, dest string) string { return must(Save(dir, dest)) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
