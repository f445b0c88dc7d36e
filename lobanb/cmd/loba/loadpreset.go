package main

import (
	"fmt"
	"io"

	"github.com/gomlx/compute"

	"github.com/loba-dev/loba/lobanb/slider"
)

// loadPreset starts the backend of a command that takes a PRESET (the "backend:" first line),
// loads the preset (printing what an import could not carry over) and applies --model (model, when
// not empty). ok false: the error is printed, the command exits 2.
func loadPreset(cmd, path, model string, stderr io.Writer) (*slider.Preset, compute.Backend, bool) {
	b, ok := startBackend(cmd, stderr)
	if !ok {
		return nil, nil, false
	}
	p, warnings, err := slider.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "loba %s: %v\n", cmd, err)
		return nil, nil, false
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "loba %s: warning: %s\n", cmd, w)
	}
	if model != "" {
		p.Model.NameOrPath = model
	}
	return p, b, true
}
