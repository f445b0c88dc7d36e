//go:build !goexperiment.simd

package backend

// SIMDEnabled reports whether this binary was built with GOEXPERIMENT=simd, which turns on the
// Go backend's AVX2/AVX-512 matmul kernels.
const SIMDEnabled = false
