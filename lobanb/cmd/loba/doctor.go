package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/loba-dev/loba/kernelsetup"
)

// rootUsage is the help of the --root flag of `loba doctor` and `loba setup kernel`.
const rootUsage = "LOBA's folder `DIR` (default: $LOBA_ROOT, else found upwards from here)"

// newDoctorCmd is `loba doctor [--json] [--root DIR]`.
func newDoctorCmd(stdout, stderr io.Writer) *cobra.Command {
	var asJSON bool
	var root string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "what this machine lacks for LOBA's notebooks, and the command that fixes each piece",
		Long: `Reports what this machine has for LOBA's notebooks (Go, the gonb kernel, Jupyter, a GPU and its
plugin), in plain words, with the exact command that fixes each missing piece. Exit code 0 when
every required piece is in place, 1 otherwise.`,
		Example: `  loba doctor
  loba doctor --json --root ~/loba`,
		Args: exactArgs(),
	}
	cmd.RunE = commandBody(nil, func([]string) int {
		r := kernelsetup.Detect(kernelsetup.Env{Root: root})
		if asJSON {
			printJSON(stdout, r)
		} else {
			fmt.Fprint(stdout, r.Text())
		}
		if !r.Ready() {
			return 1
		}
		return 0
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	pathFlag(cmd.Flags(), &root, "root", "", rootUsage)
	return cmd
}

// newSetupCmd is `loba setup kernel [--root DIR]` (record LOBA_ROOT, PATH and, where the toolchain
// has it, GOEXPERIMENT=simd in the gonb kernel spec) and `loba setup cuda` (install the pinned CUDA
// PJRT plugin into ~/.local/lib/go-xla).
func newSetupCmd(stdout, stderr io.Writer) *cobra.Command {
	var root string
	kernel := &cobra.Command{
		Use:   "kernel",
		Short: "record LOBA's folder (LOBA_ROOT, PATH, GOEXPERIMENT) in the gonb kernel",
		Args:  exactArgs(),
	}
	kernel.RunE = commandBody(nil, func([]string) int { return runSetupKernel(root, stdout, stderr) })
	pathFlag(kernel.Flags(), &root, "root", "", rootUsage)
	cuda := &cobra.Command{
		Use:   "cuda",
		Short: "install the pinned CUDA PJRT plugin into ~/.local/lib/go-xla",
		Args:  exactArgs(),
	}
	cuda.RunE = commandBody(nil, func([]string) int { return runSetupCUDA(stdout, stderr) })
	return group(&cobra.Command{
		Use:   "setup",
		Short: "setup kernel: record LOBA in the gonb kernel; setup cuda: install the CUDA PJRT plugin",
	}, kernel, cuda)
}

// runSetupKernel implements `loba setup kernel`. Exit codes: 0 done, 1 the kernel spec could not
// be written, 2 no LOBA folder.
func runSetupKernel(root string, stdout, stderr io.Writer) int {
	env := kernelsetup.Env{Root: root}
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
}

// runSetupCUDA implements `loba setup cuda`. Exit codes: 0 installed (or already there), 1 failed.
func runSetupCUDA(stdout, stderr io.Writer) int {
	env := kernelsetup.Env{}
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
