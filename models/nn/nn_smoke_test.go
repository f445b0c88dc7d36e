package nn

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"

	"github.com/loba-dev/loba/internal/testutil"
)

func TestSmokeLayers(t *testing.T) {
	backend := testutil.Backend(t)
	ctx := context.New()
	ctx = ctx.WithInitializer(initializers.RandomNormalFn(ctx, 0.1))
	out := context.MustExecOnce(backend, ctx, func(ctx *context.Context, x *Node) *Node {
		h := Conv2D(ctx.In("conv_in"), x, 8, 3, 1, 1) // [2, 8, 6, 5]
		h = GroupNorm(ctx.In("norm"), h, 4, 1e-5)
		seq := Reshape(Transpose(h, 1, 3), 2, 30, 8) // [2, 30, 8]
		seq = LayerNorm(ctx.In("ln"), seq, 1e-5)
		q := Linear(ctx.In("to_q"), seq, 8, false)
		a := ScaledDotProductAttention(q, q, q, 2, true)
		a = GEGLU(ctx.In("ff"), a, 6)
		te := TimestepEmbedding(Const(x.Graph(), []int64{1, 999}), 7, true, 0, 1, 10000)
		return Add(ReduceAllSum(a), ReduceAllSum(te))
	}, tensors.FromShape(shapes.Make(dtypes.Float32, 2, 3, 6, 5)))
	t.Log(out.Value())

}
