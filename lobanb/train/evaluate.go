package train

import (
	"fmt"
	"image"
	"path/filepath"

	"github.com/loba-dev/loba/lobanb/eval"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/sd"
)

// Evaluate runs the preset's eval section on a pipeline whose adapter is installed (p.SetAdapter /
// p.UseLoRA): it writes outDir/eval.json and outDir/grid.png (the first seed's images: rows =
// prompts, columns = strengths) and returns the report (*eval.SliderReport or *eval.EraseReport).
func Evaluate(p *sd.Pipeline, e slider.Eval, size slider.Resolution, outDir string) (*eval.Report, error) {
	var firstRows [][]image.Image
	onRows := func(_ uint64, rows [][]image.Image) {
		if firstRows == nil {
			firstRows = rows
		}
	}
	seeds := make([]uint64, len(e.Seeds))
	for i, s := range e.Seeds {
		if s < 0 {
			return nil, fmt.Errorf("train: eval.seeds[%d] = %d, want >= 0", i, s)
		}
		seeds[i] = uint64(s)
	}
	sampling := eval.Sampling{Steps: e.Steps, GuidanceScale: e.GuidanceScale, Height: size[0], Width: size[1]}
	report := &eval.Report{}
	var err error
	switch e.Kind {
	case "slider":
		report.Slider, err = eval.EvalSlider(p, eval.SliderRequest{Prompts: e.Prompts, Seeds: seeds, Strengths: e.Strengths,
			Target: e.Target, OffTarget: e.OffTarget, Sampling: sampling, OnRows: onRows})
	case "erase":
		report.Erase, err = eval.EvalErase(p, eval.EraseRequest{Prompts: e.Prompts, Controls: e.Controls, Seeds: seeds,
			Attribute: e.Attribute, Value: e.Value, Strength: e.Strength, Preserve: e.OffTarget, Sampling: sampling, OnRows: onRows})
	default:
		return nil, fmt.Errorf("train: unknown eval.kind %q (valid: slider, erase)", e.Kind)
	}
	if err != nil {
		return nil, err
	}
	if err := eval.WriteJSON(filepath.Join(outDir, "eval.json"), report.Value()); err != nil {
		return nil, err
	}
	if err := sd.SaveGrid(filepath.Join(outDir, "grid.png"), firstRows); err != nil {
		return nil, err
	}
	return report, nil
}
