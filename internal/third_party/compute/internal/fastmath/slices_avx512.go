// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package fastmath

import (
	"math"
	"simd/archsimd"
)

// LOBA patch: 16-lane AVX-512 versions of the slice kernels in slices.go.

func init() {
	if archsimd.X86.AVX512() {
		expSlice32 = expSlice32AVX512
		logisticSlice32 = logisticSlice32AVX512
		erfSlice32 = erfSlice32AVX512
		softmaxRow32 = softmaxRow32AVX512
	}
}

func bcast(v float32) archsimd.Float32x16 { return archsimd.BroadcastFloat32x16(v) }

// apply16 sets dst = f(src) 16 lanes at a time, the last partial block zero-padded.
func apply16(dst, src []float32, f func(archsimd.Float32x16) archsimd.Float32x16) {
	i := 0
	for ; i+16 <= len(src); i += 16 {
		f(archsimd.LoadFloat32x16Slice(src[i:])).StoreSlice(dst[i:])
	}
	if i < len(src) {
		f(archsimd.LoadFloat32x16SlicePart(src[i:])).StoreSlicePart(dst[i:])
	}
}

// exp16 is e^x for x already clamped to [−104, 88.8]: Exp32's range reduction and Cephes
// polynomial, with the 2^n scale done by VSCALEFPS (exact, subnormal and overflowing results
// included: 88.8 gives +Inf).
func exp16(x archsimd.Float32x16) archsimd.Float32x16 {
	const (
		log2E = 1.44269504088896341
		ln2Hi = 0.693359375
		ln2Lo = -2.12194440e-4
		p7    = 1.9875691500e-4
		p6    = 1.3981999507e-3
		p5    = 8.3334519073e-3
		p4    = 4.1665795894e-2
		p3    = 1.6666665459e-1
		p2    = 5.0000001201e-1
	)
	z := x.Mul(bcast(log2E)).RoundToEvenScaled(0)
	g := z.MulAdd(bcast(-ln2Hi), x)
	g = z.MulAdd(bcast(-ln2Lo), g)
	p := g.MulAdd(bcast(p7), bcast(p6))
	p = p.MulAdd(g, bcast(p5))
	p = p.MulAdd(g, bcast(p4))
	p = p.MulAdd(g, bcast(p3))
	p = p.MulAdd(g, bcast(p2))
	e := p.MulAdd(g.Mul(g), g.Add(bcast(1)))
	return e.Scale(z)
}

// expFull16 is e^x with math.Exp's special values.
func expFull16(x archsimd.Float32x16) archsimd.Float32x16 {
	nan := x.IsNaN()
	e := exp16(x.Max(bcast(-104)).Min(bcast(88.8)))
	e = e.Masked(x.GreaterEqual(bcast(-103.97209))) // 0 below the float32 range (and for NaN)
	return x.Merge(e, nan)                          // NaN where x is NaN
}

func expSlice32AVX512(dst, src []float32) { apply16(dst, src, expFull16) }

func logistic16(x archsimd.Float32x16) archsimd.Float32x16 {
	nan := x.IsNaN()
	neg := x.Less(bcast(0))
	// e = e^−|x| ≤ 1: 1/(1+e) for x ≥ 0 and e/(1+e) for x < 0 (subnormal results included).
	e := exp16(x.Max(x.Mul(bcast(-1))).Mul(bcast(-1)).Max(bcast(-104)))
	e = e.Masked(x.Max(x.Mul(bcast(-1))).LessEqual(bcast(103.97209))) // 0 beyond the float32 range
	r := bcast(1).Div(e.Add(bcast(1)))
	s := e.Mul(r).Merge(r, neg) // e·r where x < 0, r elsewhere
	return x.Merge(s, nan)
}

func logisticSlice32AVX512(dst, src []float32) { apply16(dst, src, logistic16) }

func erf16(v archsimd.Float32x16) archsimd.Float32x16 {
	nan := v.IsNaN()
	x := v.Max(bcast(-4)).Min(bcast(4))
	x2 := x.Mul(x)
	p := x2.MulAdd(bcast(erfAlpha13), bcast(erfAlpha11))
	p = x2.MulAdd(p, bcast(erfAlpha9))
	p = x2.MulAdd(p, bcast(erfAlpha7))
	p = x2.MulAdd(p, bcast(erfAlpha5))
	p = x2.MulAdd(p, bcast(erfAlpha3))
	p = x2.MulAdd(p, bcast(erfAlpha1))
	p = x.Mul(p)
	q := x2.MulAdd(bcast(erfBeta8), bcast(erfBeta6))
	q = x2.MulAdd(q, bcast(erfBeta4))
	q = x2.MulAdd(q, bcast(erfBeta2))
	q = x2.MulAdd(q, bcast(erfBeta0))
	return v.Merge(p.Div(q), nan)
}

func erfSlice32AVX512(dst, src []float32) { apply16(dst, src, erf16) }

func softmaxRow32AVX512(dst, src []float32) {
	n := len(src)
	if n < 16 {
		softmaxRow32Go(dst, src)
		return
	}
	// Pass 1: the maximum (the tail re-reads the last full 16 lanes, which does not change a max).
	mv := archsimd.LoadFloat32x16Slice(src)
	for i := 16; i < n; i += 16 {
		j := min(i, n-16)
		mv = mv.Max(archsimd.LoadFloat32x16Slice(src[j:]))
	}
	var lanes [16]float32
	mv.Store(&lanes)
	m := float32(math.Inf(-1))
	for _, v := range lanes {
		m = max(m, v)
	}
	// Pass 2: e^(x−m) and its sum; arguments are ≤ 0, clamped at −104 (e^−104 ≈ 0).
	mb := bcast(m)
	acc := bcast(0)
	i := 0
	for ; i+16 <= n; i += 16 {
		d := archsimd.LoadFloat32x16Slice(src[i:]).Sub(mb)
		e := d.Merge(exp16(d.Max(bcast(-104))), d.IsNaN()) // NaN stays NaN
		e.StoreSlice(dst[i:])
		acc = acc.Add(e)
	}
	if i < n {
		// The last partial block through a padded copy: padding lanes are −Inf, e^−Inf = 0.
		var buf [16]float32
		for j := range buf {
			buf[j] = float32(math.Inf(-1))
		}
		copy(buf[:], src[i:])
		d := archsimd.LoadFloat32x16(&buf).Sub(mb)
		e := exp16(d.Max(bcast(-104))).Masked(d.Greater(bcast(-104)))
		e = d.Merge(e, d.IsNaN())
		e.Store(&buf)
		copy(dst[i:], buf[:n-i])
		acc = acc.Add(e)
	}
	acc.Store(&lanes)
	var sum float32
	for _, v := range lanes {
		sum += v
	}
	// Pass 3: normalise.
	inv := bcast(1 / sum)
	i = 0
	for ; i+16 <= n; i += 16 {
		archsimd.LoadFloat32x16Slice(dst[i:]).Mul(inv).StoreSlice(dst[i:])
	}
	if i < n {
		v := archsimd.LoadFloat32x16SlicePart(dst[i:]).Mul(inv)
		v.StoreSlicePart(dst[i:])
	}
}
