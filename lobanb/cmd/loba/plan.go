package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/loba-dev/loba/lobanb/train"
)

// runPlan implements `loba plan PRESET [--model M] [--steps N]`: the run's memory plan from the
// model's configs alone (no weight loaded) — the parts of its memory on the CPU and on a GPU, the
// compute per step, and per device (T4, L4, A100, H100, this machine) whether it fits, the
// estimated seconds per step and what to change where it does not fit. Exit codes: 0 the plan was
// made (whether or not the run fits this machine), 2 bad preset or model.
func runPlan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "", "override model.name_or_path (a diffusers folder, a folder of configs only, or a hub id)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: loba plan [--model M] PRESET")
		fs.PrintDefaults()
	}
	p, b, ok := presetCommand("plan", fs, args, model, stderr)
	if !ok {
		return 2
	}
	plan, err := train.NewPlan(p, train.Options{Backend: b, Log: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "loba plan: %v\n", err)
		return 2
	}
	e, err := train.EstimateRun(plan)
	if err != nil {
		fmt.Fprintf(stderr, "loba plan: %v\n", err)
		return 2
	}
	devices, err := train.Devices(b)
	if err != nil {
		fmt.Fprintf(stderr, "loba plan: %v\n", err)
	}
	e.Report(stdout, devices)
	return 0
}
