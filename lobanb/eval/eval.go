// Package eval turns "the slider works" into numbers: it generates images over strengths × prompts
// × seeds with a slider installed on an sd.Pipeline, reads their attributes (by default with the
// toy world's exact read-outs) and reports the effect on the target attribute (rank correlation
// and slope against the strength), the preservation of the other attributes, and for erasure how
// often the erased value still appears and how much the control prompts change.
//
// The pure parts (metrics.go, attributes.go, report.go) know nothing about models; this file is
// the driver over the sd pipeline.
package eval

import (
	"fmt"
	"image"

	"github.com/loba-dev/loba/models/sd"
)

// DefaultStrengths are the slider strengths evaluated when a request names none.
var DefaultStrengths = []float64{-2, -1, 0, 1, 2}

// Sampling is how an evaluation samples its images, as sd.SampleRequest's fields of the same names.
type Sampling struct {
	Steps          int
	GuidanceScale  float64
	Width, Height  int
	NegativePrompt string
	Sampler        string
	StartNoise     float64
	BatchSize      int
}

// request is the sd.SampleRequest of prompts at strengths from seed.
func (s Sampling) request(prompts []string, strengths []float64, seed uint64) sd.SampleRequest {
	return sd.SampleRequest{Prompts: prompts, NegativePrompt: s.NegativePrompt, Width: s.Width, Height: s.Height,
		Steps: s.Steps, GuidanceScale: s.GuidanceScale, Sampler: s.Sampler, Strengths: strengths,
		StartNoise: s.StartNoise, BatchSize: s.BatchSize, Seed: seed}
}

// SliderRequest describes a slider evaluation. The slider is the adapter installed on the
// pipeline by the caller (p.SetAdapter); its strengths are the adapter multipliers.
type SliderRequest struct {
	// Prompts are the evaluation prompts; Seeds the seeds of each (default {0}). Every (prompt,
	// seed) is one series: its images at every strength start from the same noise.
	Prompts []string
	Seeds   []uint64
	// Strengths (default DefaultStrengths) must include 0 and a non-zero strength.
	Strengths []float64
	// Target is the numeric attribute the effect is measured on (see AttributeValue), e.g. "area"
	// for a size slider or "blueness" for red → blue.
	Target string
	// OffTarget lists the categorical attributes checked for preservation (nil:
	// DefaultOffTarget(Target)).
	OffTarget []string

	// Sampling configures the sampler (0 / "" take sd.SampleRequest's defaults).
	Sampling

	// Reader reads an image's attributes (default: the toy world's exact read-outs).
	Reader Reader
	// OnRows, when set, receives the images of each seed as rows (prompts) of columns
	// (strengths), e.g. to save a grid without sampling again.
	OnRows func(seed uint64, rows [][]image.Image)
	// Progress, when set, is called with the number of images done and in all: once before the
	// first image (0 done) and after each seed's images.
	Progress func(done, total int)
	// Stop, when set, is checked before each seed's images: true ends the evaluation with an error
	// wrapping ErrStopped.
	Stop func() bool
}

// EvalSlider generates req's images with the adapter installed on p, reads them and computes the
// slider report. It makes one p.SampleRows call per seed: row i is Prompts[i], column j is
// Strengths[j], and prompt i draws its noise from PCG(seed, i) for every strength.
func EvalSlider(p *sd.Pipeline, req SliderRequest) (*SliderReport, error) {
	if len(req.Prompts) == 0 {
		return nil, fmt.Errorf("eval.EvalSlider: no prompts")
	}
	if err := CheckTarget(req.Target); err != nil {
		return nil, fmt.Errorf("eval.EvalSlider: %w", err)
	}
	strengths := req.Strengths
	if len(strengths) == 0 {
		strengths = DefaultStrengths
	}
	if _, _, err := strengthIndices(strengths); err != nil {
		return nil, fmt.Errorf("eval.EvalSlider: %w", err)
	}
	read, seeds, err := readerAndSeeds(req.Reader, req.Seeds)
	if err != nil {
		return nil, fmt.Errorf("eval.EvalSlider: %w", err)
	}
	sreq := req.request(req.Prompts, strengths, 0)
	pace := pacer{progress: req.Progress, stop: req.Stop, perSeed: len(req.Prompts) * len(strengths), seeds: len(seeds)}
	var series []Series
	for k, seed := range seeds {
		if err := pace.next(k); err != nil {
			return nil, fmt.Errorf("eval.EvalSlider: %w", err)
		}
		sreq.Seed = seed
		rows, err := sampleRows(p, sreq)
		if err != nil {
			return nil, fmt.Errorf("eval.EvalSlider: seed %d: %w", seed, err)
		}
		if req.OnRows != nil {
			req.OnRows(seed, rows)
		}
		for i, row := range rows {
			s := Series{Prompt: req.Prompts[i], Seed: seed, Strengths: strengths}
			for _, img := range row {
				s.Readouts = append(s.Readouts, read(img))
			}
			series = append(series, s)
		}
		pace.done(k)
	}
	r, err := ComputeSlider(req.Target, req.OffTarget, series)
	if err != nil {
		return nil, fmt.Errorf("eval.EvalSlider: %w", err)
	}
	return r, nil
}

// EraseRequest describes an erase evaluation: the adapter installed on the pipeline (p.SetAdapter)
// should remove Attribute = Value from prompts that ask for it and leave the controls alone.
type EraseRequest struct {
	// Prompts ask for the erased value ("a red circle"); Controls do not ("a blue square").
	Prompts, Controls []string
	// Seeds of every prompt (default {0}).
	Seeds []uint64
	// Attribute is the categorical attribute erased (default "color"); Value its erased class
	// (e.g. "red", required).
	Attribute, Value string
	// Strength is the adapter strength of "after" (default 1); "before" is strength 0.
	Strength float64
	// Preserve lists the categorical attributes whose change counts in control_change (default: all
	// of CategoricalAttributes); leave out what the base model does not draw reliably.
	Preserve []string

	// Sampling configures the sampler (0 / "" take sd.SampleRequest's defaults).
	Sampling

	// Reader reads an image's attributes (default: the toy world's exact read-outs).
	Reader Reader
	// OnRows, when set, receives the images of each seed as rows (Prompts then Controls) of two
	// columns (before, after).
	OnRows func(seed uint64, rows [][]image.Image)
	// Progress, when set, is called with the number of images done and in all: once before the
	// first image (0 done) and after each seed's images.
	Progress func(done, total int)
	// Stop, when set, is checked before each seed's images: true ends the evaluation with an error
	// wrapping ErrStopped.
	Stop func() bool
}

// EvalErase generates req's images before (strength 0) and after (Strength) with the adapter
// installed on p, from the same noise per (prompt, seed), reads them and computes the erase
// report. It makes one p.SampleRows call per seed over Prompts followed by Controls.
func EvalErase(p *sd.Pipeline, req EraseRequest) (*EraseReport, error) {
	if len(req.Prompts) == 0 || len(req.Controls) == 0 {
		return nil, fmt.Errorf("eval.EvalErase: need prompts asking for the erased value and control prompts (got %d and %d)",
			len(req.Prompts), len(req.Controls))
	}
	attr := req.Attribute
	if attr == "" {
		attr = "color"
	}
	if err := checkCategoricals([]string{attr}); err != nil {
		return nil, fmt.Errorf("eval.EvalErase: %w", err)
	}
	if req.Value == "" {
		return nil, fmt.Errorf("eval.EvalErase: no erased %s value", attr)
	}
	if err := checkValue(attr, req.Value); err != nil {
		return nil, fmt.Errorf("eval.EvalErase: value: %w", err)
	}
	strength := req.Strength
	if strength == 0 {
		strength = 1
	}
	read, seeds, err := readerAndSeeds(req.Reader, req.Seeds)
	if err != nil {
		return nil, fmt.Errorf("eval.EvalErase: %w", err)
	}
	prompts := append(append([]string(nil), req.Prompts...), req.Controls...)
	sreq := req.request(prompts, []float64{0, strength}, 0)
	pace := pacer{progress: req.Progress, stop: req.Stop, perSeed: len(prompts) * 2, seeds: len(seeds)}
	var pairs []ErasePair
	for k, seed := range seeds {
		if err := pace.next(k); err != nil {
			return nil, fmt.Errorf("eval.EvalErase: %w", err)
		}
		sreq.Seed = seed
		rows, err := sampleRows(p, sreq)
		if err != nil {
			return nil, fmt.Errorf("eval.EvalErase: seed %d: %w", seed, err)
		}
		if req.OnRows != nil {
			req.OnRows(seed, rows)
		}
		for i, row := range rows {
			pairs = append(pairs, ErasePair{
				Prompt: prompts[i], Seed: seed, Control: i >= len(req.Prompts),
				Before: read(row[0]), After: read(row[1]),
			})
		}
		pace.done(k)
	}
	r, err := ComputeErase(attr, req.Value, pairs, req.Preserve)
	if err != nil {
		return nil, fmt.Errorf("eval.EvalErase: %w", err)
	}
	r.Strength = strength
	return r, nil
}

// sampleRows runs one sampling call and checks the grid's shape.
func sampleRows(p *sd.Pipeline, req sd.SampleRequest) ([][]image.Image, error) {
	rows, err := p.SampleRows(req)
	if err != nil {
		return nil, err
	}
	if len(rows) != len(req.Prompts) {
		return nil, fmt.Errorf("sampling gave %d rows for %d prompts", len(rows), len(req.Prompts))
	}
	for i, row := range rows {
		if len(row) != len(req.Strengths) {
			return nil, fmt.Errorf("sampling gave %d images in row %d for %d strengths", len(row), i, len(req.Strengths))
		}
	}
	return rows, nil
}

// readerAndSeeds resolves the defaults of a request's reader and seeds.
func readerAndSeeds(read Reader, seeds []uint64) (Reader, []uint64, error) {
	if read == nil {
		read = defaultReader
	}
	if read == nil {
		return nil, nil, fmt.Errorf("no reader")
	}
	if len(seeds) == 0 {
		seeds = []uint64{0}
	}
	return read, seeds, nil
}
