package train

import (
	"image"
	"image/color"
	"image/draw"
)

// maskEdge is the colour of a mask's outline on the preview grid.
var maskEdge = color.NRGBA{R: 255, G: 0, B: 255, A: 255}

// overlayMasks outlines, on the preview grid's rows (one per sample prompt, columns = strengths), the
// weight map W of the masked entry whose target prompt is that row's prompt: a magenta line where W,
// upsampled to the image (nearest), crosses 0.5. Rows without a masked entry are left as they are.
func overlayMasks(rows [][]image.Image, prompts []string, groups [][]entry) [][]image.Image {
	masks := map[string]entry{}
	for _, g := range groups {
		for _, e := range g {
			if e.Region.Mask != nil {
				masks[e.Target] = e
			}
		}
	}
	if len(masks) == 0 {
		return rows
	}
	for i, row := range rows {
		e, ok := masks[promptAt(prompts, i)]
		if !ok {
			continue
		}
		for j, img := range row {
			if img != nil {
				row[j] = outline(img, e.Region.Mask, e.LatentH, e.LatentW)
			}
		}
	}
	return rows
}

func promptAt(prompts []string, i int) string {
	if i < len(prompts) {
		return prompts[i]
	}
	return ""
}

// outline draws the 0.5 contour of mask [h·w] (latent cells) on a copy of img.
func outline(img image.Image, mask []float32, h, w int) image.Image {
	b := img.Bounds()
	out := image.NewNRGBA(b)
	draw.Draw(out, b, img, b.Min, draw.Src)
	inside := func(x, y int) bool {
		cy, cx := (y-b.Min.Y)*h/b.Dy(), (x-b.Min.X)*w/b.Dx()
		return mask[cy*w+cx] >= 0.5
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			in := inside(x, y)
			edge := (x+1 < b.Max.X && inside(x+1, y) != in) || (y+1 < b.Max.Y && inside(x, y+1) != in)
			if edge {
				out.Set(x, y, maskEdge)
			}
		}
	}
	return out
}
