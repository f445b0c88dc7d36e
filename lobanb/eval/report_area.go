package eval

import "math"

// areaSums adds up the relative changes of the shape's area against strength 0 (see
// SliderReport.OffTargetAreaChange).
type areaSums struct {
	sum float64
	n   int
}

// add adds |area_s − area_0| / area_0 at every non-zero strength of s when its image at strength 0
// (index zero) has a shape; a non-finite area is left out.
func (a *areaSums) add(s Series, zero int) {
	base := s.Readouts[zero]
	if base.Empty || !(base.Area > 0) || math.IsInf(base.Area, 0) {
		return
	}
	for j, ro := range s.Readouts {
		if j == zero || math.IsNaN(ro.Area) || math.IsInf(ro.Area, 0) {
			continue
		}
		a.sum += math.Abs(ro.Area-base.Area) / base.Area
		a.n++
	}
}

// mean is the mean relative change, nil when nothing was added.
func (a *areaSums) mean() *float64 {
	if a == nil || a.n == 0 {
		return nil
	}
	m := a.sum / float64(a.n)
	return &m
}
