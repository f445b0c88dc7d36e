// Package kernelsetup is the Go side of LOBA's set-up: it finds what a notebook needs on this
// machine — Go, the GoNB kernel with goimports and gopls, Jupyter, the gonb kernel spec (and the
// LOBA folder recorded in it), the offline copy of ECharts, a GPU and its CUDA PJRT plugin, and
// GOEXPERIMENT=simd (Go 1.26+ on amd64) in this shell, in the kernel's environment and in the loba
// binary — and says in plain words what is missing and the exact command that fixes it
// (`loba doctor`). It also records LOBA's environment in the kernel spec (`loba setup kernel`) and
// installs the CUDA PJRT plugin (`loba setup cuda`). install.sh runs the same steps from a shell.
//
// Detect never changes the machine and never touches the network; Env makes every input explicit so
// the checks are testable with a PATH and HOME that lack tools.
package kernelsetup
