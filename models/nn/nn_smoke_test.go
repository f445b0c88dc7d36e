package nn

import (
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"

	"github.com/loba-dev/loba/internal/testutil"
)

func TestSmokeLayers(t *testing.T) {
	backend := testutil.Backend(t)
	ctx := model.NewStore().RootScope()
	ctx = ctx.WithInitializer(initializer.RandomNormalFn(ctx, 0.1))
	out := model.MustExecOnce(backend, ctx.Store(), func(_ *model.Scope, x *Node) *Node {
		h := Conv2D(ctx.At("conv_in"), x, 8, 3, 1, 1) // [2, 8, 6, 5]
		h = GroupNorm(ctx.At("norm"), h, 4, 1e-5)
		seq := Reshape(Transpose(h, 1, 3), 2, 30, 8) // [2, 30, 8]
		seq = LayerNorm(ctx.At("ln"), seq, 1e-5)
		q := Linear(ctx.At("to_q"), seq, 8, false)
		a := ScaledDotProductAttention(q, q, q, 2, true)
		a = GEGLU(ctx.At("ff"), a, 6)
		te := TimestepEmbedding(Const(x.Graph(), []int64{1, 999}), 7, true, 0, 1, 10000)
		return Add(ReduceAllSum(a), ReduceAllSum(te))
	}, tensors.FromShape(shapes.Make(dtypes.Float32, 2, 3, 6, 5)))
	t.Log(out.Value())

}
