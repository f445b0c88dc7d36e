package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/schollz/progressbar/v3"

	"github.com/loba-dev/loba/tools/toybase"
)

// runToyworld implements `loba toyworld train [--out DIR] [--steps N]` (train the toy base model
// from scratch, resumable) and `loba toyworld check [DIR]` (its accuracy as JSON).
func runToyworld(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: loba toyworld train [--out DIR] [--steps N] | loba toyworld check DIR [--samples N]"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0
	case "train":
		fs := flag.NewFlagSet("toyworld train", flag.ContinueOnError)
		fs.SetOutput(stderr)
		out := fs.String("out", "toybase", "model folder (created when missing; checkpoints in DIR.train)")
		steps := fs.Int("steps", 6000, "total steps (re-run with more to continue)")
		batch := fs.Int("batch", 16, "batch size")
		lr := fs.Float64("lr", 1e-3, "AdamW learning rate")
		seed := fs.Uint64("seed", 1, "seed")
		pred := fs.String("prediction", "v_prediction", "v_prediction (zero-terminal-SNR betas) | epsilon (for a fresh model)")
		minSNR := fs.Float64("min-snr-gamma", 0, "min-SNR-γ loss weighting (0: off)")
		ema := fs.Float64("ema", 0.999, "EMA decay of the exported weights (0: off)")
		every := fs.Int("checkpoint-every", 100, "checkpoint every N steps")
		export := fs.Int("export-every", 500, "write the weights into DIR every N steps")
		fp16 := fs.Bool("fp16", false, "export float16 weights (for committing)")
		quiet := fs.Bool("quiet", false, "no progress bar")
		checkSamples := fs.Int("check-samples", 0, "after each export, check the model on N samples into DIR.train/check.csv")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		o := toybase.TrainOptions{Dir: *out, Steps: *steps, BatchSize: *batch, Seed: *seed, PredictionType: *pred,
			Optimizer: toybase.OptimizerOptions{LR: *lr, EMADecay: *ema}, MinSNRGamma: *minSNR,
			Output: toybase.OutputOptions{CheckpointEvery: *every, ExportEvery: *export, CheckSamples: *checkSamples}, Log: stderr}
		if *fp16 {
			o.Output.ExportDType = dtypes.Float16
		}
		if !*quiet {
			bar := progressbar.NewOptions64(int64(*steps), progressbar.OptionSetWriter(stderr), progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(500*time.Millisecond))
			o.OnStep = func(step int, loss float32, _ time.Duration) {
				bar.Describe(fmt.Sprintf("loss %.4f", loss))
				_ = bar.Set(step)
			}
			defer fmt.Fprintln(stderr)
		}
		if err := toybase.Train(o); err != nil {
			fmt.Fprintf(stderr, "\nloba toyworld train: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "trained %s to step %d\n", *out, *steps)
		return 0
	case "check":
		fs := flag.NewFlagSet("toyworld check", flag.ContinueOnError)
		fs.SetOutput(stderr)
		samples := fs.Int("samples", 200, "number of generated images")
		steps := fs.Int("steps", 20, "sampler steps")
		guidance := fs.Float64("guidance", 3, "CFG scale")
		seed := fs.Uint64("seed", 0, "seed")
		positional, ok := parseInterspersed(fs, args[1:])
		if !ok || len(positional) != 1 {
			fmt.Fprintln(stderr, "usage: loba toyworld check DIR [--samples N]")
			return 2
		}
		r, err := toybase.Check(positional[0], toybase.CheckOptions{Samples: *samples, Steps: *steps, GuidanceScale: *guidance, Seed: *seed})
		if err != nil {
			fmt.Fprintf(stderr, "loba toyworld check: %v\n", err)
			return 1
		}
		printJSON(stdout, r)
		return 0
	}
	fmt.Fprintf(stderr, "loba toyworld: unknown subcommand %q (train, check)\n", args[0])
	return 2
}
