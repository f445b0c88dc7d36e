package eval

import (
	"image"

	"github.com/loba-dev/loba/models/toyworld"
)

// Readout is what a reader measures on one image: the toy world's read-out.
type Readout = toyworld.Readout

// Reader reads the attributes of one image.
type Reader func(img image.Image) Readout

// defaultReader is the toy world's exact read-out.
var defaultReader Reader = toyworld.Read
