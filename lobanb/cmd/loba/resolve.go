package main

import (
	"io"

	"github.com/loba-dev/loba/models/sd"
)

// resolveModel turns a MODEL argument into a local path (sd.ResolveModel; "" is the toy world).
func resolveModel(ref, variant string, progress io.Writer) (string, error) {
	return sd.ResolveModel(ref, variant, progress)
}
