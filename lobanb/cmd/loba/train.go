package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/loba-dev/loba/lobanb/eval"
	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/train"
)

// trainFlags are the flags of `loba train`.
type trainFlags struct {
	out, model, tokenizer, cpuProfile string
	steps                             int
	quiet, noEval                     bool
}

// newTrainCmd is `loba train [flags] PRESET`.
func newTrainCmd(stdout, stderr io.Writer) *cobra.Command {
	var o trainFlags
	cmd := &cobra.Command{
		Use:   "train PRESET",
		Short: "train a slider / LECO adapter from a preset (progress bar; resumes from checkpoints)",
		Long: `Trains the adapter a preset describes, headless, into the run folder DIR: lora.safetensors (kohya
format), checkpoints/, loss.csv and, when the preset has an eval section, eval.json and grid.png.
Running the same command again resumes from the newest checkpoint; raising --steps (or the
preset's train.steps) extends a finished run. Ctrl-C checkpoints the step reached (during the
evaluation: stops it; the LoRA is already saved); a second Ctrl-C quits at once.
Exit code 1 when training fails (a loss that is not finite, I/O), the memory plan says the run
cannot fit this machine, or the folder is busy with another run; 2 for a bad preset or model.`,
		Example: `  loba train notebooks/presets/toy-size.yaml --out /tmp/size
  loba train my-slider.yaml --out ~/runs/age --steps 1000
  loba train leco-config.yaml --model ~/models/sd15 --no-eval`,
		Args: exactArgs("PRESET"),
	}
	cmd.RunE = commandBody(func() error {
		return firstBad(want{cmd.Flags().Changed("steps") && o.steps <= 0, "steps", o.steps,
			"a number of steps > 0 (or leave --steps out for the preset's train.steps)"})
	}, func(args []string) int { return runTrain(args[0], o, stdout, stderr) })
	f := cmd.Flags()
	pathFlag(f, &o.out, "out", "", "the run folder `DIR` (default: the preset's output.dir, else output/<output.name>)")
	pathFlag(f, &o.model, "model", "", "use this `MODEL` instead of the preset's model.name_or_path (a diffusers folder, "+
		"a single-file checkpoint or a hub id)")
	f.IntVar(&o.steps, "steps", 0, "train to `N` steps in all, instead of the preset's train.steps")
	pathFlag(f, &o.tokenizer, "tokenizer", "", "use this tokenizer `PATH` (a folder, or openai's bpe_simple_vocab_16e6.txt.gz) instead of the model's")
	f.BoolVar(&o.noEval, "no-eval", false, "skip the preset's eval section (no eval.json or grid.png; loba eval runs it later)")
	f.BoolVar(&o.quiet, "quiet", false, "no progress bars")
	pathFlag(f, &o.cpuProfile, "cpuprofile", "", "write a Go CPU profile of the run to `FILE` (read it with go tool pprof)")
	return cmd
}

// runTrain implements `loba train`. Exit codes: 0 done, 1 training failed (NaN loss, I/O), the
// memory plan says the run cannot fit this machine (nothing is written then) or the folder is busy,
// 2 bad preset or model.
func runTrain(preset string, o trainFlags, stdout, stderr io.Writer) int {
	if o.cpuProfile != "" {
		stopProfile, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "loba train: --cpuprofile %s: %v\n", o.cpuProfile, err)
			return 2
		}
		defer stopProfile()
	}
	watch := &trainWatch{w: stderr, quiet: o.quiet}
	run, code := newTrainRun(preset, o, watch, stderr)
	if run == nil {
		return code
	}
	p := run.Plan.Preset
	fmt.Fprintf(stdout, "training %s: %d modules, %s, output %s\n", p.File(), run.Modules(),
		stepsLine(run.StepsDone(), p.Train.Steps), run.Dir)
	watch.start(run, p.Train.Steps)
	defer watch.close()
	stop, release := train.StopOnSignal() // Ctrl-C: checkpoint the step reached (or stop the eval), then exit
	defer release()
	defer sayOnInterrupt(stderr, "loba train: stopping at the end of this step (or these images); Ctrl-C again quits at once")()
	run.Stop = stop
	res, err := run.Train()
	if errors.Is(err, eval.ErrStopped) {
		fmt.Fprintf(stderr, "\nloba train: %v; the LoRA is saved (%s); run `loba eval %s --lora %s --out %s` later\n",
			err, run.Dir.LoRA(), p.File(), run.Dir.LoRA(), run.Dir)
		return 1
	} else if err != nil {
		fmt.Fprintf(stderr, "\nloba train: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "done: %d steps, last loss %.5g; wrote %s\n", res.Steps, res.LastLoss, res.LoRAPath)
	return 0
}

// stepsLine says how many steps a run trains: "8 steps", or "resuming from step 2 of 8".
func stepsLine(from, steps int) string {
	if from > 0 {
		return fmt.Sprintf("resuming from step %d of %d", from, steps)
	}
	return fmt.Sprintf("%d steps", steps)
}

// newTrainRun loads the preset, plans the run and loads it (train.NewRun restores the checkpoint it
// continues from); log receives the run's log lines. run nil: the error is printed on stderr and
// code is the exit code.
func newTrainRun(preset string, o trainFlags, log, stderr io.Writer) (run *train.Run, code int) {
	p, b, ok := loadPreset("train", preset, o.model, stderr)
	if !ok {
		return nil, 2
	}
	if o.steps > 0 {
		p.Train.Steps = o.steps
	}
	plan, err := train.NewPlan(p, train.Options{OutDir: o.out, Backend: b, Tokenizer: o.tokenizer, Log: log, SkipEval: o.noEval})
	if err != nil {
		fmt.Fprintf(stderr, "loba train: %v\n", err)
		return nil, 2
	}
	run, err = train.NewRun(plan)
	if errors.Is(err, train.ErrDoesNotFit) || errors.Is(err, rundir.ErrLocked) {
		fmt.Fprintf(stderr, "loba train: %v\n", err)
		return nil, 1 // the preset is fine; this machine is too small for it, or the folder is busy
	} else if err != nil {
		fmt.Fprintf(stderr, "loba train: %v\n", err)
		return nil, 2
	}
	return run, 0
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
