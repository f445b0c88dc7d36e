package lobanb

import (
	"fmt"
	"math"
	"strings"

	"github.com/loba-dev/loba/lobanb/rundir"
)

// smooth is the bias-corrected exponential moving average of the losses (TensorBoard's smoothing).
func smooth(pts []rundir.LossPoint, weight float64) []float64 {
	out := make([]float64, len(pts))
	var avg, norm float64
	for i, p := range pts {
		avg = weight*avg + (1-weight)*p.Loss
		norm = weight*norm + (1 - weight)
		out[i] = avg / norm
	}
	return out
}

// lossSVG draws the loss curve as a self-contained SVG (no script: it draws in Jupyter, JupyterLab,
// Colab and nbconvert alike): the raw losses in light blue, their moving average in dark blue,
// the y range and the step range labelled. It is the live chart while training runs.
func lossSVG(pts []rundir.LossPoint, width, height int) string {
	const left, right, top, bottom = 56, 12, 10, 26
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`, width, height)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="white"/>`, width, height)
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%g" height="%g" fill="none" stroke="#ccc"/>`, left, top, pw, ph)
	if len(pts) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%g" fill="#888">waiting for the first step…</text></svg>`, left+8, float64(top)+ph/2)
		return b.String()
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		if !math.IsNaN(p.Loss) && !math.IsInf(p.Loss, 0) {
			lo, hi = min(lo, p.Loss), max(hi, p.Loss)
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	if hi-lo < 1e-12 {
		lo, hi = lo-0.5*math.Abs(lo)-1e-6, hi+0.5*math.Abs(hi)+1e-6
	}
	s0, s1 := pts[0].Step, pts[len(pts)-1].Step
	if s1 == s0 {
		s1 = s0 + 1
	}
	x := func(step int) float64 { return float64(left) + pw*float64(step-s0)/float64(s1-s0) }
	y := func(v float64) float64 { return float64(top) + ph*(1-(v-lo)/(hi-lo)) }
	line := func(vals func(i int) float64, color string, w float64) {
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="%g" points="`, color, w)
		for i, p := range pts {
			v := vals(i)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			fmt.Fprintf(&b, "%.1f,%.1f ", x(p.Step), y(v))
		}
		b.WriteString(`"/>`)
	}
	line(func(i int) float64 { return pts[i].Loss }, "#9ecae1", 1)
	sm := smooth(pts, 0.9)
	line(func(i int) float64 { return sm[i] }, "#08519c", 2)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%.4g</text>`, left-4, top+10, hi)
	fmt.Fprintf(&b, `<text x="%d" y="%g" text-anchor="end">%.4g</text>`, left-4, float64(top)+ph, lo)
	fmt.Fprintf(&b, `<text x="%d" y="%d">step %d</text>`, left, height-8, s0)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">step %d</text>`, width-right, height-8, pts[len(pts)-1].Step)
	fmt.Fprintf(&b, `<text x="%g" y="%d" text-anchor="middle" fill="#08519c">loss (smoothed)</text>`, float64(left)+pw/2, height-8)
	b.WriteString(`</svg>`)
	return b.String()
}
