package eval

import (
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"

	"github.com/gomlx/compute/dtypes"

	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/sd"
)

// Evaluate runs the preset's eval section on a pipeline whose adapter is installed (p.SetAdapter /
// p.UseLoRA): it writes outDir/eval.json and outDir/grid.png (the first seed's images: rows =
// prompts, columns = strengths) and returns the report.
func Evaluate(p *sd.Pipeline, e slider.Eval, size slider.Resolution, outDir string) (*Report, error) {
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
	sampling := Sampling{Steps: e.Steps, GuidanceScale: e.GuidanceScale, Height: size[0], Width: size[1]}
	report := &Report{}
	var err error
	switch e.Kind {
	case "slider":
		report.Slider, err = EvalSlider(p, SliderRequest{Prompts: e.Prompts, Seeds: seeds, Strengths: e.Strengths,
			Target: e.Target, OffTarget: e.OffTarget, Sampling: sampling, OnRows: onRows})
	case "erase":
		report.Erase, err = EvalErase(p, EraseRequest{Prompts: e.Prompts, Controls: e.Controls, Seeds: seeds,
			Attribute: e.Attribute, Value: e.Value, Strength: e.Strength, Preserve: e.OffTarget, Sampling: sampling, OnRows: onRows})
	default:
		return nil, fmt.Errorf("eval: unknown eval.kind %q (valid: slider, erase)", e.Kind)
	}
	if err != nil {
		return nil, err
	}
	if err := WriteJSON(filepath.Join(outDir, "eval.json"), report); err != nil {
		return nil, err
	}
	if err := sd.SaveGrid(filepath.Join(outDir, "grid.png"), firstRows); err != nil {
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

// EvaluateLoRA measures a kohya LoRA file with a preset's eval section: the preset's model
// (model.name_or_path with its variant, in train.dtype), the LoRA installed, images at Size(p),
// outDir/eval.json and outDir/grid.png written. The pipeline is closed before it returns. Download
// progress of a hub model goes to log (nil: quiet).
func EvaluateLoRA(p *slider.Preset, loraPath, outDir string, log io.Writer) (*Report, error) {
	if p.Eval.Kind == "" {
		return nil, fmt.Errorf("preset %s has no eval section (eval.kind: slider | erase)", p.File())
	}
	size, err := Size(p)
	if err != nil {
		return nil, err
	}
	dir, err := sd.ResolveModel(p.Model.NameOrPath, p.Model.Variant, log)
	if err != nil {
		return nil, err
	}
	dtype := dtypes.Float32
	if p.Train.DType == "bfloat16" {
		dtype = dtypes.BFloat16
	}
	pipe, err := sd.LoadPipeline(dir, sd.PipelineOptions{Variant: p.Model.Variant, DType: dtype})
	if err != nil {
		return nil, err
	}
	defer pipe.Close()
	if _, err := pipe.UseLoRA(loraPath); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	return Evaluate(pipe, p.Eval, size, outDir)
}
