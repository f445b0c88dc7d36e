package toyworld

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
)

// The fixed latent↔RGB map that stands in for the VAE of the toy base model.
const (
	// LatentChannels is the number of latent channels.
	LatentChannels = 4
	// DownFactor is the spatial down-sampling of the latents (a 32×32 image has 16×16 latents).
	DownFactor = 2
)

// ChannelScale scales each latent channel to unit variance over the dataset (the VAE's
// scaling_factor, per channel as SD3's and Flux's latents are normalised): 1/std of each unscaled
// channel over 8192 Batch images at 32×32 drawn from rand.NewPCG(1, 0) (TestChannelScale recomputes
// it): stds 1.3905, 0.5563, 0.6081, 0.5561. One scalar (1.1685) left the chroma channels at std
// 0.65–0.71 against the luminance channel's 1.62 (it carries the black or white background), and a
// v-prediction model trained on those latents learned the background but not the colours: the loss
// weighted the chroma channels 5× less.
var ChannelScale = [LatentChannels]float32{0.7192, 1.7977, 1.6445, 1.7983}

// channelScaleColumn returns ChannelScale as a [1, 4, 1, 1] constant's values.
func channelScaleColumn() [][][][]float64 {
	out := make([][][]float64, LatentChannels)
	for c := range out {
		out[c] = [][]float64{{float64(ChannelScale[c])}}
	}
	return [][][][]float64{out}
}

// ColorMap is the 4×3 matrix M with z = S·M·rgb (S = diag(ChannelScale)): the first three columns of the 4×4
// Sylvester–Hadamard matrix divided by 2. Its columns are orthonormal (MᵀM = I₃ exactly: every entry
// is ±1/2), so Decode recovers rgb = Mᵀ·S⁻¹·z. Rows: channel 0 = (r+g+b)/2 (luminance),
// 1 = (r−g+b)/2, 2 = (r+g−b)/2, 3 = (r−g−b)/2.
var ColorMap = [LatentChannels][3]float32{
	{0.5, 0.5, 0.5},
	{0.5, -0.5, 0.5},
	{0.5, 0.5, -0.5},
	{0.5, -0.5, -0.5},
}

// colorMapRows returns ColorMap as [][]float64 for graph constants.
func colorMapRows() [][]float64 {
	m := make([][]float64, LatentChannels)
	for c := range m {
		m[c] = []float64{float64(ColorMap[c][0]), float64(ColorMap[c][1]), float64(ColorMap[c][2])}
	}
	return m
}

// Encode maps images x [B, 3, H, W] in [−1, 1] (H, W even) to latents [B, 4, H/2, W/2]: each 2×2
// block is averaged to one RGB triple, then z = S·M·rgb.
func Encode(x []float32, b, h, w int) ([]float32, error) {
	if b < 0 || h <= 0 || w <= 0 || h%DownFactor != 0 || w%DownFactor != 0 || len(x) != b*3*h*w {
		return nil, fmt.Errorf("toyworld: Encode wants [B, 3, H, W] with even H, W: B=%d H=%d W=%d and %d values", b, h, w, len(x))
	}
	lh, lw := h/DownFactor, w/DownFactor
	z := make([]float32, b*LatentChannels*lh*lw)
	for n := range b {
		for y := range lh {
			for xx := range lw {
				var rgb [3]float32
				for k := range 3 {
					i := ((n*3+k)*h+2*y)*w + 2*xx
					rgb[k] = (x[i] + x[i+1] + x[i+w] + x[i+w+1]) / 4
				}
				for c := range LatentChannels {
					v := ColorMap[c][0]*rgb[0] + ColorMap[c][1]*rgb[1] + ColorMap[c][2]*rgb[2]
					z[((n*LatentChannels+c)*lh+y)*lw+xx] = v * ChannelScale[c]
				}
			}
		}
	}
	return z, nil
}

// Decode maps latents z [B, 4, h, w] to images [B, 3, 2h, 2w] in [−1, 1]: rgb = Mᵀ·S⁻¹·z,
// nearest 2× up-sampling, clamped to [−1, 1]. Decode(Encode(x)) == x up to float32 rounding when x
// is constant on 2×2 blocks (and equals BlockAverage(x) otherwise).
func Decode(z []float32, b, h, w int) ([]float32, error) {
	if b < 0 || h <= 0 || w <= 0 || len(z) != b*LatentChannels*h*w {
		return nil, fmt.Errorf("toyworld: Decode wants [B, %d, h, w]: B=%d h=%d w=%d and %d values", LatentChannels, b, h, w, len(z))
	}
	H, W := h*DownFactor, w*DownFactor
	x := make([]float32, b*3*H*W)
	for n := range b {
		for y := range h {
			for xx := range w {
				for k := range 3 {
					var v float32
					for c := range LatentChannels {
						v += ColorMap[c][k] * z[((n*LatentChannels+c)*h+y)*w+xx] / ChannelScale[c]
					}
					v = max(-1, min(1, v))
					i := ((n*3+k)*H+2*y)*W + 2*xx
					x[i], x[i+1], x[i+W], x[i+W+1] = v, v, v, v
				}
			}
		}
	}
	return x, nil
}

// EncodeGraph is Encode on a graph: x [B, 3, H, W] (H, W even) → [B, 4, H/2, W/2], in x's dtype.
func EncodeGraph(x *Node) *Node {
	if x.Rank() != 4 || x.Shape().Dim(1) != 3 || x.Shape().Dim(2)%DownFactor != 0 || x.Shape().Dim(3)%DownFactor != 0 {
		exceptions.Panicf("toyworld.EncodeGraph: want [B, 3, H, W] with even H, W, got %s", x.Shape())
	}
	b, h, w := x.Shape().Dim(0), x.Shape().Dim(2), x.Shape().Dim(3)
	x = Reshape(x, b, 3, h/2, 2, w/2, 2) // [B, 3, h, 2, w, 2]
	x = ReduceMean(x, 3, 5)              // [B, 3, h, w]
	m := ConstAs(x, colorMapRows())      // [4, 3]
	z := Einsum("ck,bkhw->bchw", m, x)   // [B, 4, h, w]
	return Mul(z, ConstAs(z, channelScaleColumn()))
}

// DecodeGraph is Decode on a graph: z [B, 4, h, w] → [B, 3, 2h, 2w] in [−1, 1], in z's dtype.
func DecodeGraph(z *Node) *Node {
	if z.Rank() != 4 || z.Shape().Dim(1) != LatentChannels {
		exceptions.Panicf("toyworld.DecodeGraph: want [B, %d, h, w], got %s", LatentChannels, z.Shape())
	}
	b, h, w := z.Shape().Dim(0), z.Shape().Dim(2), z.Shape().Dim(3)
	z = Div(z, ConstAs(z, channelScaleColumn()))               // [B, 4, h, w]
	m := ConstAs(z, colorMapRows())                            // [4, 3]
	x := Einsum("ck,bchw->bkhw", m, z)                         // [B, 3, h, w]
	x = Reshape(x, b, 3, h, 1, w, 1)                           // [B, 3, h, 1, w, 1]
	x = BroadcastToDims(x, b, 3, h, DownFactor, w, DownFactor) // [B, 3, h, 2, w, 2]
	x = Reshape(x, b, 3, h*DownFactor, w*DownFactor)           // [B, 3, 2h, 2w]
	return ClipScalar(x, -1, 1)
}

// ImagesToCHW converts same-sized images to float32 [B, 3, H, W] in [−1, 1] (v/127.5 − 1).
func ImagesToCHW(imgs []image.Image) (x []float32, h, w int, err error) {
	if len(imgs) == 0 {
		return nil, 0, 0, nil
	}
	bounds := imgs[0].Bounds()
	h, w = bounds.Dy(), bounds.Dx()
	x = make([]float32, len(imgs)*3*h*w)
	for n, img := range imgs {
		b := img.Bounds()
		if b.Dx() != w || b.Dy() != h {
			return nil, 0, 0, fmt.Errorf("toyworld: image %d is %d×%d, image 0 is %d×%d", n, b.Dx(), b.Dy(), w, h)
		}
		for y := range h {
			for xx := range w {
				c := color.RGBAModel.Convert(img.At(b.Min.X+xx, b.Min.Y+y)).(color.RGBA)
				for k, v := range [3]uint8{c.R, c.G, c.B} {
					x[((n*3+k)*h+y)*w+xx] = float32(v)/127.5 - 1
				}
			}
		}
	}
	return x, h, w, nil
}

// CHWToImages converts float32 [B, 3, H, W] in [−1, 1] to images (values clamped, rounded to 8 bits).
func CHWToImages(x []float32, b, h, w int) ([]*image.RGBA, error) {
	if b < 0 || h <= 0 || w <= 0 || len(x) != b*3*h*w {
		return nil, fmt.Errorf("toyworld: CHWToImages wants [B, 3, H, W]: B=%d H=%d W=%d and %d values", b, h, w, len(x))
	}
	imgs := make([]*image.RGBA, b)
	to8 := func(v float32) uint8 {
		return uint8(math.Round(float64(max(0, min(255, (v+1)*127.5)))))
	}
	for n := range b {
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for xx := range w {
				i := (n*3*h+y)*w + xx
				img.SetRGBA(xx, y, color.RGBA{to8(x[i]), to8(x[i+h*w]), to8(x[i+2*h*w]), 255})
			}
		}
		imgs[n] = img
	}
	return imgs, nil
}

// BlockAverage is what the latent map makes of an image: Decode(Encode(img)), as an 8-bit image
// (every 2×2 block replaced by its mean colour). The image's width and height must be even.
func BlockAverage(img image.Image) (*image.RGBA, error) {
	x, h, w, err := ImagesToCHW([]image.Image{img})
	if err != nil {
		return nil, err
	}
	z, err := Encode(x, 1, h, w)
	if err != nil {
		return nil, err
	}
	if x, err = Decode(z, 1, h/DownFactor, w/DownFactor); err != nil {
		return nil, err
	}
	imgs, err := CHWToImages(x, 1, h, w)
	if err != nil {
		return nil, err
	}
	return imgs[0], nil
}
