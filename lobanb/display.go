package lobanb

import (
	"bytes"
	"fmt"
	"html"
	"image"
	"image/png"
	"io"
	"os"

	"github.com/janpfeifer/gonb/gonbui"
)

// Out receives the helpers' plain-text output (summaries, progress lines outside a notebook).
var Out io.Writer = os.Stdout

// inNotebook reports whether the code runs in a GoNB cell (then the helpers display HTML and PNGs).
func inNotebook() bool { return gonbui.IsNotebook }

func printf(format string, args ...any) { fmt.Fprintf(Out, format, args...) }

// showHTML displays HTML in a notebook (nothing outside one).
func showHTML(h string) {
	if inNotebook() {
		gonbui.DisplayHTML(h)
	}
}

// showImage displays an image as an inline PNG in a notebook, scaled up (nearest neighbour) so
// that small grids (the toy world's 32-px images) are at least ~480 px wide.
func showImage(img image.Image) error {
	if !inNotebook() {
		return nil
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, upscale(img, 480)); err != nil {
		return err
	}
	gonbui.DisplayPNG(buf.Bytes())
	return nil
}

// upscale repeats each pixel k×k times, k = ⌈minWidth/width⌉ capped at 8 (1 for images already that
// wide), so small images show at least about minWidth pixels wide.
func upscale(img image.Image, minWidth int) image.Image {
	b := img.Bounds()
	k := min(8, max(1, (minWidth+b.Dx()-1)/max(b.Dx(), 1)))
	if k == 1 {
		return img
	}
	out := image.NewRGBA(image.Rect(0, 0, b.Dx()*k, b.Dy()*k))
	for y := 0; y < b.Dy()*k; y++ {
		for x := 0; x < b.Dx()*k; x++ {
			out.Set(x, y, img.At(b.Min.X+x/k, b.Min.Y+y/k))
		}
	}
	return out
}

// live is an output area updated in place (a progress line and chart while training); outside a
// notebook it does nothing.
type live struct{ id string }

func newLive() *live {
	if !inNotebook() {
		return nil
	}
	return &live{id: "loba_" + gonbui.UniqueId()}
}

func (l *live) update(h string) {
	if l != nil {
		gonbui.UpdateHTML(l.id, h)
	}
}

// clear empties the area (transient outputs are not saved with the notebook; the final display is).
func (l *live) clear() { l.update("") }

// pre is text as an HTML <pre> block.
func pre(s string) string { return "<pre>" + html.EscapeString(s) + "</pre>" }
