package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/loba-dev/loba/kernelsetup"
)

// runDoctor implements `loba doctor [--json]`: what this machine has for LOBA's notebooks, in plain
// words, with the exact command that fixes each missing piece. Exit code 0 when all required pieces
// are in place, 1 otherwise.
func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	root := fs.String("root", "", "LOBA's folder (default: $LOBA_ROOT, else found upwards from here)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: loba doctor [--json] [--root DIR]")
		return 2
	}
	r := kernelsetup.Detect(kernelsetup.Env{Root: *root})
	if *asJSON {
		printJSON(stdout, r)
	} else {
		fmt.Fprint(stdout, r.Text())
	}
	if !r.Ready() {
		return 1
	}
	return 0
}

// runSetup implements `loba setup kernel [--root DIR]` (record LOBA_ROOT, PATH and, where the
// toolchain has it, GOEXPERIMENT=simd in the gonb kernel spec) and `loba setup cuda` (install the pinned CUDA PJRT
// plugin into ~/.local/lib/go-xla).
func runSetup(args []string, stdout, stderr io.Writer) int {
	usage := func() int {
		fmt.Fprintln(stderr, "usage: loba setup kernel [--root DIR] | loba setup cuda")
		return 2
	}
	if len(args) == 0 {
		return usage()
	}
	env := kernelsetup.Env{}
	switch args[0] {
	case "kernel":
		fs := flag.NewFlagSet("setup kernel", flag.ContinueOnError)
		fs.SetOutput(stderr)
		root := fs.String("root", "", "LOBA's folder (default: $LOBA_ROOT, else found upwards from here)")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
			return usage()
		}
		env.Root = *root
		dir := env.FindRoot()
		if dir == "" {
			fmt.Fprintln(stderr, "loba setup kernel: not inside a LOBA clone; pass --root DIR")
			return 2
		}
		path, err := env.SetupKernel(dir)
		if err != nil {
			fmt.Fprintf(stderr, "loba setup kernel: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "gonb kernel %s: LOBA_ROOT=%s\n", path, dir)
		return 0
	case "cuda":
		if len(args) > 1 {
			return usage()
		}
		if p := env.FindPlugin("cuda"); p != "" {
			fmt.Fprintf(stdout, "CUDA PJRT plugin already installed: %s\n", p)
			return 0
		}
		fmt.Fprintf(stdout, "installing the CUDA PJRT plugin (%s, jax %s) into %s\n", kernelsetup.CUDAPlugin, kernelsetup.CUDAPluginVersion, env.CUDAInstallDir())
		if err := env.InstallCUDA(true); err != nil {
			fmt.Fprintf(stderr, "loba setup cuda: %v\n", err)
			return 1
		}
		return 0
	}
	return usage()
}
