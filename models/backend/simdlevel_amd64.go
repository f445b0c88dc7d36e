//go:build goexperiment.simd && amd64

package backend

import (
	"os"
	"simd/archsimd"
	"strconv"
)

// simdKernels names the Go backend's matmul kernels this CPU gets: "AVX-512", "AVX2", or why none
// (GOMLX_SIMD_AVX512 / GOMLX_SIMD_AVX2 set to false turn each off, as in compute's matmul).
func simdKernels() string {
	switch {
	case archsimd.X86.AVX512() && envTrue("GOMLX_SIMD_AVX512"):
		return "AVX-512"
	case archsimd.X86.AVX2() && envTrue("GOMLX_SIMD_AVX2"):
		return "AVX2"
	}
	return "no AVX2 on this CPU"
}

// envTrue: the boolean variable key is unset or true.
func envTrue(key string) bool {
	v, ok := os.LookupEnv(key)
	if !ok || v == "" {
		return true
	}
	b, err := strconv.ParseBool(v)
	return err != nil || b
}
