package nn

import (
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Linear ports torch.nn.Linear: y = x Wᵀ + b, with weight [out, in] and bias [out] declared in ctx.
// x: [..., in] → [..., out].
func Linear(ctx *model.Scope, x *Node, out int, bias bool) *Node {
	in := x.Shape().Dim(-1)
	if out <= 0 || in <= 0 {
		exceptions.Panicf("nn.Linear at %q: bad sizes in=%d out=%d (x: %s)", ctx.Scope(), in, out, x.Shape())
	}
	w := ctx.VariableWithShape("weight", shapes.Make(x.DType(), out, in)).NodeValue(x.Graph())
	y := Dense(x, w) // [..., out]
	if bias {
		b := ctx.VariableWithShape("bias", shapes.Make(x.DType(), out)).NodeValue(x.Graph())
		y = Add(y, ExpandLeftToRank(b, y.Rank()))
	}
	if a := adapterOf(x.Graph()); a != nil {
		if d := a.LinearDelta(ctx, x, out); d != nil {
			y = Add(y, d) // [..., out]
		}
	}
	return y
}
