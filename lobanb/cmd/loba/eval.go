package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/loba-dev/loba/lobanb/eval"
	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/train"
)

// evalFlags are the flags of `loba eval`.
type evalFlags struct {
	lora, model, out string
	quiet            bool
}

// newEvalCmd is `loba eval PRESET --lora FILE [--model M] [--out DIR]`.
func newEvalCmd(stdout, stderr io.Writer) *cobra.Command {
	var o evalFlags
	cmd := &cobra.Command{
		Use:   "eval PRESET --lora FILE",
		Short: "measure a trained LoRA with its preset's eval section (eval.json, grid.png)",
		Long: `Measures a trained LoRA with the eval section of its preset: a slider's effect on the target
attribute and the preservation of the others, or an erase's rates. The report is printed as JSON
and written to DIR/eval.json, with DIR/grid.png (rows = prompts, columns = strengths). Ctrl-C
stops the evaluation (nothing is written then). Exit code 1 when the evaluation fails or is
stopped, 2 for a bad preset, model or LoRA.`,
		Example: `  loba eval notebooks/presets/toy-size.yaml --lora /tmp/size/lora.safetensors --out /tmp/size-eval
  loba eval ~/runs/age/preset.yaml --lora ~/runs/age/lora.safetensors`,
		Args: exactArgs("PRESET"),
	}
	cmd.RunE = commandBody(func() error {
		if o.lora == "" {
			return badValue("--lora FILE is required: the LoRA to evaluate")
		}
		return nil
	}, func(args []string) int { return runEval(args[0], o, stdout, stderr) })
	f := cmd.Flags()
	pathFlag(f, &o.lora, "lora", "", "the kohya LoRA `FILE` to evaluate (required)")
	pathFlag(f, &o.model, "model", "", "use this `MODEL` instead of the preset's model.name_or_path")
	pathFlag(f, &o.out, "out", ".", "the folder `DIR` for eval.json and grid.png")
	f.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	return cmd
}

// runEval implements `loba eval`: the preset's eval section measured on a trained LoRA, written to
// DIR/eval.json and DIR/grid.png and printed as JSON. Exit codes: 0 done, 1 the evaluation failed
// or was stopped (Ctrl-C), 2 bad preset.
func runEval(preset string, o evalFlags, stdout, stderr io.Writer) int {
	p, _, ok := loadPreset("eval", preset, o.model, stderr)
	if !ok {
		return 2
	}
	if p.Eval.Kind == "" {
		fmt.Fprintf(stderr, "loba eval: %s has no eval section (eval.kind: slider | erase)\n", preset)
		return 2
	}
	stop, release := train.StopOnSignal() // Ctrl-C: stop after the images being sampled
	defer release()
	defer sayOnInterrupt(stderr, "loba eval: stopping after the images being sampled; Ctrl-C again quits at once")()
	progress, end := imagesBar(stderr, "evaluating", o.quiet)
	report, err := eval.Evaluate(rundir.Dir(o.out), eval.Options{Preset: p, LoRA: o.lora, Log: stderr,
		Progress: progress, Stop: stop})
	end()
	if errors.Is(err, eval.ErrStopped) {
		fmt.Fprintf(stderr, "loba eval: %v: nothing written\n", err)
		return 1
	} else if err != nil {
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
