package main

import (
	"io"

	"github.com/loba-dev/loba/lobanb/train"
)

// resolveModel turns a MODEL argument into a local path (train.ResolveModel; "" is the toy world).
func resolveModel(ref, variant string, progress io.Writer) (string, error) {
	return train.ResolveModel(ref, variant, progress)
}
