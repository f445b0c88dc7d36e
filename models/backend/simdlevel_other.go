//go:build !(goexperiment.simd && amd64)

package backend

import "runtime"

// simdKernels says why the Go backend's matmul kernels have no AVX2/AVX-512 in this binary.
func simdKernels() string {
	if SIMDEnabled {
		return "no SIMD kernels on " + runtime.GOARCH
	}
	return "no SIMD: built without GOEXPERIMENT=simd"
}
