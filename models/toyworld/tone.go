package toyworld

// Whole-image tone read-outs: the background's luminance and the image's colour cast.

// Rec. 709 luma coefficients (ITU-R BT.709, item 3.2), applied to the gamma-encoded values.
const (
	lumaR = 0.2126
	lumaG = 0.7152
	lumaB = 0.0722
)

// luma is the Rec. 709 luma of an RGB colour in [0, 1].
func luma(c [3]float64) float64 { return lumaR*c[0] + lumaG*c[1] + lumaB*c[2] }

// readTone sets Cast (mean B − mean R over all pixels) and BgLuminance (mean luma of the pixels
// whose weight in wts is 0; every pixel when wts is nil, BackgroundRGB's luma when none is 0).
func (r *Readout) readTone(p pixels, wts []float64) {
	var cast, lum float64
	n := 0
	for i := range p.w * p.h {
		c := p.at(i)
		cast += c[2] - c[0]
		if wts == nil || wts[i] == 0 {
			lum += luma(c)
			n++
		}
	}
	r.Cast = cast / float64(p.w*p.h)
	if n == 0 {
		r.BgLuminance = luma(r.BackgroundRGB)
		return
	}
	r.BgLuminance = lum / float64(n)
}
