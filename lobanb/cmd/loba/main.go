// Command loba is LOBA's headless CLI: the same API the notebooks use, from a shell. Every command
// answers -h/--help (exit 0); flags may come before or after the arguments; a leading "~" or "~/" of
// any path (argument or flag) is the home folder. Exit codes: 0 done, 1 the run or check failed,
// 2 usage or bad input (unknown flag, wrong argument count, a value out of range, a bad preset).
//
//	loba inspect MODEL        components, parameter counts, weight keys; validates the weight files
//	    --json --variant V --preset P
//	loba plan PRESET          the memory and time a training run needs, per GPU and this machine
//	    --model M
//	loba train PRESET         trains a slider / LECO adapter into DIR: lora.safetensors, checkpoints/,
//	                          loss.csv, eval.json and grid.png; resumes from the step it reached
//	    --out DIR --model M --steps N --tokenizer T --no-eval --quiet --cpuprofile FILE
//	loba eval PRESET --lora F the preset's eval section measured on a LoRA: DIR/eval.json, DIR/grid.png
//	    --model M --out DIR --quiet
//	loba sample MODEL --prompt P
//	                          grid.png: rows = prompts, columns = LoRA strengths
//	    --lora F --strengths LIST --out FILE --steps N --guidance G --seed S --size PX --negative P
//	    --tokenizer T --quiet
//	loba toyworld train       trains the toy world's base model (resumable)
//	    --out DIR --steps N --batch N --lr X --seed S --prediction P --min-snr-gamma X --ema X
//	    --checkpoint-every N --export-every N --check-samples N --fp16 --quiet
//	loba toyworld check DIR   the toy base model's accuracy as JSON
//	    --samples N --steps N --guidance G --seed S
//	loba doctor               what this machine lacks for LOBA's notebooks, and the fix of each
//	    --json --root DIR
//	loba setup kernel         records LOBA in the gonb kernel (--root DIR)
//	loba setup cuda           installs the pinned CUDA PJRT plugin
//	loba version              the build (also loba --version)
//
// MODEL is a diffusers folder (model_index.json + component subfolders), one component folder, a folder
// holding only config files (built shape-only, no weights allocated), a single-file checkpoint
// (SD1.5 LDM / SDXL SAI .safetensors), or a hub id "org/repo[@revision]". PRESET is a LOBA preset
// (YAML), a LECO config.yaml, a Concept Sliders prompts.yaml, an sd-scripts LECO .toml or an
// ai-toolkit slider config.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one CLI invocation and returns the process exit code: 0 done, 1 the command's run
// or check failed (it printed why), 2 usage or bad input (printed here, with the command's usage
// or a pointer to its help).
func run(args []string, stdout, stderr io.Writer) int {
	if args == nil {
		args = []string{} // cobra reads os.Args when given nil
	}
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	var exit exitError
	var bad *valueError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.code
	case errors.As(err, &bad):
		fmt.Fprintf(stderr, "%s: %v\nRun \"%s --help\" for usage.\n", cmd.CommandPath(), err, cmd.CommandPath())
		return 2
	default: // cobra's own: an unknown command or flag, a flag value that does not parse, the argument count
		fmt.Fprintf(stderr, "%s: %s\n\n%s", cmd.CommandPath(), strings.TrimSpace(err.Error()), cmd.UsageString())
		return 2
	}
}

// newRootCmd builds the command tree of one invocation (cobra commands hold their flags' values,
// so each run builds its own).
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	cobra.EnableCommandSorting = false // the commands in the order of a project: look, plan, train, use
	root := &cobra.Command{
		Use:   "loba",
		Short: "LOBA trains LoRA sliders and LECO adapters for Stable Diffusion",
		Long: `loba trains LoRA sliders and LECO adapters for Stable Diffusion 1.x and SDXL, headless: the same
API the notebooks use. Flags may come before or after the arguments; "~/" in any path is the home
folder. Exit codes: 0 done, 1 the run or check failed, 2 usage or bad input.

MODEL is a diffusers folder, a component folder, a folder of config files only, a single-file
checkpoint (SD1.5 LDM or SDXL SAI .safetensors) or a hub id org/repo[@revision].
PRESET is a LOBA preset (YAML), a LECO config.yaml, a Concept Sliders prompts.yaml, an
sd-scripts LECO .toml or an ai-toolkit slider config.`,
		Version:           versionLine(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		RunE: func(*cobra.Command, []string) error {
			return errors.New("no command given")
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	cobra.AddTemplateFunc("wrapped", func(f *pflag.FlagSet) string { return f.FlagUsagesWrapped(helpWidth) })
	root.SetUsageTemplate(usageTemplate)
	root.AddCommand(newInspectCmd(stdout, stderr), newPlanCmd(stdout, stderr), newTrainCmd(stdout, stderr),
		newEvalCmd(stdout, stderr), newSampleCmd(stdout, stderr), newToyworldCmd(stdout, stderr),
		newDoctorCmd(stdout, stderr), newSetupCmd(stdout, stderr), newVersionCmd(stdout))
	flagsInOrder(root)
	return root
}

// flagsInOrder lists every command's flags in the order they were declared (the most used first).
func flagsInOrder(cmd *cobra.Command) {
	cmd.Flags().SortFlags = false
	for _, c := range cmd.Commands() {
		flagsInOrder(c)
	}
}

// helpWidth is the width the flags' descriptions are wrapped to in the help.
const helpWidth = 100

// usageTemplate is cobra's usage text, shortened: the usage line (or "<command>" for a command
// of commands), the examples, the commands and the flags.
const usageTemplate = `Usage:{{if not .HasAvailableSubCommands}}
  {{.UseLine}}{{else}}
  {{.CommandPath}} <command> [flags]{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{wrapped .LocalFlags | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Run "{{.CommandPath}} <command> --help" for the flags of a command.{{end}}
`

// newVersionCmd is `loba version`, the same line as `loba --version`.
func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "the build's version (also loba --version)",
		Args:  exactArgs(),
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(stdout, versionLine())
			return nil
		},
	}
}

// versionLine is `loba --version`'s answer: the module version (or the VCS revision of a build from
// a checkout), the Go version and whether the build has the Go backend's SIMD kernels.
func versionLine() string {
	version, simd := "(devel)", "without GOEXPERIMENT=simd"
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "loba " + version
	}
	if info.Main.Version != "" {
		version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			version += " " + s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			version += "+dirty"
		case s.Key == "GOEXPERIMENT" && strings.Contains(s.Value, "simd"):
			simd = "GOEXPERIMENT=simd"
		}
	}
	return fmt.Sprintf("loba %s (%s, %s)", version, info.GoVersion, simd)
}
