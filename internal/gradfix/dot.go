package gradfix

import (
	"slices"

	"github.com/loba-dev/loba/models/nn/gemm"

	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
)

// dotGeneralVJP: out = DotGeneral(lhs, lc, lb, rhs, rc, rb), laid out as
// [batch..., lhs free axes (ascending)..., rhs free axes (ascending)...].
func dotGeneralVJP(node, v *Node) []*Node {
	p := params(node, "lhsContractingAxes", "lhsBatchAxes", "rhsContractingAxes", "rhsBatchAxes")
	inputs := node.Inputs()
	lhs, rhs := inputs[0], inputs[1]
	dl, dr := DotGeneralGrads(v, lhs, intsOf(p.FieldByName("lhsContractingAxes")), intsOf(p.FieldByName("lhsBatchAxes")),
		rhs, intsOf(p.FieldByName("rhsContractingAxes")), intsOf(p.FieldByName("rhsBatchAxes")))
	return []*Node{dl, dr}
}

// DotGeneralGrads returns the gradients w.r.t. lhs and rhs of
// DotGeneral(lhs, lhsContracting, lhsBatch, rhs, rhsContracting, rhsBatch), given the cotangent v
// of its output: each is one DotGeneral of v with the other operand (contracting the other
// operand's free axes, keeping the batch axes), followed by a Transpose back to the operand's axes
// order when it differs. Negative axes count from the end.
func DotGeneralGrads(v, lhs *Node, lc, lb []int, rhs *Node, rc, rb []int) (dLhs, dRhs *Node) {
	lc, lb = gemm.NonNegative(lhs.Rank(), lc), gemm.NonNegative(lhs.Rank(), lb)
	rc, rb = gemm.NonNegative(rhs.Rank(), rc), gemm.NonNegative(rhs.Rank(), rb)
	nb := len(lb)
	lFree := gemm.FreeAxes(lhs.Rank(), lc, lb)
	rFree := gemm.FreeAxes(rhs.Rank(), rc, rb)
	vBatch := iota(0, nb)
	vLFree := iota(nb, len(lFree))
	vRFree := iota(nb+len(lFree), len(rFree))
	if v.Rank() != nb+len(lFree)+len(rFree) {
		exceptions.Panicf("gradfix: DotGeneral cotangent %s does not match lhs %s, rhs %s", v.Shape(), lhs.Shape(), rhs.Shape())
	}

	// dLhs: [batch..., lhs free..., rhs contracting axes in ascending rhs order...].
	dLhs = gemm.DotGeneral(v, vRFree, vBatch, rhs, rFree, rb)
	perm := make([]int, lhs.Rank())
	for i, axis := range lb {
		perm[axis] = i
	}
	for i, axis := range lFree {
		perm[axis] = nb + i
	}
	for i, rAxis := range sortedCopy(rc) {
		perm[lc[slices.Index(rc, rAxis)]] = nb + len(lFree) + i
	}
	dLhs = gemm.TransposeIfNeeded(dLhs, perm)

	// dRhs: [batch..., rhs free..., lhs contracting axes in ascending lhs order...].
	dRhs = gemm.DotGeneral(v, vLFree, vBatch, lhs, lFree, lb)
	perm = make([]int, rhs.Rank())
	for i, axis := range rb {
		perm[axis] = i
	}
	for i, axis := range rFree {
		perm[axis] = nb + i
	}
	for i, lAxis := range sortedCopy(lc) {
		perm[rc[slices.Index(lc, lAxis)]] = nb + len(rFree) + i
	}
	dRhs = gemm.TransposeIfNeeded(dRhs, perm)
	return
}

func iota(start, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i
	}
	return out
}

func sortedCopy(x []int) []int {
	out := slices.Clone(x)
	slices.Sort(out)
	return out
}
