package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/gomlx/compute"
	"github.com/schollz/progressbar/v3"

	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/lobanb/train"
)

// runTrain implements `loba train PRESET [--out DIR]`: the preset (LOBA YAML, or a LECO / Concept
// Sliders / sd-scripts config, imported) trains headless with a progress bar, writing
// DIR/lora.safetensors, DIR/checkpoints/ and DIR/loss.csv. Re-running the same command resumes from
// the newest checkpoint. Exit codes: 0 done, 1 training failed (NaN loss, I/O) or the memory plan
// says the run cannot fit this machine (nothing is written then), 2 bad preset or model.
func runTrain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "output folder (default: the preset's output.dir, else output/<output.name>)")
	model := fs.String("model", "", "override model.name_or_path (a diffusers folder or a hub id)")
	steps := fs.Int("steps", 0, "override train.steps")
	tokenizer := fs.String("tokenizer", "", "override the model's tokenizer (a folder or openai's bpe_simple_vocab_16e6.txt.gz)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	noEval := fs.Bool("no-eval", false, "skip the preset's eval section (no eval.json / grid.png; `loba eval` runs it later)")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the run to this file (`go tool pprof loba FILE`)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: loba train [--out DIR] [--model M] [--steps N] [--no-eval] [--cpuprofile FILE] PRESET\n\n"+
			"PRESET: a LOBA preset (YAML), a LECO config.yaml, a Concept Sliders prompts.yaml or an sd-scripts LECO .toml.")
		fs.PrintDefaults()
	}
	p, b, ok := presetCommand("train", fs, args, model, stderr)
	if !ok {
		return 2
	}
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "loba train: --cpuprofile: %v\n", err)
			return 2
		}
		defer stopProfile()
	}
	if *steps < 0 {
		fmt.Fprintf(stderr, "loba train: --steps %d: want a number of steps > 0 (or leave it out for the preset's train.steps)\n", *steps)
		return 2
	} else if *steps > 0 {
		p.Train.Steps = *steps
	}
	plan, err := train.NewPlan(p, train.Options{OutDir: *out, Backend: b, Tokenizer: *tokenizer, Log: stderr, SkipEval: *noEval})
	if err != nil {
		fmt.Fprintf(stderr, "loba train: %v\n", err)
		return 2
	}
	run, err := train.NewRun(plan)
	if errors.Is(err, train.ErrDoesNotFit) || errors.Is(err, rundir.ErrLocked) {
		fmt.Fprintf(stderr, "loba train: %v\n", err)
		return 1 // the preset is fine; this machine is too small for it, or the folder is busy
	} else if err != nil {
		fmt.Fprintf(stderr, "loba train: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "training %s: %d modules, %d steps, output %s\n", p.File(), len(run.Net.Modules), p.Train.Steps, run.Dir)
	if !*quiet {
		defer showProgress(run, p.Train.Steps, stderr)()
	}
	stop, release := train.StopOnSignal() // Ctrl-C: checkpoint the step reached, then exit
	defer release()
	run.Stop = stop
	res, err := run.Train()
	if err != nil {
		fmt.Fprintf(stderr, "\nloba train: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "done: %d steps, last loss %.5g; wrote %s\n", res.Steps, res.LastLoss, res.LoRAPath)
	return 0
}

// showProgress draws a progress bar of run's steps on w; the returned function ends its line.
func showProgress(run *train.Run, steps int, w io.Writer) (done func()) {
	bar := progressbar.NewOptions64(int64(steps),
		progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("train"),
		progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(200*time.Millisecond))
	run.OnStep = func(step int, o train.StepOutputs, lr float64, _ time.Duration) {
		bar.Describe(fmt.Sprintf("loss %.4g lr %.2g", o.Loss, lr))
		_ = bar.Set(step)
	}
	return func() { fmt.Fprintln(w) }
}

// presetCommand parses the flags of a command that takes one PRESET (flags may follow it, as users
// type them: loba train preset.yaml --out DIR), starts the backend (the "backend:" first line),
// loads the preset (printing what an import could not carry over) and applies --model. ok false:
// the usage or the error is printed, the command exits 2.
func presetCommand(cmd string, fs *flag.FlagSet, args []string, model *string, stderr io.Writer) (*slider.Preset, compute.Backend, bool) {
	positional, ok := parseInterspersed(fs, args)
	if !ok {
		return nil, nil, false
	}
	if len(positional) != 1 {
		fs.Usage()
		return nil, nil, false
	}
	b, ok := startBackend(cmd, stderr)
	if !ok {
		return nil, nil, false
	}
	p, warnings, err := slider.Load(positional[0])
	if err != nil {
		fmt.Fprintf(stderr, "loba %s: %v\n", cmd, err)
		return nil, nil, false
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "loba %s: warning: %s\n", cmd, w)
	}
	if *model != "" {
		p.Model.NameOrPath = *model
	}
	return p, b, true
}

// startCPUProfile starts Go's CPU profiler writing to path; the returned function stops it and
// closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
