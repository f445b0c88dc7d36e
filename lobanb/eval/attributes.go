package eval

// Attributes: the numbers and classes read off an image that the reports are computed from.

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/loba-dev/loba/models/toyworld"
)

// Categorical attributes of a Readout: the classes compared for preservation (off-target change)
// and for erasure.
var CategoricalAttributes = []string{toyworld.AttrBackground, toyworld.AttrColor, toyworld.AttrShape, toyworld.AttrSize}

// numericAttrs maps each numeric attribute to the categorical attribute it measures ("" = none),
// which is left out of the default off-target set when it is the slider's target.
var numericAttrs = map[string]string{
	"area":       "size",
	"size":       "size",
	"size_class": "size",
	"hue":        "color",
	"blueness":   "color",
	"redness":    "color",
	"greenness":  "color",
	"yellowness": "color",
	"cx":         "",
	"cy":         "",

	"background_luminance": "background",
	"color_cast":           "",
}

// Hue centres (degrees on the HSV colour wheel) of the "<colour>ness" attributes.
var hueCentres = map[string]float64{"redness": 0, "yellowness": 60, "greenness": 120, "blueness": 240}

// The "<a>_minus_<b>" attributes, one per ordered pair of palette colours (blue_minus_red,
// green_minus_yellow, …): the axis of an a ↔ b colour slider.
func init() {
	for _, a := range toyworld.Colors() {
		for _, b := range toyworld.Colors() {
			if a != b {
				numericAttrs[a+"_minus_"+b] = "color"
			}
		}
	}
}

// colorAxis is the position of rgb on the RGB line through palette colours a and b, scaled so
// that b reads −1, a +1 and their midpoint 0: 2⟨rgb − m, d⟩/|d|² with d = a − b, m = (a + b)/2.
// For a = blue, b = red it is exactly B − R.
func colorAxis(rgb [3]float64, a, b string) float64 {
	pa, _ := toyworld.PaletteUnitRGB(a)
	pb, _ := toyworld.PaletteUnitRGB(b)
	var dot, dd float64
	for k := range 3 {
		d := pa[k] - pb[k]
		dot += (rgb[k] - (pa[k]+pb[k])/2) * d
		dd += d * d
	}
	return 2 * dot / dd
}

// colorPair splits "<a>_minus_<b>" into two different palette colours.
func colorPair(attr string) (a, b string, ok bool) {
	a, b, found := strings.Cut(attr, "_minus_")
	if !found || a == b {
		return "", "", false
	}
	if _, okA := toyworld.PaletteColor(a); !okA {
		return "", "", false
	}
	if _, okB := toyworld.PaletteColor(b); !okB {
		return "", "", false
	}
	return a, b, true
}

// NumericAttributes lists the attributes AttributeValue knows, sorted.
func NumericAttributes() []string {
	names := make([]string, 0, len(numericAttrs))
	for k := range numericAttrs {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// AttributeValue is the numeric read-out attr of r, the quantity a slider's effect is measured on:
//
//   - "area", "size": r.Area, the foreground's fraction of the canvas (0 for an empty image), the
//     quantity of size sliders;
//   - "size_class": the size class as an ordinal, small 0, medium 1, large 2 (toyworld.Sizes order;
//     NaN for an empty image);
//   - "hue": r.Hue, degrees (toyworld: [−60, 300), red 0, blue 240; NaN for an empty image). It
//     jumps at magenta (−60 ≡ 300), half-way on the short path from red to blue: use "blueness"
//     for a red → blue slider;
//   - "blueness": 1 − d/180, where d ∈ [0, 180] is the circular distance in degrees between r.Hue and
//     blue (240°): blue 1, magenta and cyan 2/3, red and green 1/3, yellow 0. It rises steadily from
//     red through magenta to blue (the short way round the wheel, the way an RGB blend of red and
//     blue goes) with no jump anywhere, and falls from red towards yellow, so a red → blue slider
//     scores a positive rank correlation over negative and positive strengths. "redness" (0°),
//     "greenness" (120°) and "yellowness" (60°) are the same with other centres;
//   - "blue_minus_red": B − R of the foreground colour r.RGB, in [−1, 1]: red −1, yellow −1, magenta 0,
//     green 0, cyan 1, blue 1 (NaN for an empty image). The axis of a red ↔ blue slider in RGB: it
//     rises along every blend from red (or yellow, or green) to blue and is flat where the colour
//     does not move, where "blueness" (a hue distance) wobbles with hue noise on either side of red.
//     Every pair of palette colours has its "<a>_minus_<b>" (green_minus_yellow, …): the position of
//     r.RGB on the RGB line from b (−1) to a (+1), 2⟨rgb − m, a − b⟩/|a − b|² with m the midpoint,
//     of which B − R is the blue/red case;
//   - "cx", "cy": r.CX, r.CY, the shape's centroid (fractions of the width and height);
//   - "background_luminance": r.BgLuminance, the mean Rec. 709 luma of the background pixels in
//     [0, 1] (white 1, black 0; every pixel of an empty image), the quantity of background sliders;
//   - "color_cast": r.Cast, mean(B) − mean(R) over the whole image in [−1, 1] (0 untinted, higher
//     when tinted blue or cyan), the quantity of a cool style shift. It measures no categorical
//     attribute, so every class is checked for preservation by default.
//
// A read-out that has no value (the hue of an empty image, which has no foreground) is NaN, and so
// is an unknown attr (CheckTarget tells them apart).
func AttributeValue(r Readout, attr string) float64 {
	switch attr {
	case "area", "size":
		return r.Area
	case "size_class":
		if i := slices.Index(toyworld.Sizes(), r.Size); i >= 0 {
			return float64(i)
		}
		return math.NaN()
	case "hue":
		if r.Empty {
			return math.NaN()
		}
		return r.Hue
	case "cx":
		return r.CX
	case "cy":
		return r.CY
	case "background_luminance":
		return r.BgLuminance
	case "color_cast":
		return r.Cast
	}
	if a, b, ok := colorPair(attr); ok {
		if r.Empty {
			return math.NaN()
		}
		return colorAxis(r.RGB, a, b)
	}
	if c, ok := hueCentres[attr]; ok {
		if r.Empty || math.IsNaN(r.Hue) || math.IsInf(r.Hue, 0) {
			return math.NaN()
		}
		d := math.Abs(math.Mod(r.Hue-c, 360)) // [0, 360)
		d = min(d, 360-d)                     // circular distance, [0, 180]
		return 1 - d/180
	}
	return math.NaN()
}

// CheckTarget returns an error naming the valid attributes when attr is not one AttributeValue
// knows.
func CheckTarget(attr string) error {
	if _, ok := numericAttrs[attr]; !ok {
		return fmt.Errorf("eval: unknown target attribute %q (valid: %s)", attr, strings.Join(NumericAttributes(), ", "))
	}
	return nil
}

// Categorical is the class attr ("background", "color", "shape" or "size") of r.
func Categorical(r Readout, attr string) (string, error) {
	switch attr {
	case "background":
		return r.Background, nil
	case "color":
		return r.Color, nil
	case "shape":
		return r.Shape, nil
	case "size":
		return r.Size, nil
	}
	return "", fmt.Errorf("eval: unknown categorical attribute %q (valid: %s)", attr, strings.Join(CategoricalAttributes, ", "))
}

// DefaultOffTarget is the set of categorical attributes checked for preservation when target is
// the slider's attribute: every categorical attribute except the one target measures (size for
// "area", colour for "blueness", …).
func DefaultOffTarget(target string) []string {
	own := numericAttrs[target]
	var out []string
	for _, a := range CategoricalAttributes {
		if a != own {
			out = append(out, a)
		}
	}
	return out
}

// checkCategoricals verifies that every name of attrs is a categorical attribute.
func checkCategoricals(attrs []string) error {
	for _, a := range attrs {
		if !slices.Contains(CategoricalAttributes, a) {
			return fmt.Errorf("eval: unknown categorical attribute %q (valid: %s)", a, strings.Join(CategoricalAttributes, ", "))
		}
	}
	return nil
}

// CheckNames checks the attribute names of an eval section before anything runs (a typo must not
// surface only after training): kind "slider" needs a numeric target and categorical off-target
// names; kind "erase" a categorical attribute, a value of it ("red" for color) and categorical
// names to preserve. The error names the key and lists the valid values.
func CheckNames(kind, target string, offTarget []string, attribute, value string) error {
	if err := checkCategoricals(offTarget); err != nil {
		return fmt.Errorf("off_target: %w", err)
	}
	switch kind {
	case "slider":
		if err := CheckTarget(target); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		return nil
	case "erase":
		if attribute == "" {
			attribute = toyworld.AttrColor
		}
		if err := checkCategoricals([]string{attribute}); err != nil {
			return fmt.Errorf("attribute: %w", err)
		}
		if err := checkValue(attribute, value); err != nil {
			return fmt.Errorf("value: %w", err)
		}
		return nil
	}
	return fmt.Errorf("kind: unknown %q (valid: slider, erase)", kind)
}

// checkValue verifies that value is a class of the categorical attribute attr ("red" of "color").
func checkValue(attr, value string) error {
	if values := toyworld.Values(attr); !slices.Contains(values, value) {
		return fmt.Errorf("%q is not a %s of the toy world (valid: %s)", value, attr, strings.Join(values, ", "))
	}
	return nil
}
