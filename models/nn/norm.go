package nn

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// GroupNorm ports torch.nn.GroupNorm(groups, C, eps, affine=True): weight and bias [C].
// x: [B, C, ...] → same shape. Statistics are computed in float32 (biased variance, as torch).
func GroupNorm(ctx *model.Scope, x *Node, groups int, eps float64) *Node {
	dims := x.Shape().Dimensions
	if x.Rank() < 2 || groups <= 0 || dims[1]%groups != 0 {
		exceptions.Panicf("nn.GroupNorm at %q: %d groups do not divide the channels of x %s", ctx.Scope(), groups, x.Shape())
	}
	c := dims[1]
	dtype := x.DType()
	h := Reshape(ConvertDType(x, dtypes.Float32), dims[0], groups, -1) // [B, G, C/G·rest]
	h = normalize(h, eps)
	h = ConvertDType(Reshape(h, dims...), dtype) // [B, C, ...]
	affine := make([]int, x.Rank())
	for i := range affine {
		affine[i] = 1
	}
	affine[1] = c
	w := ctx.VariableWithShape("weight", shapes.Make(dtype, c)).NodeValue(x.Graph())
	b := ctx.VariableWithShape("bias", shapes.Make(dtype, c)).NodeValue(x.Graph())
	return Add(Mul(h, Reshape(w, affine...)), Reshape(b, affine...))
}

// LayerNorm ports torch.nn.LayerNorm(C, eps) over the last axis: weight and bias [C].
// x: [..., C] → same shape.
func LayerNorm(ctx *model.Scope, x *Node, eps float64) *Node {
	c := x.Shape().Dim(-1)
	dtype := x.DType()
	h := ConvertDType(normalize(ConvertDType(x, dtypes.Float32), eps), dtype)
	w := ctx.VariableWithShape("weight", shapes.Make(dtype, c)).NodeValue(x.Graph())
	b := ctx.VariableWithShape("bias", shapes.Make(dtype, c)).NodeValue(x.Graph())
	return Add(Mul(h, ExpandLeftToRank(w, x.Rank())), ExpandLeftToRank(b, x.Rank()))
}

// normalize is (h − mean) / sqrt(var + eps) over h's last axis (biased variance, as torch). Where the
// backend has a fused layer norm (the Go backend: one pass per row instead of nine element-wise
// ops and reductions) the forward runs it, and gradients flow through the decomposed form.
func normalize(h *Node, eps float64) *Node {
	decomposed := func() *Node {
		mean := ReduceAndKeep(h, ReduceMean, -1)
		centered := Sub(h, mean)
		variance := ReduceAndKeep(Square(centered), ReduceMean, -1)
		return Div(centered, Sqrt(AddScalar(variance, eps)))
	}
	out, _ := InternalFusedOpCaller(func() *Node {
		return BackendFusedLayerNorm(h, []int{h.Rank() - 1}, eps, nil, nil)
	}, decomposed, true)
	return out
}
