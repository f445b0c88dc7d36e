package train

// Noise options for the initial latent and the host random number generator. NoiseOffset ports the
// offset noise of crosslabs' "Diffusion with Offset Noise" as kohya sd-scripts apply_noise_offset does it
// (without adaptive_noise_scale); multiresNoise ports kohya's pyramid_noise_like
// (library/custom_train_functions.py, after johnowhitaker's "Multi-Resolution Noise" report). kohya applies
// the offset first, then the multires noise.
//
// All randomness is drawn on the host with RNG, so that a checkpoint can store its state and a resumed
// run draws exactly the numbers the uninterrupted run would have drawn.

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
)

// RNG is the trainer's host random number generator: math/rand/v2's PCG, whose whole state is two
// uint64 words, so State/Restore reproduce the stream exactly. Not safe for concurrent use.
type RNG struct {
	pcg *rand.PCG
	r   *rand.Rand
}

// NewRNG seeds a PCG with (seed, seed ^ 0x9e3779b97f4a7c15).
func NewRNG(seed uint64) *RNG {
	pcg := rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)
	return &RNG{pcg: pcg, r: rand.New(pcg)}
}

// State returns the generator's state (PCG's binary encoding, 20 bytes).
func (g *RNG) State() []byte {
	b, err := g.pcg.MarshalBinary()
	if err != nil { // PCG.MarshalBinary never fails.
		panic(err)
	}
	return b
}

// Restore sets the state saved by State; the following draws repeat those that followed State().
func (g *RNG) Restore(state []byte) error {
	if err := g.pcg.UnmarshalBinary(state); err != nil {
		return fmt.Errorf("train: restoring the RNG state (%d bytes): %w", len(state), err)
	}
	return nil
}

// Float64 is uniform in [0, 1) (Python's random.random()).
func (g *RNG) Float64() float64 { return g.r.Float64() }

// IntN is uniform in [0, n); it panics if n <= 0.
func (g *RNG) IntN(n int) int { return g.r.IntN(n) }

// Normal returns n standard normal values (rand.NormFloat64 rounded to float32).
func (g *RNG) Normal(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(g.r.NormFloat64())
	}
	return out
}

// noiseOffset returns noise + offset·rngNoise: noise [B, C, H, W] and rngNoise [B, C, 1, 1] standard
// normal, one shift per sample and channel (kohya apply_noise_offset without adaptive_noise_scale).
func noiseOffset(noise *Node, offset float64, rngNoise *Node) *Node {
	noise.AssertRank(4)
	b, c := noise.Shape().Dim(0), noise.Shape().Dim(1)
	rngNoise.AssertDims(b, c, 1, 1)
	return Add(noise, MulScalar(ConvertDType(rngNoise, noise.DType()), offset)) // [B, C, H, W]
}

// noiseOffsetHost is NoiseOffset on a flat [B, C, H, W] slice, in place; rngNoise has B·C values.
func noiseOffsetHost(noise []float32, b, c, h, w int, offset float64, rngNoise []float32) error {
	if len(noise) != b*c*h*w || len(rngNoise) != b*c {
		return fmt.Errorf("train: NoiseOffsetHost: noise has %d values and rngNoise %d, want %d and %d for [%d, %d, %d, %d]",
			len(noise), len(rngNoise), b*c*h*w, b*c, b, c, h, w)
	}
	for i := range noise {
		noise[i] += float32(offset) * rngNoise[i/(h*w)]
	}
	return nil
}

// multiresInputs draws what pyramid_noise_like draws, in its order: for i in 0..iterations-1, the ratio
// r = Float64()·2 + 2, the level size (max(1, ⌊H/rⁱ⌋), max(1, ⌊W/rⁱ⌋)) and B·C·h_i·w_i standard
// normals; it stops after a level with a side of 1, as kohya's loop breaks there. (Level 0 is always
// full size: r⁰ = 1.) normals[i] is [B, C, sizes[i][0], sizes[i][1]] in row-major order.
func multiresInputs(g *RNG, b, c, h, w, iterations int) (sizes [][2]int, normals [][]float32) {
	for i := 0; i < iterations; i++ {
		r := g.Float64()*2 + 2
		ri := math.Pow(r, float64(i))
		hn, wn := max(1, int(float64(h)/ri)), max(1, int(float64(w)/ri))
		sizes = append(sizes, [2]int{hn, wn})
		normals = append(normals, g.Normal(b*c*hn*wn))
		if hn == 1 || wn == 1 {
			break
		}
	}
	return sizes, normals
}

// multiresNoise ports kohya's pyramid_noise_like(noise, iterations, discount):
//
//	noise += Σ_i upsample_bilinear(extra[i], (H, W)) · discountⁱ
//	return noise / noise.std()
//
// noise is [B, C, H, W]; extra[i] is the standard normal [B, C, h_i, w_i] of level i (see
// multiresInputs), with 1 <= len(extra) <= iterations (fewer when the pyramid reached a side of 1).
// The upsampling is torch.nn.Upsample(mode="bilinear"), i.e. align_corners=False (half-pixel centres,
// edge clamping); std is torch's unbiased std over the whole tensor, batch included. iterations == 0
// returns noise unchanged (kohya does not call it then). Forward only: it is input noise.
func multiresNoise(noise *Node, iterations int, discount float64, extra []*Node) *Node {
	if iterations == 0 {
		return noise
	}
	noise.AssertRank(4)
	if len(extra) < 1 || len(extra) > iterations {
		exceptions.Panicf("train: MultiresNoise: %d levels of noise for %d iterations", len(extra), iterations)
	}
	dims := noise.Shape().Dimensions
	bSize, cSize, hSize, wSize := dims[0], dims[1], dims[2], dims[3]
	out := noise
	for i, e := range extra {
		e.AssertRank(4)
		if e.Shape().Dim(0) != bSize || e.Shape().Dim(1) != cSize || e.Shape().Dim(2) > hSize || e.Shape().Dim(3) > wSize {
			exceptions.Panicf("train: MultiresNoise: level %d is %s, want [%d, %d, <=%d, <=%d]",
				i, e.Shape(), bSize, cSize, hSize, wSize)
		}
		e = ConvertDType(e, noise.DType())
		up := Interpolate(e, -1, -1, hSize, wSize).Bilinear().Done() // [B, C, H, W]
		out = Add(out, MulScalar(up, math.Pow(discount, float64(i))))
	}
	return Div(out, unbiasedStd(out))
}

// unbiasedStd is torch.std(x) over all elements (Bessel-corrected), as a scalar.
func unbiasedStd(x *Node) *Node {
	n := x.Shape().Size()
	mean := ReduceAllMean(x)
	ss := ReduceAllSum(Square(Sub(x, mean)))
	return Sqrt(DivScalar(ss, float64(n-1)))
}

// multiresNoiseHost is multiresNoise on host slices: noise [B, C, H, W] is modified in place; sizes and
// normals as returned by multiresInputs.
func multiresNoiseHost(noise []float32, b, c, h, w, iterations int, discount float64, sizes [][2]int, normals [][]float32) error {
	if iterations == 0 {
		return nil
	}
	if len(noise) != b*c*h*w {
		return fmt.Errorf("train: MultiresNoiseHost: noise has %d values, want %d", len(noise), b*c*h*w)
	}
	if len(sizes) < 1 || len(sizes) > iterations || len(normals) != len(sizes) {
		return fmt.Errorf("train: MultiresNoiseHost: %d sizes and %d levels for %d iterations", len(sizes), len(normals), iterations)
	}
	for i, sz := range sizes {
		if len(normals[i]) != b*c*sz[0]*sz[1] || sz[0] > h || sz[1] > w || sz[0] < 1 || sz[1] < 1 {
			return fmt.Errorf("train: MultiresNoiseHost: level %d has %d values for size %v (noise %dx%d)", i, len(normals[i]), sz, h, w)
		}
		up := upsampleBilinear(normals[i], b*c, sz[0], sz[1], h, w)
		d := float32(math.Pow(discount, float64(i)))
		for j := range noise {
			noise[j] += up[j] * d
		}
	}
	var mean, ss float64
	for _, v := range noise {
		mean += float64(v)
	}
	mean /= float64(len(noise))
	for _, v := range noise {
		ss += (float64(v) - mean) * (float64(v) - mean)
	}
	std := float32(math.Sqrt(ss / float64(len(noise)-1)))
	for j := range noise {
		noise[j] /= std
	}
	return nil
}

// upsampleBilinear is torch's upsample_bilinear2d with align_corners=False on n planes [hi, wi] → [ho, wo].
func upsampleBilinear(x []float32, n, hi, wi, ho, wo int) []float32 {
	type tap struct {
		i0, i1 int
		l0, l1 float32
	}
	taps := func(in, out int) []tap {
		t := make([]tap, out)
		scale := float32(in) / float32(out)
		for o := range t {
			src := max(scale*(float32(o)+0.5)-0.5, 0)
			i0 := int(src)
			i1 := i0
			if i0 < in-1 {
				i1 = i0 + 1
			}
			l1 := src - float32(i0)
			t[o] = tap{i0, i1, 1 - l1, l1}
		}
		return t
	}
	th, tw := taps(hi, ho), taps(wi, wo)
	out := make([]float32, n*ho*wo)
	for p := 0; p < n; p++ {
		src := x[p*hi*wi:]
		dst := out[p*ho*wo:]
		for y, ty := range th {
			for xx, tx := range tw {
				dst[y*wo+xx] = ty.l0*(tx.l0*src[ty.i0*wi+tx.i0]+tx.l1*src[ty.i0*wi+tx.i1]) +
					ty.l1*(tx.l0*src[ty.i1*wi+tx.i0]+tx.l1*src[ty.i1*wi+tx.i1])
			}
		}
	}
	return out
}

// Rand is the generator as a *rand.Rand (its state is the RNG's: State/Restore cover it).
func (g *RNG) Rand() *rand.Rand { return g.r }
