package eval

import (
	"errors"
	"fmt"
	"image"
	"io"

	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/sd"
)

// Options tunes Evaluate. The zero value evaluates a run folder's own preset and LoRA.
type Options struct {
	// Preset replaces DIR/preset.yaml (the trainer's own plan; `loba eval PRESET`).
	Preset *slider.Preset
	// LoRA replaces DIR/lora.safetensors (`loba eval --lora FILE`).
	LoRA string
	// Pipeline is a loaded pipeline with the adapter already installed (the trainer's, right after
	// training): no model and no LoRA file is loaded then, and the pipeline is left open.
	Pipeline *sd.Pipeline
	// Log receives the download progress of a hub model (nil: quiet).
	Log io.Writer
	// Progress, when set, is called as the evaluation's images are sampled: done of total images,
	// once with 0 done before the first image and then after each seed's images (one sampling call
	// per seed; the total is the same in every call).
	Progress func(done, total int)
	// Stop, checked before each seed's images, ends the evaluation early with an error wrapping
	// ErrStopped (Ctrl-C): neither eval.json nor grid.png is written then.
	Stop func() bool
}

// ErrStopped is returned (wrapped) when Options.Stop ended an evaluation early.
var ErrStopped = errors.New("evaluation stopped")

// Evaluate measures a run's LoRA with its preset's eval section — training's own evaluation, the
// notebook's lobanb.Eval and `loba eval` all come here. Unless o.Pipeline is given it loads the
// preset's model (model.name_or_path with its variant, in train.dtype) with the LoRA installed and
// closes it before returning; first, CheckModel must say the eval can measure that model. Images are sampled at Size(preset); DIR/eval.json and DIR/grid.png
// (the first seed's images: rows = prompts, columns = strengths) are written.
func Evaluate(run rundir.Dir, o Options) (*Report, error) {
	p := o.Preset
	if p == nil {
		var err error
		if p, err = run.LoadPreset(); err != nil {
			return nil, err
		}
	}
	if p.Eval.Kind == "" {
		return nil, fmt.Errorf("preset %s has no eval section (eval.kind: slider | erase)", p.File())
	}
	size, err := Size(p)
	if err != nil {
		return nil, err
	}
	pipe := o.Pipeline
	if pipe == nil {
		check := func(dir string) error { return CheckModel(p, dir) } // before the model loads
		if pipe, err = run.LoadModel(p, o.LoRA, o.Log, check); err != nil {
			return nil, err
		}
		defer pipe.Close()
	}
	if err := run.Create(); err != nil {
		return nil, err
	}
	return evaluatePipeline(pipe, p.Eval, size, run, o)
}

// evaluatePipeline runs the eval section on a pipeline whose adapter is installed and writes the
// report and the grid into the run folder; o gives its Progress and Stop. A stopped evaluation
// writes nothing.
func evaluatePipeline(p *sd.Pipeline, e slider.Eval, size slider.Resolution, run rundir.Dir, o Options) (*Report, error) {
	var firstRows [][]image.Image
	onRows := func(_ uint64, rows [][]image.Image) {
		if firstRows == nil {
			firstRows = rows
		}
	}
	seeds := make([]uint64, len(e.Seeds))
	for i, s := range e.Seeds {
		if s < 0 {
			return nil, fmt.Errorf("eval: eval.seeds[%d] = %d, want >= 0", i, s)
		}
		seeds[i] = uint64(s)
	}
	sampling := Sampling{Steps: e.Steps, GuidanceScale: e.GuidanceScale, Height: size[0], Width: size[1],
		StartNoise: float64(e.StartNoise)}
	report := &Report{}
	var err error
	switch e.Kind {
	case "slider":
		report.Slider, err = EvalSlider(p, SliderRequest{Prompts: e.Prompts, Seeds: seeds, Strengths: e.Strengths,
			Target: e.Target, OffTarget: e.OffTarget, Sampling: sampling, OnRows: onRows, Progress: o.Progress, Stop: o.Stop})
	case "erase":
		report.Erase, err = EvalErase(p, EraseRequest{Prompts: e.Prompts, Controls: e.Controls, Seeds: seeds,
			Attribute: e.Attribute, Value: e.Value, Strength: e.Strength, Preserve: e.OffTarget, Sampling: sampling, OnRows: onRows,
			Progress: o.Progress, Stop: o.Stop})
	default:
		return nil, fmt.Errorf("eval: unknown eval.kind %q (valid: slider, erase)", e.Kind)
	}
	if err != nil {
		return nil, err
	}
	if err := WriteJSON(run.EvalReport(), report); err != nil {
		return nil, err
	}
	if err := sd.SaveGrid(run.Grid(), firstRows); err != nil {
		return nil, err
	}
	return report, nil
}

// Size is the resolution a preset's evaluation samples at: its first prompt entry's (the size the
// adapter trained at), else train.resolution. Training's own evaluation, lobanb.Eval and `loba
// eval` all use it.
func Size(p *slider.Preset) (slider.Resolution, error) {
	groups, err := p.Groups()
	if err != nil {
		return slider.Resolution{}, err
	}
	if len(groups) > 0 && len(groups[0]) > 0 {
		return groups[0][0].Resolution, nil
	}
	return p.Train.Resolution, nil
}
