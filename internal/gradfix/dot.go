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

	dLhs = operandGrad(gemm.DotGeneral(v, vRFree, vBatch, rhs, rFree, rb), lhs.Rank(), lb, lFree, lc, rc)
	dRhs = operandGrad(gemm.DotGeneral(v, vLFree, vBatch, lhs, lFree, lb), rhs.Rank(), rb, rFree, rc, lc)
	return
}

// operandGrad transposes the product of the cotangent with the other operand — laid out [batch...,
// this operand's free axes..., the other operand's contracting axes in ascending order...] — back
// to this operand's axes (rank of them): batch, free and contracting are this operand's axes,
// otherContracting the other's, paired with contracting position by position.
func operandGrad(g *Node, rank int, batch, free, contracting, otherContracting []int) *Node {
	nb := len(batch)
	perm := make([]int, rank)
	for i, axis := range batch {
		perm[axis] = i
	}
	for i, axis := range free {
		perm[axis] = nb + i
	}
	for i, otherAxis := range sortedCopy(otherContracting) {
		perm[contracting[slices.Index(otherContracting, otherAxis)]] = nb + len(free) + i
	}
	return gemm.TransposeIfNeeded(g, perm)
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
