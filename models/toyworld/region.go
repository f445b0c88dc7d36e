package toyworld

// Exact region masks: where the scenes a prompt can describe may paint their shape.

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Region names of RegionMask.
const (
	RegionForeground = "foreground"
	RegionBackground = "background"
)

// regionEps widens every region test, in pixels, so float rounding never drops a pixel Render
// paints (the mask may only err on the side of covering more).
const regionEps = 1e-9

// RegionMask returns the w×h mask (row-major, h rows of w values) of a region of every scene the
// prompt can describe. The prompt is parsed with Parse; an attribute it leaves open covers every
// class (only shape and size change where the shape lies). Region "foreground" is 1 on every pixel
// that Render(s, w, h) paints with the shape for some scene s matching the prompt, whatever its
// centre within Sample's jitter range (±Jitter per axis), and 0 elsewhere; "background" is its
// complement. The union is exact: each shape class placed anywhere in the jitter rectangle sweeps
// the Minkowski sum of the shape and that rectangle, tested at pixel centres as Render does.
//
// The mask is binary at the canvas resolution; for the latent grid, compute it at the image size
// and area-average it (2×2 blocks for the toy latent map), which gives fractions in [0, 1]. Errors
// name the prompt or the region: an unknown region, a non-positive size, or a word that is not in
// the toy world's Vocabulary (a typo would otherwise widen the mask to every shape silently).
func RegionMask(prompt, region string, w, h int) ([]float32, error) {
	if region != RegionForeground && region != RegionBackground {
		return nil, fmt.Errorf("toyworld: RegionMask(%q): region %q is not one of %s, %s", prompt, region, RegionForeground, RegionBackground)
	}
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("toyworld: RegionMask(%q, %q): canvas %d×%d must be positive", prompt, region, w, h)
	}
	if err := checkVocabulary(prompt); err != nil {
		return nil, fmt.Errorf("toyworld: RegionMask(%q, %q): %w", prompt, region, err)
	}
	attrs := Parse(prompt)
	var reaches []reach
	for _, shape := range classesOrAll(attrs, AttrShape) {
		for _, size := range classesOrAll(attrs, AttrSize) {
			reaches = append(reaches, reachOf(shape, size, w, h))
		}
	}
	in, out := float32(1), float32(0)
	if region == RegionBackground {
		in, out = 0, 1
	}
	mask := make([]float32, w*h)
	for y := range h {
		for x := range w {
			px, py := float64(x)+0.5, float64(y)+0.5
			mask[y*w+x] = out
			if slices.ContainsFunc(reaches, func(r reach) bool { return r.contains(px, py) }) {
				mask[y*w+x] = in
			}
		}
	}
	return mask, nil
}

// checkVocabulary reports the first word of prompt that no caption can contain.
func checkVocabulary(prompt string) error {
	vocab := Vocabulary()
	for _, w := range splitWords(prompt) {
		if _, found := slices.BinarySearch(vocab, w); !found {
			return fmt.Errorf("word %q is not in the toy world's vocabulary (%s)", w, strings.Join(vocab, ", "))
		}
	}
	return nil
}

// classesOrAll is the class the prompt names for attr, or every class of attr when it names none.
func classesOrAll(attrs map[string]string, attr string) []string {
	if c, ok := attrs[attr]; ok {
		return []string{c}
	}
	return Values(attr)
}

// reach is the set of points one shape class covers at some centre within the jitter rectangle:
// for a circle, the points within r of the rectangle of centres; for a polygon, the convex hull of
// its vertices placed at the rectangle's four corners.
type reach struct {
	circle         bool
	r              float64      // circle radius
	x0, y0, x1, y1 float64      // circle: the rectangle of centres
	hull           [][2]float64 // polygon: the hull, counter-clockwise (x right, y up)
}

// reachOf places the shape (of the size) at the four corners of Sample's jitter range on a w×h
// canvas, through sceneGeom, the geometry Render uses.
func reachOf(shape, size string, w, h int) reach {
	var corners []geom
	for _, jy := range []float64{-Jitter, Jitter} {
		for _, jx := range []float64{-Jitter, Jitter} {
			s := Scene{Shape: shape, Size: size, CX: 0.5 + jx, CY: 0.5 + jy + centroidDrop(shape, size)}
			corners = append(corners, sceneGeom(s, w, h))
		}
	}
	if shape == "circle" {
		lo, hi := corners[0], corners[3]
		return reach{circle: true, r: lo.r, x0: lo.cx, y0: lo.cy, x1: hi.cx, y1: hi.cy}
	}
	var pts [][2]float64
	for _, g := range corners {
		pts = append(pts, g.vertices()...)
	}
	return reach{hull: convexHull(pts)}
}

// contains reports whether the point (x, y) lies in the reach (widened by regionEps).
func (r reach) contains(x, y float64) bool {
	if r.circle {
		dx := x - min(max(x, r.x0), r.x1)
		dy := y - min(max(y, r.y0), r.y1)
		return math.Hypot(dx, dy) <= r.r+regionEps
	}
	n := len(r.hull)
	for i, a := range r.hull {
		b := r.hull[(i+1)%n]
		ex, ey := b[0]-a[0], b[1]-a[1]
		if ex*(y-a[1])-ey*(x-a[0]) < -regionEps*math.Hypot(ex, ey) {
			return false
		}
	}
	return true
}

// vertices lists a polygon's corners (none for a circle): see geom.inside for the triangle's.
func (g geom) vertices() [][2]float64 {
	switch g.shape {
	case "square":
		return [][2]float64{{g.cx - g.r, g.cy - g.r}, {g.cx + g.r, g.cy - g.r}, {g.cx + g.r, g.cy + g.r}, {g.cx - g.r, g.cy + g.r}}
	case "triangle":
		return [][2]float64{{g.cx, g.cy - 2*g.r/3}, {g.cx - g.r/2, g.cy + g.r/3}, {g.cx + g.r/2, g.cy + g.r/3}}
	}
	return nil
}

// convexHull is the convex hull of pts, counter-clockwise (x right, y up), by Andrew's monotone
// chain (A. M. Andrew, "Another efficient algorithm for convex hulls in two dimensions", 1979).
func convexHull(pts [][2]float64) [][2]float64 {
	pts = slices.Clone(pts)
	sort.Slice(pts, func(i, j int) bool {
		return pts[i][0] < pts[j][0] || pts[i][0] == pts[j][0] && pts[i][1] < pts[j][1]
	})
	cross := func(o, a, b [2]float64) float64 { return (a[0]-o[0])*(b[1]-o[1]) - (a[1]-o[1])*(b[0]-o[0]) }
	var hull [][2]float64
	for pass := range 2 { // lower chain left to right, then upper chain right to left
		start := len(hull)
		for k := range pts {
			p := pts[k]
			if pass == 1 {
				p = pts[len(pts)-1-k]
			}
			for len(hull) >= start+2 && cross(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
				hull = hull[:len(hull)-1]
			}
			hull = append(hull, p)
		}
		hull = hull[:len(hull)-1] // the chain's last point starts the other chain
	}
	return hull
}
