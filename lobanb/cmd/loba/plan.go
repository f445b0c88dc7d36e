package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/loba-dev/loba/lobanb/train"
)

// newPlanCmd is `loba plan [--model M] PRESET`.
func newPlanCmd(stdout, stderr io.Writer) *cobra.Command {
	var model string
	cmd := &cobra.Command{
		Use:   "plan PRESET",
		Short: "the memory and time a preset's training needs, and which GPUs (and this machine) it fits",
		Long: `Plans a training run from the model's config files alone (no weight is loaded): the parts of its
memory on the CPU and on a GPU, the compute per step, and for each device (T4, L4, A100, H100 and
this machine) whether it fits, the estimated seconds per step and what to change where it does
not fit. Exit code 0 when the plan was made, whether or not the run fits this machine.`,
		Example: `  loba plan notebooks/presets/toy-size.yaml
  loba plan --model ../shared/fixtures/real/configs/sd15 notebooks/presets/real/sd15-age.yaml`,
		Args: exactArgs("PRESET"),
	}
	cmd.RunE = commandBody(nil, func(args []string) int { return runPlan(args[0], model, stdout, stderr) })
	pathFlag(cmd.Flags(), &model, "model", "", "use this `MODEL` instead of the preset's model.name_or_path "+
		"(a diffusers folder, a folder of config files only, a single-file checkpoint or a hub id)")
	return cmd
}

// runPlan implements `loba plan`. Exit codes: 0 the plan was made, 2 bad preset or model.
func runPlan(preset, model string, stdout, stderr io.Writer) int {
	p, b, ok := loadPreset("plan", preset, model, stderr)
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
