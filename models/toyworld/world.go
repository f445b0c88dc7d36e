package toyworld

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"slices"
)

// RefSize is the side of the reference canvas (32×32) on which sizes and jitter are defined; other
// canvases scale them by min(w, h)/RefSize.
const RefSize = 32

// Jitter is the largest offset of a shape's box centre from the canvas centre, per axis, as a
// fraction of the canvas (2 px on the 32-px reference canvas).
const Jitter = 2.0 / RefSize

// Attribute names, as used by Parse, Values and the evaluation.
const (
	AttrShape      = "shape"
	AttrColor      = "color"
	AttrSize       = "size"
	AttrBackground = "background"
)

var (
	shapeNames      = []string{"circle", "square", "triangle"}
	colorNames      = []string{"red", "green", "blue", "yellow"}
	sizeNames       = []string{"small", "medium", "large"}
	backgroundNames = []string{"white", "black"}

	// palette holds the saturated foreground colours: corners of the RGB cube, pairwise ≥ 255 apart
	// and ≥ 255 from both backgrounds.
	palette = map[string]color.RGBA{
		"red":    {255, 0, 0, 255},
		"green":  {0, 255, 0, 255},
		"blue":   {0, 0, 255, 255},
		"yellow": {255, 255, 0, 255},
	}
	backgroundPalette = map[string]color.RGBA{
		"white": {255, 255, 255, 255},
		"black": {0, 0, 0, 255},
	}

	// sizeRadius is the radius, in pixels of the reference canvas, of the circle of each size. Every
	// shape of a size has the circle's area (π r²: 50.3, 132.7, 254.5 px on 32×32), so the size
	// read-out does not depend on the shape.
	sizeRadius = map[string]float64{"small": 4, "medium": 6.5, "large": 9}
)

// Shapes lists the shape classes: circle, square, triangle.
func Shapes() []string { return slices.Clone(shapeNames) }

// Colors lists the foreground colour classes: red, green, blue, yellow.
func Colors() []string { return slices.Clone(colorNames) }

// Sizes lists the size classes, smallest first: small, medium, large.
func Sizes() []string { return slices.Clone(sizeNames) }

// Backgrounds lists the background classes: white, black.
func Backgrounds() []string { return slices.Clone(backgroundNames) }

// Attributes lists the attribute names: shape, color, size, background.
func Attributes() []string { return []string{AttrShape, AttrColor, AttrSize, AttrBackground} }

// Values lists the classes of one attribute (nil for an unknown attribute).
func Values(attr string) []string {
	switch attr {
	case AttrShape:
		return Shapes()
	case AttrColor:
		return Colors()
	case AttrSize:
		return Sizes()
	case AttrBackground:
		return Backgrounds()
	}
	return nil
}

// PaletteColor is the RGB colour of a foreground colour class ("red", ...).
func PaletteColor(name string) (color.RGBA, bool) { c, ok := palette[name]; return c, ok }

// PaletteUnitRGB is PaletteColor in [0, 1] units (R, G, B), as the read-outs measure colour.
func PaletteUnitRGB(name string) ([3]float64, bool) {
	c, ok := palette[name]
	return unitRGB(c), ok
}

// BackgroundColor is the RGB colour of a background class ("white", "black").
func BackgroundColor(name string) (color.RGBA, bool) {
	c, ok := backgroundPalette[name]
	return c, ok
}

// NominalArea is the area of a shape of the given size class as a fraction of min(w, h)²: π r²/32²
// with r = 4, 6.5, 9 (0.0491, 0.1296, 0.2485). It is 0 for an unknown size.
func NominalArea(size string) float64 {
	r := sizeRadius[size]
	return math.Pi * r * r / (RefSize * RefSize)
}

// Scene is one image of the toy world: one shape of one colour and size on a plain background.
// CX, CY are the shape's centroid (centre of mass) as fractions of the canvas width and height
// (0.5 = centre).
type Scene struct {
	Shape, Color, Size, Background string
	CX, CY                         float64
	// Shade mixes the shape's palette colour with another palette colour, ShadeToward: the shape is
	// painted (1 − Shade)·Color + Shade·ShadeToward. Shade is in [0, MaxShade]; 0 (the default, with
	// ShadeToward "") is the pure palette colour. The caption still names Color: a shade of red is
	// red, and the colour read-out says so.
	ShadeToward string
	Shade       float64
}

// MaxShade bounds Scene.Shade. Up to it every shade keeps its colour class in the read-out with a
// margin: the first misreads come at 0.3, where red and green mix through dark yellow on black and
// yellow and blue through grey on white.
const MaxShade = 0.25

// Attr returns the class of one attribute of the scene ("" for an unknown attribute).
func (s Scene) Attr(attr string) string {
	switch attr {
	case AttrShape:
		return s.Shape
	case AttrColor:
		return s.Color
	case AttrSize:
		return s.Size
	case AttrBackground:
		return s.Background
	}
	return ""
}

// Validate reports an attribute value that is not one of its classes.
func (s Scene) Validate() error {
	for _, attr := range Attributes() {
		if v := s.Attr(attr); !slices.Contains(Values(attr), v) {
			return fmt.Errorf("toyworld: scene %s %q is not one of %v", attr, v, Values(attr))
		}
	}
	if !(s.Shade >= 0 && s.Shade <= MaxShade) {
		return fmt.Errorf("toyworld: scene shade %v is not in [0, %v]", s.Shade, MaxShade)
	}
	if s.Shade > 0 && (s.ShadeToward == s.Color || !slices.Contains(colorNames, s.ShadeToward)) {
		return fmt.Errorf("toyworld: scene shade toward %q is not a colour of %v other than %q", s.ShadeToward, colorNames, s.Color)
	}
	if math.IsNaN(s.CX) || math.IsNaN(s.CY) {
		return fmt.Errorf("toyworld: scene centroid (%v, %v) is NaN", s.CX, s.CY)
	}
	return nil
}

// Sample draws a scene uniformly over the shape, colour, size and background classes, with the
// shape's bounding box centred on the canvas up to a uniform jitter of ±Jitter per axis. (For a
// triangle the centroid lies T/6 below its box centre; that offset is computed for square canvases.)
// It consumes exactly six values of rng.
func Sample(rng *rand.Rand) Scene {
	s := Scene{
		Shape:      shapeNames[rng.IntN(len(shapeNames))],
		Color:      colorNames[rng.IntN(len(colorNames))],
		Size:       sizeNames[rng.IntN(len(sizeNames))],
		Background: backgroundNames[rng.IntN(len(backgroundNames))],
	}
	s.CX = 0.5 + (2*rng.Float64()-1)*Jitter
	s.CY = 0.5 + (2*rng.Float64()-1)*Jitter + centroidDrop(s.Shape, s.Size)
	return s
}

// SampleShaded is Sample with the shape's colour shaded: a uniform Shade in [0, maxShade) toward one
// of the three other palette colours, drawn uniformly. With maxShade 0 it is Sample (the same six
// values of rng); otherwise it consumes two more. A maxShade above MaxShade is taken as MaxShade.
func SampleShaded(rng *rand.Rand, maxShade float64) Scene {
	s := Sample(rng)
	if maxShade <= 0 {
		return s
	}
	others := slices.DeleteFunc(slices.Clone(colorNames), func(c string) bool { return c == s.Color })
	s.ShadeToward = others[rng.IntN(len(others))]
	s.Shade = rng.Float64() * min(maxShade, MaxShade)
	return s
}

// centroidDrop is how far below its bounding box's centre a shape's centroid lies, as a fraction of
// the canvas height: T/6 for a triangle of base T (as a fraction of min(w, h)), 0 otherwise.
func centroidDrop(shape, size string) float64 {
	if shape == "triangle" {
		return triangleSide(NominalArea(size)) / 6
	}
	return 0
}

// triangleSide is the base (= height) of the upright isosceles triangle of the given area.
func triangleSide(area float64) float64 { return math.Sqrt(2 * area) }

// geom is a shape placed on a pixel grid: centroid (cx, cy) and area in pixels. Pixel (i, j)
// covers [i, i+1) × [j, j+1); y grows downwards.
type geom struct {
	shape  string
	cx, cy float64
	r      float64 // circle: radius; square: half side; triangle: base = height T
}

func newGeom(shape string, area, cx, cy float64) geom {
	g := geom{shape: shape, cx: cx, cy: cy}
	switch shape {
	case "circle":
		g.r = math.Sqrt(area / math.Pi)
	case "square":
		g.r = math.Sqrt(area) / 2
	case "triangle":
		g.r = triangleSide(area)
	}
	return g
}

// inside reports whether the point (x, y) lies in the shape. The triangle points up: apex at
// (cx, cy − 2T/3), base from (cx ± T/2, cy + T/3), so its centroid is (cx, cy).
func (g geom) inside(x, y float64) bool {
	dx, dy := x-g.cx, y-g.cy
	switch g.shape {
	case "circle":
		return dx*dx+dy*dy <= g.r*g.r
	case "square":
		return math.Abs(dx) <= g.r && math.Abs(dy) <= g.r
	case "triangle":
		t := dy + 2*g.r/3 // distance below the apex
		return t >= 0 && dy <= g.r/3 && math.Abs(dx) <= t/2
	}
	return false
}

// bounds is the shape's bounding box [x0, x1] × [y0, y1] in pixels.
func (g geom) bounds() (x0, y0, x1, y1 float64) {
	if g.shape == "triangle" {
		return g.cx - g.r/2, g.cy - 2*g.r/3, g.cx + g.r/2, g.cy + g.r/3
	}
	return g.cx - g.r, g.cy - g.r, g.cx + g.r, g.cy + g.r
}

// sceneGeom places the scene's shape on a w×h canvas.
func sceneGeom(s Scene, w, h int) geom {
	m := float64(min(w, h))
	return newGeom(s.Shape, NominalArea(s.Size)*m*m, s.CX*float64(w), s.CY*float64(h))
}

// Render draws the scene on a w×h canvas: the background colour, and the palette colour on every
// pixel whose centre lies in the shape. No anti-aliasing: edges are hard at full resolution. The
// latent map (Encode) averages 2×2 blocks, so what a model sees and generates is
// BlockAverage(Render(...)), whose edge blocks mix the two colours; Read handles both. Render
// panics on an invalid scene (see Scene.Validate) or a non-positive canvas size.
func Render(s Scene, w, h int) *image.RGBA {
	if err := s.Validate(); err != nil {
		panic(err)
	}
	if w <= 0 || h <= 0 {
		panic(fmt.Sprintf("toyworld: canvas %d×%d must be positive", w, h))
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	bg, fg := backgroundPalette[s.Background], shadeColor(s)
	g := sceneGeom(s, w, h)
	for y := range h {
		for x := range w {
			c := bg
			if g.inside(float64(x)+0.5, float64(y)+0.5) {
				c = fg
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// shadeColor is the scene's foreground colour: its palette colour mixed with ShadeToward by Shade,
// rounded to 8 bits.
func shadeColor(s Scene) color.RGBA {
	c := palette[s.Color]
	if s.Shade == 0 {
		return c
	}
	t := palette[s.ShadeToward]
	mix := func(a, b uint8) uint8 { return uint8(math.Round((1-s.Shade)*float64(a) + s.Shade*float64(b))) }
	return color.RGBA{mix(c.R, t.R), mix(c.G, t.G), mix(c.B, t.B), 255}
}
