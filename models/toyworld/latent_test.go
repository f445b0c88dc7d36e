package toyworld

import (
	"image"
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
)

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// blockConstant returns random [b, 3, h, w] values in [−1, 1], constant on 2×2 blocks.
func blockConstant(rng *rand.Rand, b, h, w int) []float32 {
	x := make([]float32, b*3*h*w)
	for n := range b * 3 {
		for y := 0; y < h; y += 2 {
			for xx := 0; xx < w; xx += 2 {
				v := float32(2*rng.Float64() - 1)
				i := (n*h+y)*w + xx
				x[i], x[i+1], x[i+w], x[i+w+1] = v, v, v, v
			}
		}
	}
	return x
}

func TestColorMapOrthonormal(t *testing.T) {
	for i := range 3 {
		for j := range 3 {
			var dot float32
			for c := range LatentChannels {
				dot += ColorMap[c][i] * ColorMap[c][j]
			}
			want := float32(0)
			if i == j {
				want = 1
			}
			require.Equal(t, want, dot, "column %d · column %d", i, j)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const b, h, w = 3, 8, 12
	x := blockConstant(rng, b, h, w)
	z, err := Encode(x, b, h, w)
	require.NoError(t, err)
	require.Len(t, z, b*LatentChannels*(h/2)*(w/2))
	y, err := Decode(z, b, h/2, w/2)
	require.NoError(t, err)
	d := maxAbsDiff(x, y)
	t.Logf("block-constant random images: max |decode(encode(x)) − x| = %.3g", d)
	require.LessOrEqual(t, d, 1e-6)

	// Rendered scenes, block-averaged: the round trip is exact to 8 bits too.
	imgs, _, _ := BatchImages(rand.New(rand.NewPCG(5, 5)), 16, 32, 32)
	var avg []image.Image
	for _, img := range imgs {
		a, err := BlockAverage(img)
		require.NoError(t, err)
		avg = append(avg, a)
	}
	x, hh, ww, err := ImagesToCHW(avg)
	require.NoError(t, err)
	z, err = Encode(x, len(avg), hh, ww)
	require.NoError(t, err)
	y, err = Decode(z, len(avg), hh/2, ww/2)
	require.NoError(t, err)
	require.LessOrEqual(t, maxAbsDiff(x, y), 1e-6)
	back, err := CHWToImages(y, len(avg), hh, ww)
	require.NoError(t, err)
	for i := range back {
		require.Equal(t, avg[i].(*image.RGBA).Pix, back[i].Pix, "image %d", i)
	}

	// Images that are not block-constant decode to their block average, clamped to [−1, 1].
	for i := range x {
		x[i] = float32(2*rng.Float64() - 1)
	}
	z, _ = Encode(x, len(avg), hh, ww)
	y, _ = Decode(z, len(avg), hh/2, ww/2)
	for i := 0; i < len(x); i += 2 * ww { // first row of each block row
		for j := i; j < i+ww; j += 2 {
			mean := (x[j] + x[j+1] + x[j+ww] + x[j+ww+1]) / 4
			require.InDelta(t, mean, y[j], 1e-6)
		}
	}

	_, err = Encode(x, 1, 7, 8)
	require.Error(t, err)
	_, err = Decode(z[:5], 1, 2, 2)
	require.Error(t, err)
}

func TestGraphMatchesHost(t *testing.T) {
	backend := testutil.Backend(t)
	rng := rand.New(rand.NewPCG(3, 3))
	const b, h, w = 2, 6, 10
	x := make([]float32, b*3*h*w)
	for i := range x {
		x[i] = float32(2*rng.Float64() - 1)
	}
	zHost, err := Encode(x, b, h, w)
	require.NoError(t, err)
	zGraph := tensors.MustCopyFlatData[float32](MustExecOnce(backend, EncodeGraph,
		tensors.FromFlatDataAndDimensions(x, b, 3, h, w)))
	require.LessOrEqual(t, maxAbsDiff(zHost, zGraph), 1e-6)

	// Scale the latents up so the clamp is exercised.
	for i := range zHost {
		zHost[i] *= 1.5
	}
	xHost, err := Decode(zHost, b, h/2, w/2)
	require.NoError(t, err)
	out := MustExecOnce(backend, DecodeGraph, tensors.FromFlatDataAndDimensions(zHost, b, LatentChannels, h/2, w/2))
	require.Equal(t, []int{b, 3, h, w}, out.Shape().Dimensions)
	xGraph := tensors.MustCopyFlatData[float32](out)
	require.LessOrEqual(t, maxAbsDiff(xHost, xGraph), 1e-6)
}

// TestChannelScale: every scaled latent channel has unit variance over the reference dataset.
func TestChannelScale(t *testing.T) {
	const n = 8192
	x, _, _ := Batch(rand.New(rand.NewPCG(1, 0)), n, 32, 32)
	z, err := Encode(x, n, 32, 32)
	require.NoError(t, err)
	hw := 16 * 16
	for c := range LatentChannels {
		var s, ss float64
		for b := range n {
			for _, v := range z[(b*LatentChannels+c)*hw : (b*LatentChannels+c+1)*hw] {
				s += float64(v)
				ss += float64(v) * float64(v)
			}
		}
		mean := s / float64(n*hw)
		std := math.Sqrt(ss/float64(n*hw) - mean*mean)
		t.Logf("channel %d: scaled mean %.4f std %.4f (ChannelScale %.4f; recomputed %.4f)", c, mean, std,
			ChannelScale[c], float64(ChannelScale[c])/std)
		require.InDelta(t, 1, std, 2e-4, "channel %d", c)
	}
}
