// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package fastmath

import "math"

// LOBA patch: slice kernels for the Go backend's float32 Exp, Logistic, Erf and fused softmax.
// Each has a pure-Go version here and, in binaries built with GOEXPERIMENT=simd on an AVX-512
// CPU, a 16-lane version (slices_avx512.go) installed by init. Both keep math.Exp's and
// math.Erf's special values (NaN, ±Inf, exact 0 below the float32 range).

var (
	expSlice32      = expSlice32Go
	logisticSlice32 = logisticSlice32Go
	erfSlice32      = erfSlice32Go
	softmaxRow32    = softmaxRow32Go
)

// ExpSlice32 sets dst[i] = e^src[i] for i < len(src); dst must be at least as long as src.
func ExpSlice32(dst, src []float32) { expSlice32(dst[:len(src)], src) }

// LogisticSlice32 sets dst[i] = 1/(1+e^−src[i]) (the sigmoid).
func LogisticSlice32(dst, src []float32) { logisticSlice32(dst[:len(src)], src) }

// ErfSlice32 sets dst[i] = erf(src[i]), within 5e-7 (absolute) of math.Erf.
func ErfSlice32(dst, src []float32) { erfSlice32(dst[:len(src)], src) }

// SoftmaxRow32 sets dst = softmax(src) over one contiguous row: e^(x−max)/Σe^(x−max).
func SoftmaxRow32(dst, src []float32) { softmaxRow32(dst[:len(src)], src) }

// ExpScalar32 is e^x with math.Exp's special values (NaN, +Inf above the float32 range, 0 below
// it, subnormal results) and Exp32 in between.
func ExpScalar32(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 88.72284:
		return float32(math.Inf(1))
	case x < -103.97209: // below half the smallest float32 subnormal
		return 0
	case x > 88 || x < -87.33654: // near overflow, and subnormal results: Exp32 clamps them
		return float32(math.Exp(float64(x)))
	}
	return Exp32(x)
}

func expSlice32Go(dst, src []float32) {
	for i, x := range src {
		dst[i] = ExpScalar32(x)
	}
}

func logisticSlice32Go(dst, src []float32) {
	for i, x := range src {
		if x >= 0 {
			dst[i] = 1 / (1 + ExpScalar32(-x))
		} else {
			e := ExpScalar32(x)
			dst[i] = e / (1 + e)
		}
	}
}

func erfSlice32Go(dst, src []float32) {
	for i, x := range src {
		dst[i] = float32(math.Erf(float64(x)))
	}
}

func softmaxRow32Go(dst, src []float32) {
	m := float32(math.Inf(-1))
	for _, x := range src {
		if x > m {
			m = x
		}
	}
	var sum float32
	for i, x := range src {
		e := Exp32(x - m)
		dst[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range dst {
		dst[i] *= inv
	}
}

// Erf32 is the rational approximation the vector kernel uses (Eigen's and XLA's float32 erf:
// odd degree-13 numerator over even degree-8 denominator on x clamped to [−4, 4]), in scalar form.
func Erf32(x float32) float32 {
	if x != x {
		return x
	}
	x = min(max(x, -4), 4)
	x2 := x * x
	p := x2*erfAlpha13 + erfAlpha11
	p = x2*p + erfAlpha9
	p = x2*p + erfAlpha7
	p = x2*p + erfAlpha5
	p = x2*p + erfAlpha3
	p = x2*p + erfAlpha1
	p = x * p
	q := x2*erfBeta8 + erfBeta6
	q = x2*q + erfBeta4
	q = x2*q + erfBeta2
	q = x2*q + erfBeta0
	return p / q
}

// The coefficients of Erf32 (Eigen's generic_fast_erf_float).
const (
	erfAlpha1  = -1.60960333262415e-02
	erfAlpha3  = -2.95459980854025e-03
	erfAlpha5  = -7.34990630326855e-04
	erfAlpha7  = -5.69250639462346e-05
	erfAlpha9  = -2.10102402082508e-06
	erfAlpha11 = 2.77068142495902e-08
	erfAlpha13 = -2.72614225801306e-10
	erfBeta0   = -1.42647390514189e-02
	erfBeta2   = -7.37332916720468e-03
	erfBeta4   = -1.68282697438203e-03
	erfBeta6   = -2.13374055278905e-04
	erfBeta8   = -1.45660718464996e-05
)
