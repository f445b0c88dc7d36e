package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/loba-dev/loba/models/sd"
)

// inspectFlags are the flags of `loba inspect`.
type inspectFlags struct {
	asJSON          bool
	variant, preset string
}

// newInspectCmd is `loba inspect [--json] [--variant V] [--preset P] MODEL`.
func newInspectCmd(stdout, stderr io.Writer) *cobra.Command {
	var o inspectFlags
	cmd := &cobra.Command{
		Use:   "inspect MODEL",
		Short: "list a model's components, parameter counts and weight keys; validate its weight files",
		Long: `Lists a model's components with their parameter counts and, when the weights are there, checks
that every weight file fits the model (each problem named by file and key). A hub id is
downloaded into the Hugging Face cache first. Exit code 1 when weight files do not fit the
model, 2 when the model cannot be read.`,
		Example: `  loba inspect ~/models/stable-diffusion-v1-5
  loba inspect --json stabilityai/stable-diffusion-xl-base-1.0@main > keys.json
  loba inspect v1-5-pruned-emaonly.safetensors
  loba inspect --preset c3lier ~/models/stable-diffusion-v1-5`,
		Args: exactArgs("MODEL"),
	}
	cmd.RunE = commandBody(nil, func(args []string) int { return runInspect(args[0], o, stdout, stderr) })
	f := cmd.Flags()
	f.BoolVar(&o.asJSON, "json", false, `print every weight key as {"<component>": {"<key>": {"shape": [...], "dtype": "F32"}}}`)
	f.StringVar(&o.variant, "variant", "", "prefer weight files of this `VARIANT`, e.g. fp16")
	presetFlag(f, &o.preset)
	return cmd
}

// runInspect implements `loba inspect`. Exit codes: 0 all good, 1 weight files that do not fit
// the model (each problem named), 2 unreadable model.
func runInspect(model string, o inspectFlags, stdout, stderr io.Writer) int {
	dir, err := resolveModel(model, o.variant, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loba inspect: %v\n", err)
		return 2
	}
	rep, err := sd.Inspect(dir, sd.InspectOptions{Variant: o.variant})
	if err != nil {
		fmt.Fprintf(stderr, "loba inspect: %v\n", err)
		return 2
	}
	if o.preset != "" {
		return runPreset(rep, o.preset, stdout, stderr)
	}
	if o.asJSON {
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
