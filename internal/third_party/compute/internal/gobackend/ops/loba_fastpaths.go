// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package ops

// LOBA patch: float32 fast paths for the ops that dominate small convolutional UNets on the Go
// backend — broadcasting Add/Sub/Mul/Div, ReduceSum/ReduceMax, Slice and Transpose. The generic
// executors walk every element through a multi-axis index iterator (1.5–3 ns per element); these
// collapse the shapes into contiguous runs first (a bias [1, C, 1, 1] added to [B, C, H, W] is B·C
// runs of H·W with one scalar each; a GroupNorm sum over [B, G, n] is B·G contiguous sums; a conv
// patch Slice copies whole rows; a layout Transpose is a blocked 2-D transpose or a copy of rows)
// and run plain loops over them. Anything else (other dtypes, dynamic shapes, strided slices,
// other permutations) goes to the generic executor unchanged.

import (
	"math"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/internal/gobackend"
)

func init() {
	for _, op := range []compute.OpType{compute.OpTypeAdd, compute.OpTypeSub, compute.OpTypeMul, compute.OpTypeDiv} {
		gobackend.SetNodeExecutor(op, gobackend.PriorityTyped, lobaBinaryF32)
	}
	gobackend.SetNodeExecutor(compute.OpTypeReduceSum, gobackend.PriorityTyped, lobaReduceF32)
	gobackend.SetNodeExecutor(compute.OpTypeReduceMax, gobackend.PriorityTyped, lobaReduceF32)
	gobackend.SetNodeExecutor(compute.OpTypeSlice, gobackend.PriorityTyped, lobaSliceF32)
	gobackend.SetNodeExecutor(compute.OpTypeTranspose, gobackend.PriorityTyped, lobaTransposeF32)
}

// lobaGeneric is the executor each fast path falls back to.
func lobaGeneric(op compute.OpType) gobackend.NodeExecutor {
	switch op { //nolint:exhaustive
	case compute.OpTypeAdd:
		return execAdd
	case compute.OpTypeSub:
		return execSub
	case compute.OpTypeMul:
		return execMul
	case compute.OpTypeDiv:
		return execDiv
	case compute.OpTypeReduceSum, compute.OpTypeReduceMax:
		return execReduce
	case compute.OpTypeSlice:
		return execSlice
	case compute.OpTypeTranspose:
		return execTranspose
	}
	panic("lobaGeneric: no generic executor for " + op.String())
}

// lobaAxis is one axis of a collapsed iteration space: its size and, for each of up to two
// operands, its stride there (0 where the operand is broadcast or reduced along it).
type lobaAxis struct {
	size   int
	s0, s1 int
}

// lobaCollapse merges neighbouring axes whose strides chain (outer stride = inner stride × inner
// size, or both 0) in both operands, and drops size-1 axes. axes are outermost first.
func lobaCollapse(axes []lobaAxis) []lobaAxis {
	var out []lobaAxis
	for _, a := range axes {
		if a.size == 1 {
			continue
		}
		out = append(out, a)
	}
	for i := len(out) - 1; i > 0; i-- {
		outer, inner := out[i-1], out[i]
		chains := func(so, si int) bool { return so == si*inner.size }
		if chains(outer.s0, inner.s0) && chains(outer.s1, inner.s1) {
			out[i-1] = lobaAxis{size: outer.size * inner.size, s0: inner.s0, s1: inner.s1}
			out = append(out[:i], out[i+1:]...)
		}
	}
	return out
}

// lobaWalk calls fn(o0, o1) with the two operands' offsets at the start of every inner run, over
// all outer axes (all but the last) in row-major order.
func lobaWalk(outer []lobaAxis, fn func(o0, o1 int)) {
	if len(outer) == 0 {
		fn(0, 0)
		return
	}
	idx := make([]int, len(outer))
	o0, o1 := 0, 0
	for {
		fn(o0, o1)
		a := len(outer) - 1
		for ; a >= 0; a-- {
			idx[a]++
			o0 += outer[a].s0
			o1 += outer[a].s1
			if idx[a] < outer[a].size {
				break
			}
			o0 -= outer[a].s0 * outer[a].size
			o1 -= outer[a].s1 * outer[a].size
			idx[a] = 0
		}
		if a < 0 {
			return
		}
	}
}

// lobaStrides are the row-major strides of dims.
func lobaStrides(dims []int) []int {
	s := make([]int, len(dims))
	st := 1
	for i := len(dims) - 1; i >= 0; i-- {
		s[i] = st
		st *= dims[i]
	}
	return s
}

// Binary ops ======================================================================================

func lobaBinaryF32(backend *gobackend.Backend, node *gobackend.Node, inputs []*gobackend.Buffer, inputsOwned []bool) (*gobackend.Buffer, error) {
	l, r := inputs[0].RawShape, inputs[1].RawShape
	out := node.Shape
	if out.DType != dtypes.Float32 || l.DType != dtypes.Float32 || r.DType != dtypes.Float32 || out.IsDynamic() ||
		(l.Size() != 1 && l.Rank() != out.Rank()) || (r.Size() != 1 && r.Rank() != out.Rank()) ||
		(l.Size() != 1 && r.Size() != 1 && l.Equal(r)) || l.Size() == 1 && r.Size() == 1 {
		// Same shapes and scalars: the generic executor's plain loops are as fast.
		return lobaGeneric(node.OpType)(backend, node, inputs, inputsOwned)
	}
	// Strides of the output-shaped iteration in each operand (0 where broadcast).
	axes := make([]lobaAxis, out.Rank())
	var ls, rs []int
	if l.Size() != 1 {
		ls = lobaStrides(l.Dimensions)
	}
	if r.Size() != 1 {
		rs = lobaStrides(r.Dimensions)
	}
	for a, d := range out.Dimensions {
		axes[a].size = d
		if ls != nil && l.Dimensions[a] == d {
			axes[a].s0 = ls[a]
		}
		if rs != nil && r.Dimensions[a] == d {
			axes[a].s1 = rs[a]
		}
	}
	axes = lobaCollapse(axes)
	lhs, rhs, output, _, _ := binaryOperandsAndOutputForExecution(backend, node, inputs, inputsOwned, out)
	lf, rf, of := lhs.Flat.([]float32), rhs.Flat.([]float32), output.Flat.([]float32)
	if len(axes) == 0 { // a single element
		lobaBinaryRun(node.OpType, of, lf, rf, 0, 0)
		return output, nil
	}
	inner := axes[len(axes)-1]
	n := inner.size
	pos := 0
	lobaWalk(axes[:len(axes)-1], func(o0, o1 int) {
		dst := of[pos : pos+n]
		var a, b []float32
		if inner.s0 != 0 {
			a = lf[o0 : o0+n]
		} else {
			a = lf[o0 : o0+1]
		}
		if inner.s1 != 0 {
			b = rf[o1 : o1+n]
		} else {
			b = rf[o1 : o1+1]
		}
		lobaBinaryRun(node.OpType, dst, a, b, inner.s0, inner.s1)
		pos += n
	})
	return output, nil
}

// lobaBinaryRun computes dst = a ∘ b over one run; a (b) holds one value broadcast over the run
// when its stride sa (sb) is 0.
func lobaBinaryRun(op compute.OpType, dst, a, b []float32, sa, sb int) {
	switch {
	case sa != 0 && sb != 0:
		a, b = a[:len(dst)], b[:len(dst)]
		switch op { //nolint:exhaustive
		case compute.OpTypeAdd:
			for i := range dst {
				dst[i] = a[i] + b[i]
			}
		case compute.OpTypeSub:
			for i := range dst {
				dst[i] = a[i] - b[i]
			}
		case compute.OpTypeMul:
			for i := range dst {
				dst[i] = a[i] * b[i]
			}
		case compute.OpTypeDiv:
			for i := range dst {
				dst[i] = a[i] / b[i]
			}
		}
	case sa != 0:
		a = a[:len(dst)]
		c := b[0]
		switch op { //nolint:exhaustive
		case compute.OpTypeAdd:
			for i := range dst {
				dst[i] = a[i] + c
			}
		case compute.OpTypeSub:
			for i := range dst {
				dst[i] = a[i] - c
			}
		case compute.OpTypeMul:
			for i := range dst {
				dst[i] = a[i] * c
			}
		case compute.OpTypeDiv:
			for i := range dst {
				dst[i] = a[i] / c
			}
		}
	case sb != 0:
		b = b[:len(dst)]
		c := a[0]
		switch op { //nolint:exhaustive
		case compute.OpTypeAdd:
			for i := range dst {
				dst[i] = c + b[i]
			}
		case compute.OpTypeSub:
			for i := range dst {
				dst[i] = c - b[i]
			}
		case compute.OpTypeMul:
			for i := range dst {
				dst[i] = c * b[i]
			}
		case compute.OpTypeDiv:
			for i := range dst {
				dst[i] = c / b[i]
			}
		}
	default:
		var v float32
		switch op { //nolint:exhaustive
		case compute.OpTypeAdd:
			v = a[0] + b[0]
		case compute.OpTypeSub:
			v = a[0] - b[0]
		case compute.OpTypeMul:
			v = a[0] * b[0]
		case compute.OpTypeDiv:
			v = a[0] / b[0]
		}
		for i := range dst {
			dst[i] = v
		}
	}
}

// Reductions ======================================================================================

func lobaReduceF32(backend *gobackend.Backend, node *gobackend.Node, inputs []*gobackend.Buffer, inputsOwned []bool) (*gobackend.Buffer, error) {
	in := inputs[0].RawShape
	reduceAxes, _ := node.Data.([]int)
	if in.DType != dtypes.Float32 || node.Shape.IsDynamic() || in.IsDynamic() || len(reduceAxes) == 0 || in.Size() == 0 {
		return lobaGeneric(node.OpType)(backend, node, inputs, inputsOwned)
	}
	reduced := make([]bool, in.Rank())
	for _, a := range reduceAxes {
		reduced[a] = true
	}
	// s0: the input's strides; s1: the output's (0 along reduced axes).
	inStrides := lobaStrides(in.Dimensions)
	axes := make([]lobaAxis, in.Rank())
	outStride := 1
	for a := in.Rank() - 1; a >= 0; a-- {
		axes[a] = lobaAxis{size: in.Dimensions[a], s0: inStrides[a]}
		if !reduced[a] {
			axes[a].s1 = outStride
			outStride *= in.Dimensions[a]
		}
	}
	axes = lobaCollapse(axes)
	output, err := backend.GetBuffer(node.Shape)
	if err != nil {
		return nil, err
	}
	src, dst := inputs[0].Flat.([]float32), output.Flat.([]float32)
	isMax := node.OpType == compute.OpTypeReduceMax
	init := float32(0)
	if isMax {
		init = float32(math.Inf(-1))
	}
	for i := range dst {
		dst[i] = init
	}
	if len(axes) == 0 {
		if isMax {
			dst[0] = max(dst[0], src[0])
		} else {
			dst[0] += src[0]
		}
		return output, nil
	}
	inner := axes[len(axes)-1]
	n := inner.size
	lobaWalk(axes[:len(axes)-1], func(oi, oo int) {
		run := src[oi : oi+n]
		switch {
		case inner.s1 == 0 && isMax: // the run is reduced into one output
			dst[oo] = lobaMaxRun(dst[oo], run)
		case inner.s1 == 0:
			dst[oo] += lobaSumRun(run)
		case isMax: // the run maps onto a run of outputs
			d := dst[oo : oo+n]
			for i, v := range run {
				d[i] = lobaMax(d[i], v)
			}
		default:
			d := dst[oo : oo+n]
			for i, v := range run {
				d[i] += v
			}
		}
	})
	return output, nil
}

// lobaMax is max that propagates NaN as the generic ReduceMax does.
func lobaMax(a, b float32) float32 {
	if b > a || b != b {
		return b
	}
	return a
}

func lobaMaxRun(m float32, run []float32) float32 {
	for _, v := range run {
		m = lobaMax(m, v)
	}
	return m
}

// lobaSumRun sums with four accumulators (independent add chains).
func lobaSumRun(run []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(run); i += 4 {
		s0 += run[i]
		s1 += run[i+1]
		s2 += run[i+2]
		s3 += run[i+3]
	}
	for ; i < len(run); i++ {
		s0 += run[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// Slice ===========================================================================================

func lobaSliceF32(backend *gobackend.Backend, node *gobackend.Node, inputs []*gobackend.Buffer, inputsOwned []bool) (*gobackend.Buffer, error) {
	in := inputs[0].RawShape
	params, ok := node.Data.(*sliceNode)
	if !ok || in.DType != dtypes.Float32 || in.IsDynamic() || node.Shape.IsDynamic() || node.Shape.Size() == 0 {
		return lobaGeneric(node.OpType)(backend, node, inputs, inputsOwned)
	}
	for _, s := range params.strides {
		if s != 1 {
			return lobaGeneric(node.OpType)(backend, node, inputs, inputsOwned)
		}
	}
	inStrides := lobaStrides(in.Dimensions)
	outStrides := lobaStrides(node.Shape.Dimensions)
	start := 0
	axes := make([]lobaAxis, in.Rank())
	for a, d := range node.Shape.Dimensions {
		start += params.starts[a] * inStrides[a]
		axes[a] = lobaAxis{size: d, s0: inStrides[a], s1: outStrides[a]}
	}
	axes = lobaCollapse(axes)
	output, err := backend.GetBuffer(node.Shape)
	if err != nil {
		return nil, err
	}
	src, dst := inputs[0].Flat.([]float32)[start:], output.Flat.([]float32)
	if len(axes) == 0 {
		dst[0] = src[0]
		return output, nil
	}
	inner := axes[len(axes)-1] // contiguous in the output; in the input unless a 1-wide axis follows
	n, st := inner.size, inner.s0
	lobaWalk(axes[:len(axes)-1], func(oi, oo int) {
		if st == 1 {
			copy(dst[oo:oo+n], src[oi:oi+n])
			return
		}
		for i := range n {
			dst[oo+i] = src[oi+i*st]
		}
	})
	return output, nil
}

// Transpose =======================================================================================

func lobaTransposeF32(backend *gobackend.Backend, node *gobackend.Node, inputs []*gobackend.Buffer, inputsOwned []bool) (*gobackend.Buffer, error) {
	in := inputs[0].RawShape
	perm, _ := node.Data.([]int)
	if in.DType != dtypes.Float32 || in.IsDynamic() || len(perm) != in.Rank() || in.Size() == 0 {
		return lobaGeneric(node.OpType)(backend, node, inputs, inputsOwned)
	}
	// Iterate in output order: axis a of the output is input axis perm[a]; s0 = input stride,
	// s1 = output stride.
	inStrides := lobaStrides(in.Dimensions)
	outDims := make([]int, len(perm))
	for a, p := range perm {
		outDims[a] = in.Dimensions[p]
	}
	outStrides := lobaStrides(outDims)
	axes := make([]lobaAxis, len(perm))
	for a, p := range perm {
		axes[a] = lobaAxis{size: outDims[a], s0: inStrides[p], s1: outStrides[a]}
	}
	axes = lobaCollapse(axes)
	output, err := backend.GetBuffer(node.Shape)
	if err != nil {
		return nil, err
	}
	src, dst := inputs[0].Flat.([]float32), output.Flat.([]float32)
	if len(axes) == 0 {
		dst[0] = src[0]
		return output, nil
	}
	inner := axes[len(axes)-1]
	if inner.s0 == 1 { // rows stay contiguous: copy them
		n := inner.size
		lobaWalk(axes[:len(axes)-1], func(oi, oo int) {
			copy(dst[oo:oo+n], src[oi:oi+n])
		})
		return output, nil
	}
	// The output's inner axis walks the input with stride inner.s0: find the output axis that walks
	// the input contiguously (the input's innermost) and transpose the pair in 8×8 blocks.
	k := -1
	for a := range axes {
		if axes[a].s0 == 1 {
			k = a
		}
	}
	if k < 0 {
		return lobaGeneric(node.OpType)(backend, node, inputs, inputsOwned)
	}
	rowsAx, colsAx := axes[k], inner // output[... r ... c]: input offset r·1 + c·inner.s0
	var outer []lobaAxis
	for a := range axes[:len(axes)-1] {
		if a != k {
			outer = append(outer, axes[a])
		}
	}
	const blk = 8
	lobaWalk(outer, func(oi, oo int) {
		switch {
		case rowsAx.size <= 16: // few output rows: read the input contiguously, write ≤ 16 streams
			for c := range colsAx.size {
				s := src[oi+c*colsAx.s0 : oi+c*colsAx.s0+rowsAx.size]
				for r, v := range s {
					dst[oo+r*rowsAx.s1+c] = v
				}
			}
		case colsAx.size <= 16: // short output rows: write them contiguously, read ≤ 16 streams
			for r := range rowsAx.size {
				d := dst[oo+r*rowsAx.s1 : oo+r*rowsAx.s1+colsAx.size]
				for c := range d {
					d[c] = src[oi+r+c*colsAx.s0]
				}
			}
		default:
			for r0 := 0; r0 < rowsAx.size; r0 += blk {
				r1 := min(r0+blk, rowsAx.size)
				for c0 := 0; c0 < colsAx.size; c0 += blk {
					c1 := min(c0+blk, colsAx.size)
					for r := r0; r < r1; r++ {
						d := dst[oo+r*rowsAx.s1:]
						s := src[oi+r:]
						for c := c0; c < c1; c++ {
							d[c] = s[c*colsAx.s0]
						}
					}
				}
			}
		}
	})
	return output, nil
}
