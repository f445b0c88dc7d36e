package toyworld

import (
	"fmt"
	"image"
	"image/color"
	"math"
)

// Read-out constants (RGB in [0, 1] units).
const (
	// minContrast: an image whose farthest pixel is nearer than this to the background has no
	// foreground (Readout.Empty).
	minContrast = 0.3
	// coreFraction: pixels at least this fraction of the largest background distance form the core
	// whose mean is the foreground colour.
	coreFraction = 0.7
	// weightCutoff: pixels whose foreground weight (see Readout.Area) is at or below this count as
	// background; it removes background noise without biasing the 2×2-averaged edges (≥ 0.25).
	weightCutoff = 0.2
	// templateSubsamples: per-axis subsamples per pixel when rendering shape templates.
	templateSubsamples = 4
	// Confidence bounds.
	maxBackgroundDist = 0.35 // border mean to the nearest background colour
	maxColorDist      = 0.3  // core mean to the segment background → palette colour
	maxShapeError     = 0.5  // template error per unit area of the best shape
	minShapeMargin    = 1.3  // second-best / best template error
)

// Readout is what Read measures in an image. Attribute classes are "" when the image has no
// foreground (Empty).
type Readout struct {
	// Background is the background class nearest (in RGB) to the mean of the outermost pixel ring.
	Background string
	// Color is the palette colour c whose segment background→c passes nearest to the mean of the
	// foreground's core (the pixels farthest from the background), so colours washed out towards
	// the background still read as their hue.
	Color string
	// Area is the foreground fraction of the canvas: Σ weights/(w·h). A pixel's weight is its
	// position between the background colour b and the foreground colour f, ⟨p−b, f−b⟩/|f−b|²
	// clamped to [0, 1] (0 when ≤ 0.2), so a 2×2-averaged edge block counts its covered fraction and
	// the area is unchanged by the latent map.
	Area float64
	// Size is the size class by the area as a fraction of min(w, h)², with thresholds halfway
	// between the classes' nominal areas (SizeThresholds).
	Size string
	// Shape is the shape class whose template (same area and centroid, rendered with 4×4
	// subsamples, sharp or blurred by a 3×3 box, whichever fits better; both compared after 2×2
	// block averaging when w and h are even) is nearest in L2 to the foreground weights.
	Shape string
	// ShapeError is the template error per unit area for each shape, in Shapes() order.
	ShapeError []float64
	// CX, CY is the weighted centroid of the foreground, as fractions of the width and height.
	CX, CY float64
	// Hue is the chroma- and weight-weighted circular mean hue of the foreground, in degrees in
	// [−60, 300): red 0, yellow 60, green 120, blue 240, magenta −60.
	Hue float64
	// RGB is the foreground colour (mean of the core) in [0, 1]; BackgroundRGB the border mean.
	RGB, BackgroundRGB [3]float64
	// BgLuminance is the mean Rec. 709 luma Y' = 0.2126 R + 0.7152 G + 0.0722 B (on the stored,
	// gamma-encoded values in [0, 1]; no linearisation) of the background pixels: those whose
	// foreground weight (see Area) is 0. It is the mean over all pixels when the image is Empty, and
	// the luma of BackgroundRGB when no pixel is background. White 1, black 0.
	BgLuminance float64
	// Cast is the whole image's colour cast, mean(B) − mean(R) over every pixel, in [−1, 1]: it rises
	// when the image is tinted blue or cyan and falls when tinted red or yellow; a plain white,
	// grey or black image reads 0 (a red shape on it pulls the cast below 0 by its area).
	Cast float64
	// Empty: no pixel differs from the background by minContrast (0.3 in RGB [0, 1] units).
	Empty bool
	// Confident: background, colour and shape each fit their class well (see the constants).
	Confident bool
}

// SizeThresholds are the area fractions (of min(w, h)²) separating small|medium and medium|large:
// halfway between the nominal areas, (0.0491+0.1296)/2 = 0.0894 and (0.1296+0.2485)/2 = 0.1891.
func SizeThresholds() [2]float64 {
	return [2]float64{
		(NominalArea("small") + NominalArea("medium")) / 2,
		(NominalArea("medium") + NominalArea("large")) / 2,
	}
}

// SizeOf classifies an area fraction (of min(w, h)²) into a size class.
func SizeOf(areaFraction float64) string {
	t := SizeThresholds()
	switch {
	case areaFraction < t[0]:
		return "small"
	case areaFraction < t[1]:
		return "medium"
	}
	return "large"
}

// Read measures the attributes of any RGB image (rendered, block-averaged, noisy or generated).
func Read(img image.Image) Readout {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	px := make([]float64, 3*w*h)
	for y := range h {
		for x := range w {
			i := 3 * (y*w + x)
			if rgba, ok := img.(*image.RGBA); ok {
				c := rgba.RGBAAt(b.Min.X+x, b.Min.Y+y)
				px[i], px[i+1], px[i+2] = float64(c.R)/255, float64(c.G)/255, float64(c.B)/255
				continue
			}
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			px[i], px[i+1], px[i+2] = float64(r)/0xffff, float64(g)/0xffff, float64(bl)/0xffff
		}
	}
	return read(px, w, h)
}

// ReadCHW measures one image given as float32 [3, H, W] in [−1, 1] (a decoded sample), without
// rounding to 8 bits.
func ReadCHW(x []float32, h, w int) (Readout, error) {
	if h <= 0 || w <= 0 || len(x) != 3*h*w {
		return Readout{}, fmt.Errorf("toyworld: ReadCHW wants [3, %d, %d] = %d values, got %d", h, w, 3*h*w, len(x))
	}
	px := make([]float64, 3*w*h)
	for c := range 3 {
		for i := range h * w {
			px[3*i+c] = (float64(x[c*h*w+i]) + 1) / 2
		}
	}
	return read(px, w, h), nil
}

// ReadBatch measures a batch x [B, 3, H, W] in [−1, 1] (e.g. Decode's output), one Readout per image.
func ReadBatch(x []float32, b, h, w int) ([]Readout, error) {
	if b < 0 || h <= 0 || w <= 0 || len(x) != b*3*h*w {
		return nil, fmt.Errorf("toyworld: ReadBatch wants [B, 3, H, W]: B=%d H=%d W=%d and %d values", b, h, w, len(x))
	}
	out := make([]Readout, b)
	for n := range b {
		out[n], _ = ReadCHW(x[n*3*h*w:(n+1)*3*h*w], h, w)
	}
	return out, nil
}

func dist3(a, b [3]float64) float64 {
	return math.Sqrt((a[0]-b[0])*(a[0]-b[0]) + (a[1]-b[1])*(a[1]-b[1]) + (a[2]-b[2])*(a[2]-b[2]))
}

// unitRGB is c's RGB in [0, 1].
func unitRGB(c color.RGBA) [3]float64 {
	return [3]float64{float64(c.R) / 255, float64(c.G) / 255, float64(c.B) / 255}
}

// segmentDist is the distance from p to the segment a→c.
func segmentDist(p, a, c [3]float64) float64 {
	var d, pa [3]float64
	dd, t := 0.0, 0.0
	for k := range 3 {
		d[k], pa[k] = c[k]-a[k], p[k]-a[k]
		dd += d[k] * d[k]
		t += pa[k] * d[k]
	}
	t = math.Max(0, math.Min(1, t/dd))
	return dist3(p, [3]float64{a[0] + t*d[0], a[1] + t*d[1], a[2] + t*d[2]})
}

// pixels is an image as RGB in [0, 1], row-major [H, W, 3].
type pixels struct {
	v    []float64
	w, h int
}

func (p pixels) at(i int) [3]float64 { return [3]float64{p.v[3*i], p.v[3*i+1], p.v[3*i+2]} }

// read does the work on pixels px [H, W, 3] in [0, 1].
func read(px []float64, w, h int) Readout {
	p := pixels{px, w, h}
	var r Readout
	bgDist := r.readBackground(p)
	colorDist, ok := r.readColor(p)
	if !ok {
		r.Empty = true
		r.readTone(p, nil)
		return r
	}
	wts, sum := r.readWeights(p)
	r.readTone(p, wts)
	best, second := r.readShape(wts, sum, w, h)
	r.Confident = bgDist <= maxBackgroundDist && colorDist <= maxColorDist &&
		best <= maxShapeError && second >= minShapeMargin*best
	return r
}

// readBackground sets BackgroundRGB (the outermost ring's mean) and Background (the nearest
// background class); it returns the distance between them.
func (r *Readout) readBackground(p pixels) float64 {
	n := 0
	for y := range p.h {
		for x := range p.w {
			if x == 0 || y == 0 || x == p.w-1 || y == p.h-1 {
				c := p.at(y*p.w + x)
				for k := range 3 {
					r.BackgroundRGB[k] += c[k]
				}
				n++
			}
		}
	}
	for k := range 3 {
		r.BackgroundRGB[k] /= float64(n)
	}
	bgDist := math.Inf(1)
	for _, name := range backgroundNames {
		if d := dist3(r.BackgroundRGB, unitRGB(backgroundPalette[name])); d < bgDist {
			bgDist, r.Background = d, name
		}
	}
	return bgDist
}

// readColor sets RGB (the mean of the core, the pixels farthest from the background) and Color;
// it returns the colour's distance to its class, and false when no pixel stands out.
func (r *Readout) readColor(p pixels) (float64, bool) {
	dist := make([]float64, p.w*p.h)
	maxDist := 0.0
	for i := range dist {
		dist[i] = dist3(p.at(i), r.BackgroundRGB)
		maxDist = math.Max(maxDist, dist[i])
	}
	if maxDist < minContrast {
		return 0, false
	}
	n := 0
	for i, d := range dist {
		if d >= coreFraction*maxDist {
			c := p.at(i)
			for k := range 3 {
				r.RGB[k] += c[k]
			}
			n++
		}
	}
	for k := range 3 {
		r.RGB[k] /= float64(n)
	}
	colorDist := math.Inf(1)
	for _, name := range colorNames {
		if d := segmentDist(r.RGB, r.BackgroundRGB, unitRGB(palette[name])); d < colorDist {
			colorDist, r.Color = d, name
		}
	}
	return colorDist, true
}

// readWeights computes the foreground weights and sets Area, Size, CX, CY and Hue; it returns the
// weights and their sum (the area in pixels, > 0: the core's mean weight is 1).
func (r *Readout) readWeights(p pixels) (wts []float64, sum float64) {
	bg, fg := r.BackgroundRGB, r.RGB
	var dir [3]float64
	dd := 0.0
	for k := range 3 {
		dir[k] = fg[k] - bg[k]
		dd += dir[k] * dir[k]
	}
	wts = make([]float64, p.w*p.h)
	var sx, sy, hs, hc float64
	for y := range p.h {
		for x := range p.w {
			i := y*p.w + x
			c := p.at(i)
			t := ((c[0]-bg[0])*dir[0] + (c[1]-bg[1])*dir[1] + (c[2]-bg[2])*dir[2]) / dd
			if t <= weightCutoff {
				continue
			}
			t = math.Min(t, 1)
			wts[i] = t
			sum += t
			sx += t * (float64(x) + 0.5)
			sy += t * (float64(y) + 0.5)
			hue, chroma := hueChroma(c)
			hs += t * chroma * math.Sin(hue)
			hc += t * chroma * math.Cos(hue)
		}
	}
	m := float64(min(p.w, p.h))
	r.Area = sum / float64(p.w*p.h)
	r.Size = SizeOf(sum / (m * m))
	r.CX, r.CY = sx/sum/float64(p.w), sy/sum/float64(p.h)
	r.Hue = math.Atan2(hs, hc) * 180 / math.Pi
	if r.Hue < -60 {
		r.Hue += 360
	}
	return wts, sum
}

// readShape sets Shape and ShapeError by template matching at the weights' area and centroid; it
// returns the best and second-best errors.
func (r *Readout) readShape(wts []float64, sum float64, w, h int) (best, second float64) {
	cx, cy := r.CX*float64(w), r.CY*float64(h)
	r.ShapeError = make([]float64, len(shapeNames))
	obs := blockAverage(wts, w, h)
	best, second = math.Inf(1), math.Inf(1)
	for k, shape := range shapeNames {
		sharp, box := template(newGeom(shape, sum, cx, cy), w, h)
		e := math.Inf(1)
		for _, tmpl := range [][]float64{blockAverage(sharp, w, h), blockAverage(boxBlur3(sharp, w, h, box), w, h)} {
			ek := 0.0
			for i := range obs {
				ek += (obs[i] - tmpl[i]) * (obs[i] - tmpl[i])
			}
			e = min(e, ek)
		}
		// Normalise by the block area so the error reads as a fraction of the shape's area.
		e = e * float64(len(wts)) / float64(len(obs)) / sum
		r.ShapeError[k] = e
		if e < best {
			best, second, r.Shape = e, best, shape
		} else if e < second {
			second = e
		}
	}
	return best, second
}

// hueChroma returns the hue (radians) and chroma (max − min) of an RGB colour in [0, 1].
func hueChroma(p [3]float64) (hue, chroma float64) {
	mx := math.Max(p[0], math.Max(p[1], p[2]))
	mn := math.Min(p[0], math.Min(p[1], p[2]))
	chroma = mx - mn
	if chroma == 0 {
		return 0, 0
	}
	var h float64
	switch mx {
	case p[0]:
		h = (p[1] - p[2]) / chroma
	case p[1]:
		h = (p[2]-p[0])/chroma + 2
	default:
		h = (p[0]-p[1])/chroma + 4
	}
	return h * math.Pi / 3, chroma
}

// template renders g's coverage (fraction of templateSubsamples² subsamples inside) on a w×h grid;
// r bounds the pixels it may have set.
func template(g geom, w, h int) (out []float64, r image.Rectangle) {
	out = make([]float64, w*h)
	bx0, by0, bx1, by1 := g.bounds()
	r = image.Rect(int(bx0)-1, int(by0)-1, int(bx1)+2, int(by1)+2).Intersect(image.Rect(0, 0, w, h))
	const s = templateSubsamples
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			fx, fy := float64(x), float64(y)
			if g.inside(fx, fy) && g.inside(fx+1, fy) && g.inside(fx, fy+1) && g.inside(fx+1, fy+1) {
				out[y*w+x] = 1 // convex shape: all corners inside means the whole pixel is
				continue
			}
			c := 0
			for j := range s {
				for i := range s {
					if g.inside(float64(x)+(float64(i)+0.5)/s, float64(y)+(float64(j)+0.5)/s) {
						c++
					}
				}
			}
			out[y*w+x] = float64(c) / (s * s)
		}
	}
	return out, r
}

// boxBlur3 is v convolved with a 3×3 box (zero outside the w×h map), so soft-edged (generated or
// blurred) shapes still match their template. v must be zero outside the pixel rectangle r; the
// work is limited to r grown by one pixel. It is separable: rows, then columns.
func boxBlur3(v []float64, w, h int, r image.Rectangle) []float64 {
	r = image.Rect(r.Min.X-1, r.Min.Y-1, r.Max.X+1, r.Max.Y+1).Intersect(image.Rect(0, 0, w, h))
	rows, out := make([]float64, len(v)), make([]float64, len(v))
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			s := v[y*w+x]
			if x > 0 {
				s += v[y*w+x-1]
			}
			if x < w-1 {
				s += v[y*w+x+1]
			}
			rows[y*w+x] = s
		}
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			s := rows[y*w+x]
			if y > 0 {
				s += rows[(y-1)*w+x]
			}
			if y < h-1 {
				s += rows[(y+1)*w+x]
			}
			out[y*w+x] = s / 9
		}
	}
	return out
}

// blockAverage averages 2×2 blocks of a w×h map when w and h are even (the latent map's
// resolution); otherwise it returns the map unchanged.
func blockAverage(v []float64, w, h int) []float64 {
	if w%2 != 0 || h%2 != 0 {
		return v
	}
	out := make([]float64, (w/2)*(h/2))
	for y := range h / 2 {
		for x := range w / 2 {
			i := 2*y*w + 2*x
			out[y*(w/2)+x] = (v[i] + v[i+1] + v[i+w] + v[i+w+1]) / 4
		}
	}
	return out
}
