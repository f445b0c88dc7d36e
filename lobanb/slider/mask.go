package slider

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/loba-dev/loba/models/toyworld"
)

// Mask is a prompt entry's region (RC-LOBA, docs/ALGORITHMS.md §5): the per-element loss weight W of
// L = mean(W ⊙ (e_tgt − y)²) + λ_keep · mean((1−W) ⊙ (ε₁ − ε₀)²). Exactly one of PNG, Boxes and
// Region is set.
type Mask struct {
	// PNG is a mask image (binary or greyscale; colour is read as its luminance, alpha multiplies),
	// of any size: it covers the whole image and is resampled to the latent grid by area averaging.
	// A relative path is relative to the preset's folder ("~/" is the home folder); Normalize makes
	// it absolute when the preset was read from a file.
	PNG string `yaml:"png,omitempty" json:"png,omitempty"`
	// Boxes are rectangles [x0, y0, x1, y1] in image pixels of the entry's resolution (x along the
	// width, 0 ≤ x0 < x1 ≤ width, 0 ≤ y0 < y1 ≤ height; fractional coordinates cover pixels in part).
	Boxes [][4]float64 `yaml:"boxes,omitempty" json:"boxes,omitempty"`
	// Region names a toy-world scene mask: foreground (the shape) | background.
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
	// Invert uses 1 − W.
	Invert bool `yaml:"invert,omitempty" json:"invert,omitempty"`
}

// Toy-world region names of Mask.Region (toyworld.RegionMask's).
const (
	RegionForeground = toyworld.RegionForeground
	RegionBackground = toyworld.RegionBackground
)

var validRegions = []string{RegionForeground, RegionBackground}

// Weights returns the mask's weights W on an h×w latent grid, row-major, each in [0, 1]: a PNG
// resampled by area averaging (each latent cell is the mean of the image area it covers, fractional
// overlaps weighted); boxes rasterised at the image resolution imgH×imgW (a pixel's value is the
// largest fraction of it one box covers) and then area-averaged to h×w. Invert gives 1 − W. A
// relative PNG path is opened in presetDir ("" = the working directory). A region mask is the toy
// world's exact mask of prompt (toyworld.RegionMask: the union of what any scene of the prompt can
// paint) at imgH×imgW, area-averaged the same way.
func (m *Mask) Weights(h, w int, imgH, imgW int, presetDir, prompt string) ([]float32, error) {
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("mask: latent grid %d×%d: want positive sizes", h, w)
	}
	var (
		img        []float64
		srcH, srcW int
	)
	switch {
	case m.Region != "":
		region, err := toyworld.RegionMask(prompt, m.Region, imgW, imgH)
		if err != nil {
			return nil, fmt.Errorf("mask region %q: %w", m.Region, err)
		}
		img, srcH, srcW = make([]float64, len(region)), imgH, imgW
		for i, x := range region {
			img[i] = float64(x)
		}
	case m.PNG != "":
		path := m.PNG
		if !filepath.IsAbs(path) && presetDir != "" {
			path = filepath.Join(presetDir, path)
		}
		var err error
		if img, srcH, srcW, err = readMaskPNG(path); err != nil {
			return nil, err
		}
	case len(m.Boxes) > 0:
		if err := checkBoxes(m.Boxes, imgH, imgW); err != nil {
			return nil, fmt.Errorf("mask boxes: %w", err)
		}
		img, srcH, srcW = rasterBoxes(m.Boxes, imgH, imgW), imgH, imgW
	default:
		return nil, errors.New("mask: empty; want one of png, boxes or region")
	}
	out := make([]float32, h*w)
	for i, x := range areaResample(img, srcH, srcW, h, w) {
		x = min(1, max(0, x)) // rounding only: the inputs lie in [0, 1]
		if m.Invert {
			x = 1 - x
		}
		out[i] = float32(x)
	}
	return out, nil
}

// kinds lists the mask keys that are set, for the "exactly one of" check.
func (m *Mask) kinds() []string {
	var set []string
	if m.PNG != "" {
		set = append(set, "png")
	}
	if len(m.Boxes) > 0 {
		set = append(set, "boxes")
	}
	if m.Region != "" {
		set = append(set, "region")
	}
	return set
}

// checkBoxes checks that every box is finite, non-empty and inside the imgH×imgW image.
func checkBoxes(boxes [][4]float64, imgH, imgW int) error {
	if imgH <= 0 || imgW <= 0 {
		return fmt.Errorf("image %d×%d: want positive sizes", imgH, imgW)
	}
	for i, b := range boxes {
		if err := checkBox(b, imgH, imgW); err != nil {
			return fmt.Errorf("boxes[%d] %v: %w", i, b, err)
		}
	}
	return nil
}

func checkBox(b [4]float64, imgH, imgW int) error {
	for _, x := range b {
		if !finite(x) {
			return errors.New("want finite numbers [x0, y0, x1, y1]")
		}
	}
	x0, y0, x1, y1 := b[0], b[1], b[2], b[3]
	if x0 >= x1 || y0 >= y1 {
		return errors.New("empty; want x0 < x1 and y0 < y1 ([x0, y0, x1, y1] in pixels)")
	}
	if x0 < 0 || y0 < 0 || x1 > float64(imgW) || y1 > float64(imgH) {
		return fmt.Errorf("outside the %d×%d image (height × width); want 0 <= x0 < x1 <= %d and 0 <= y0 < y1 <= %d", imgH, imgW, imgW, imgH)
	}
	return nil
}
