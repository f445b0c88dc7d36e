package lobanb

import (
	"image"

	"github.com/janpfeifer/must"

	"github.com/loba-dev/loba/lobanb/eval"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/lobanb/train"
)

// The Must twins panic with the error instead of returning it: in a GoNB cell the panic is the
// cell's error output.

// MustLoad is Load that panics on error.
func MustLoad(ref string) *Model { return must.M1(Load(ref)) }

// MustPreset is Preset that panics on error.
func MustPreset(path string) *slider.Preset { return must.M1(Preset(path)) }

// MustSlider is Slider that panics on error.
func MustSlider(model, name string, target slider.Target) *slider.Preset {
	return must.M1(Slider(model, name, target))
}

// MustPlan is Plan that panics on error.
func MustPlan(p *slider.Preset) *train.Estimate { return must.M1(Plan(p)) }

// MustTrain is Train that panics on error.
func MustTrain(p *slider.Preset, dir string) *Result { return must.M1(Train(p, dir)) }

// MustChart is Chart that panics on error.
func MustChart(dir string) {
	must.M(Chart(dir))
}

// MustGrid is Grid that panics on error.
func MustGrid(dir string, prompts []string, strengths ...float64) image.Image {
	return must.M1(Grid(dir, prompts, strengths...))
}

// MustEval is Eval that panics on error.
func MustEval(dir string) *eval.Report { return must.M1(Eval(dir)) }

// MustSave is Save that panics on error.
func MustSave(dir, dest string) string { return must.M1(Save(dir, dest)) }
