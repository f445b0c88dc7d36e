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

// InNotebook reports whether the code runs in a GoNB cell (then the helpers display HTML and PNGs).
func InNotebook() bool { return gonbui.IsNotebook }

func printf(format string, args ...any) { fmt.Fprintf(Out, format, args...) }

// showHTML displays HTML in a notebook (nothing outside one).
func showHTML(h string) {
	if InNotebook() {
		gonbui.DisplayHTML(h)
	}
}

// showImage displays an image as an inline PNG in a notebook.
func showImage(img image.Image) error {
	if !InNotebook() {
		return nil
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	gonbui.DisplayPNG(buf.Bytes())
	return nil
}

// live is an output area updated in place (a progress line and chart while training); outside a
// notebook it does nothing.
type live struct{ id string }

func newLive() *live {
	if !InNotebook() {
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
