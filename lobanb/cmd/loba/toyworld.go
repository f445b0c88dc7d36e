package main

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/loba-dev/loba/models/toyworld"
	"github.com/loba-dev/loba/tools/toybase"
)

// newToyworldCmd is `loba toyworld train|check`.
func newToyworldCmd(stdout, stderr io.Writer) *cobra.Command {
	return group(&cobra.Command{
		Use:   "toyworld",
		Short: "train (resumable) or check the toy world's base model",
		Long: `The toy world is LOBA's own tiny diffusion model of coloured shapes on two backgrounds, small
enough to train sliders on a CPU. "loba toyworld train" trains its base model from scratch
(resumable), "loba toyworld check" measures how well a base model draws what it is asked for.`,
	}, newToyTrainCmd(stdout, stderr), newToyCheckCmd(stdout, stderr))
}

// toyTrainFlags are the flags of `loba toyworld train`.
type toyTrainFlags struct {
	out, pred                               string
	steps, batch, every, export, checkSmpls int
	lr, minSNR, ema, shade                  float64
	seed                                    uint64
	fp16, quiet                             bool
}

// check refuses the values that mean nothing.
func (o toyTrainFlags) check() error {
	return firstBad(
		want{o.steps <= 0, "steps", o.steps, "a number of steps > 0"},
		want{o.batch <= 0, "batch", o.batch, "a batch size > 0"},
		want{!(o.lr > 0) || math.IsInf(o.lr, 0), "lr", o.lr, "a finite learning rate > 0"},
		want{o.pred != "v_prediction" && o.pred != "epsilon", "prediction", o.pred, "v_prediction or epsilon"},
		want{!(o.minSNR >= 0) || math.IsInf(o.minSNR, 0), "min-snr-gamma", o.minSNR, "a finite γ >= 0 (0: off)"},
		want{!(o.ema >= 0 && o.ema < 1), "ema", o.ema, "a decay in [0, 1) (0: off)"},
		want{o.every <= 0, "checkpoint-every", o.every, "a number of steps > 0"},
		want{o.export <= 0, "export-every", o.export, "a number of steps > 0"},
		want{o.checkSmpls < 0, "check-samples", o.checkSmpls, "a number of samples >= 0 (0: no checks)"},
		want{!(o.shade >= 0 && o.shade <= toyworld.MaxShade), "shade", o.shade, fmt.Sprintf("a fraction in [0, %v] (0: pure palette colours)", toyworld.MaxShade)},
	)
}

// newToyTrainCmd is `loba toyworld train [--out DIR] [--steps N] …`.
func newToyTrainCmd(stdout, stderr io.Writer) *cobra.Command {
	var o toyTrainFlags
	cmd := &cobra.Command{
		Use:   "train",
		Short: "train the toy base model from scratch (re-run with more --steps to continue)",
		Long: `Trains the toy world's base model into DIR (created when missing), with its checkpoints and
loss.csv in DIR.train. Running it again continues from the newest checkpoint.`,
		Example: `  loba toyworld train --out toybase --steps 2500 --check-samples 50`,
		Args:    exactArgs(),
	}
	cmd.RunE = commandBody(func() error { return o.check() }, func([]string) int { return runToyTrain(o, stdout, stderr) })
	f := cmd.Flags()
	pathFlag(f, &o.out, "out", "toybase", "the model folder `DIR` (created when missing; checkpoints in DIR.train)")
	f.IntVar(&o.steps, "steps", 6000, "`N` steps in all (re-run with more to continue)")
	f.IntVar(&o.batch, "batch", 16, "the batch size `N`")
	f.Float64Var(&o.lr, "lr", 1e-3, "AdamW's learning `RATE`")
	f.Uint64Var(&o.seed, "seed", 1, "the run's `SEED`")
	f.StringVar(&o.pred, "prediction", "v_prediction", "the `TYPE` of a fresh model: v_prediction (zero-terminal-SNR betas) or epsilon")
	f.Float64Var(&o.minSNR, "min-snr-gamma", 0, "min-SNR-γ loss weighting with this `GAMMA` (0: off)")
	f.Float64Var(&o.ema, "ema", 0.999, "the EMA `DECAY` of the exported weights (0: off)")
	f.IntVar(&o.every, "checkpoint-every", 100, "checkpoint every `N` steps")
	f.IntVar(&o.export, "export-every", 500, "write the weights into DIR every `N` steps")
	f.BoolVar(&o.fp16, "fp16", false, "export float16 weights (for committing)")
	f.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	f.IntVar(&o.checkSmpls, "check-samples", 0, "after each export, check the model on `N` samples into DIR.train/check.csv")
	f.Float64Var(&o.shade, "shade", 0, "shade each training colour toward another palette colour by up to this `FRACTION` in [0, 0.25] (0: pure colours; pass the same value when resuming)")
	return cmd
}

// runToyTrain implements `loba toyworld train`. Exit codes: 0 trained, 1 training failed.
func runToyTrain(o toyTrainFlags, stdout, stderr io.Writer) int {
	opts := toybase.TrainOptions{Dir: o.out, Steps: o.steps, BatchSize: o.batch, Seed: o.seed, PredictionType: o.pred,
		Optimizer: toybase.OptimizerOptions{LR: o.lr, EMADecay: o.ema}, MinSNRGamma: o.minSNR, Shade: o.shade,
		Output: toybase.OutputOptions{CheckpointEvery: o.every, ExportEvery: o.export, CheckSamples: o.checkSmpls}, Log: stderr}
	if o.fp16 {
		opts.Output.ExportDType = dtypes.Float16
	}
	if !o.quiet {
		bar := progressbar.NewOptions64(int64(o.steps), progressbar.OptionSetWriter(stderr), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(500*time.Millisecond))
		opts.OnStep = func(step int, loss float32, _ time.Duration) {
			bar.Describe(fmt.Sprintf("loss %.4f", loss))
			_ = bar.Set(step)
		}
		defer fmt.Fprintln(stderr)
	}
	if err := toybase.Train(opts); err != nil {
		fmt.Fprintf(stderr, "\nloba toyworld train: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "trained %s to step %d\n", o.out, o.steps)
	return 0
}

// newToyCheckCmd is `loba toyworld check DIR [--samples N] …`.
func newToyCheckCmd(stdout, stderr io.Writer) *cobra.Command {
	var o toybase.CheckOptions
	cmd := &cobra.Command{
		Use:   "check DIR",
		Short: "the toy base model's accuracy (colour, size, shape) as JSON",
		Long: `Samples images of random toy-world captions with the base model in DIR and reads them back:
the accuracy of each attribute, printed as JSON. With --coupling N it also prompts N scenes in each
colour and without one, from the same noise, and reports how often the size class changes with the
colour word, overall and per pair of colours (what a colour slider or erase inherits). The size is
left open in those prompts, or named with --coupling-sized.`,
		Example: `  loba toyworld check toybase --samples 200
  loba toyworld check toybase --samples 50 --coupling 40
  loba toyworld check toybase --samples 10 --coupling 60 --coupling-sized`,
		Args: exactArgs("DIR"),
	}
	cmd.RunE = commandBody(func() error {
		return firstBad(
			want{o.Samples <= 0, "samples", o.Samples, "a number of images > 0"},
			want{o.Steps <= 0, "steps", o.Steps, "a number of sampler steps > 0"},
			want{o.Coupling < 0, "coupling", o.Coupling, "a number of scenes >= 0"},
			want{!(o.GuidanceScale > 0) || math.IsInf(o.GuidanceScale, 0), "guidance", o.GuidanceScale, "a finite scale > 0 (1: no guidance)"},
		)
	}, func(args []string) int {
		r, err := toybase.Check(args[0], o)
		if err != nil {
			fmt.Fprintf(stderr, "loba toyworld check: %v\n", err)
			return 1
		}
		printJSON(stdout, r)
		return 0
	})
	f := cmd.Flags()
	f.IntVar(&o.Samples, "samples", 200, "`N` generated images")
	f.IntVar(&o.Steps, "steps", 20, "`N` sampler steps")
	f.Float64Var(&o.GuidanceScale, "guidance", 3, "classifier-free guidance `SCALE` (1: no guidance)")
	f.Uint64Var(&o.Seed, "seed", 0, "the `SEED` of the scenes and the noise")
	f.IntVar(&o.Coupling, "coupling", 0, "also measure the colour-size coupling on `N` scenes (the four colour words and none, from the same noise)")
	f.BoolVar(&o.CouplingSized, "coupling-sized", false, "name a size in every coupling prompt (default: the size left open)")
	return cmd
}
