// Command loba is LOBA's headless CLI: the same API the notebooks use, from a shell.
//
//	loba inspect [--json] [--variant fp16] MODEL   per-component parameter counts (and every weight key
//	                                              with --json); validates weight files when present
//	loba train [--out DIR] PRESET                  trains a slider / LECO adapter: DIR/lora.safetensors,
//	                                              DIR/checkpoints/, DIR/loss.csv; resumes when re-run
//	loba sample MODEL [--lora F] --prompt P ...   grid.png: rows = prompts, columns = LoRA strengths
//	loba plan [--model M] PRESET                   the memory and time a training run needs, per device
//
// MODEL is a diffusers folder (model_index.json + component subfolders), one component folder, a folder
// holding only config files (built shape-only, no weights allocated), a single-file checkpoint
// (SD1.5 LDM / SDXL SAI .safetensors), or a hub id "org/repo[@revision]".
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage: loba <command> [flags] [args]

commands:
  inspect   list a model's components, parameter counts and weight keys; validate its weight files
  plan      the memory and time a preset's training needs, and which GPUs (and this machine) it fits
  train     train a slider / LECO adapter from a preset (progress bar; resumes from checkpoints)
  sample    a grid of images: rows = prompts, columns = LoRA strengths
  eval      measure a trained LoRA with its preset's eval section (eval.json, grid.png)
  toyworld  train (resumable) or check the toy world's base model
  doctor    what this machine lacks for LOBA's notebooks, and the command that fixes each piece
  setup     setup kernel: record LOBA in the gonb kernel; setup cuda: install the CUDA PJRT plugin
  version   the build's version (also --version)

Run "loba <command> -h" for the flags of a command.`)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one CLI invocation and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if code := dispatch(args, stdout, stderr); code != 2 || !helpRequested(args[1:]) {
		return code
	}
	return 0 // a command's -h/--help printed its usage: asked for, not an error
}

// helpRequested tells whether a command's arguments ask for its help.
func helpRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help":
			return true
		case "--":
			return false
		}
	}
	return false
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

// dispatch runs the named command.
func dispatch(args []string, stdout, stderr io.Writer) int {
	switch args[0] {
	case "inspect":
		return runInspect(args[1:], stdout, stderr)
	case "plan":
		return runPlan(args[1:], stdout, stderr)
	case "train":
		return runTrain(args[1:], stdout, stderr)
	case "sample":
		return runSample(args[1:], stdout, stderr)
	case "toyworld":
		return runToyworld(args[1:], stdout, stderr)
	case "eval":
		return runEval(args[1:], stdout, stderr)
	case "doctor":
		return runDoctor(args[1:], stdout, stderr)
	case "setup":
		return runSetup(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	case "--version", "-version", "version":
		fmt.Fprintln(stdout, versionLine())
		return 0
	default:
		fmt.Fprintf(stderr, "loba: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
}
