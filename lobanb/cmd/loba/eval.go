package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/loba-dev/loba/lobanb/eval"
	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/slider"
)

// runEval implements `loba eval PRESET --lora FILE [--model M] [--out DIR]`: the preset's eval
// section (slider effect and preservation, or erase rates) measured on a trained LoRA, written to
// DIR/eval.json and DIR/grid.png and printed as JSON.
func runEval(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	loraPath := fs.String("lora", "", "the kohya LoRA file to evaluate (required)")
	model := fs.String("model", "", "override model.name_or_path")
	out := fs.String("out", ".", "folder for eval.json and grid.png")
	positional, ok := parseInterspersed(fs, args)
	if !ok {
		return 2
	}
	if len(positional) != 1 || *loraPath == "" {
		fmt.Fprintln(stderr, "usage: loba eval PRESET --lora FILE [--model M] [--out DIR]")
		return 2
	}
	if _, ok := startBackend("eval", stderr); !ok {
		return 2
	}
	p, _, err := slider.Load(positional[0])
	if err != nil {
		fmt.Fprintf(stderr, "loba eval: %v\n", err)
		return 2
	}
	if p.Eval.Kind == "" {
		fmt.Fprintf(stderr, "loba eval: %s has no eval section (eval.kind: slider | erase)\n", positional[0])
		return 2
	}
	if *model != "" {
		p.Model.NameOrPath = *model
	}
	report, err := eval.Evaluate(rundir.Dir(*out), eval.Options{Preset: p, LoRA: *loraPath, Log: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "loba eval: %v\n", err)
		return 1
	}
	printJSON(stdout, report)
	return 0
}

// printJSON writes v as indented JSON (the commands' machine-readable reports).
func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
