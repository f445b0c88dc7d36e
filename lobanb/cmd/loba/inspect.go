package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/loba-dev/loba/models/sd"
)

// runInspect implements `loba inspect [--json] [--variant V] MODEL`. Exit codes: 0 all good, 1 weight
// files that do not fit the model (each problem named), 2 usage or unreadable model.
func runInspect(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, `print every weight key as {"<component>": {"<key>": {"shape": [...], "dtype": "F32"}}}`)
	variant := fs.String("variant", "", `prefer weight files of this variant, e.g. "fp16"`)
	preset := presetFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: loba inspect [--json] [--variant fp16] [--preset c3lier] MODEL\n\n"+
			"MODEL: a diffusers folder, a component folder, a config-only folder, a single-file checkpoint\n"+
			"(SD1.5 LDM or SDXL SAI .safetensors) or a hub id org/repo[@revision].")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	dir, err := resolveModel(fs.Arg(0), *variant, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loba inspect: %v\n", err)
		return 2
	}
	rep, err := sd.Inspect(dir, sd.InspectOptions{Variant: *variant})
	if err != nil {
		fmt.Fprintf(stderr, "loba inspect: %v\n", err)
		return 2
	}
	if *preset != "" {
		return runPreset(rep, *preset, stdout, stderr)
	}
	if *asJSON {
		if err := rep.WriteJSON(stdout); err != nil {
			fmt.Fprintf(stderr, "loba inspect: %v\n", err)
			return 2
		}
		rep.WriteUnused(stderr) // stdout holds only the manifest JSON
	} else {
		rep.WriteText(stdout)
	}
	if err := rep.Err(); err != nil {
		fmt.Fprintf(stderr, "loba inspect: %v\n", err)
		return 1
	}
	return 0
}
