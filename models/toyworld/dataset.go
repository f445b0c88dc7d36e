package toyworld

import (
	"image"
	"image/color"
	"image/draw"
	"math/rand/v2"
)

// BatchImages draws n scenes with Sample, renders each on a w×h canvas and captions it with
// Caption. For each item it consumes rng for the scene, then for the caption, so a seeded rng
// gives the same batch every time.
func BatchImages(rng *rand.Rand, n, w, h int) (images []*image.RGBA, captions []string, scenes []Scene) {
	return BatchImagesShaded(rng, n, w, h, 0)
}

// BatchImagesShaded is BatchImages with each scene drawn by SampleShaded(rng, maxShade); with
// maxShade 0 it is BatchImages.
func BatchImagesShaded(rng *rand.Rand, n, w, h int, maxShade float64) (images []*image.RGBA, captions []string, scenes []Scene) {
	images, captions, scenes = make([]*image.RGBA, n), make([]string, n), make([]Scene, n)
	for i := range n {
		scenes[i] = SampleShaded(rng, maxShade)
		captions[i] = Caption(scenes[i], rng)
		images[i] = Render(scenes[i], w, h)
	}
	return images, captions, scenes
}

// Batch is BatchImages with the images as float32 [n, 3, h, w] in [−1, 1] (v/127.5 − 1), the
// trainer's input (Encode makes the latents). It draws the same items as BatchImages from the
// same rng state.
func Batch(rng *rand.Rand, n, w, h int) (pixels []float32, captions []string, scenes []Scene) {
	return BatchShaded(rng, n, w, h, 0)
}

// BatchShaded is Batch with shaded colours (BatchImagesShaded); with maxShade 0 it is Batch.
func BatchShaded(rng *rand.Rand, n, w, h int, maxShade float64) (pixels []float32, captions []string, scenes []Scene) {
	images, captions, scenes := BatchImagesShaded(rng, n, w, h, maxShade)
	pixels = make([]float32, n*3*h*w)
	for i, img := range images {
		for y := range h {
			for x := range w {
				c := img.RGBAAt(x, y)
				for k, v := range [3]uint8{c.R, c.G, c.B} {
					pixels[((i*3+k)*h+y)*w+x] = float32(v)/127.5 - 1
				}
			}
		}
	}
	return pixels, captions, scenes
}

// Grid tiles same-sized images in rows of cols, each scaled up by an integer zoom (nearest) and
// separated by a 1-pixel grey gutter; for looking at scenes and samples.
func Grid(images []*image.RGBA, cols, zoom int) *image.RGBA {
	if len(images) == 0 || cols <= 0 || zoom <= 0 {
		return image.NewRGBA(image.Rect(0, 0, 0, 0))
	}
	w, h := images[0].Bounds().Dx()*zoom, images[0].Bounds().Dy()*zoom
	rows := (len(images) + cols - 1) / cols
	out := image.NewRGBA(image.Rect(0, 0, cols*(w+1)+1, rows*(h+1)+1))
	draw.Draw(out, out.Bounds(), image.NewUniform(color.RGBA{128, 128, 128, 255}), image.Point{}, draw.Src)
	for i, img := range images {
		x0, y0 := 1+(i%cols)*(w+1), 1+(i/cols)*(h+1)
		b := img.Bounds()
		for y := range h {
			for x := range w {
				out.SetRGBA(x0+x, y0+y, img.RGBAAt(b.Min.X+x/zoom, b.Min.Y+y/zoom))
			}
		}
	}
	return out
}
