package weights

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"

	"github.com/loba-dev/loba/models/nn"
)

func TestInitFromScratch(t *testing.T) {
	build := func(ctx *model.Scope, g *Graph) {
		x := Zeros(g, shapes.Make(dtypes.Float32, 1, 8, 4, 4))
		h := nn.Conv2D(ctx.At("conv_in"), x, 16, 3, 1, 1)
		nn.GroupNorm(ctx.At("norm1"), h, 4, 1e-5)
		nn.Linear(ctx.At("proj"), Zeros(g, shapes.Make(dtypes.Float32, 1, 32)), 10, true)
		ctx.At("token_embedding").VariableWithShape("weight", shapes.Make(dtypes.Float32, 50, 6))
	}
	decl, err := Declared(build)
	require.NoError(t, err)
	values := func(seed uint64) map[string][]float32 {
		ctx := model.NewStore().RootScope()
		require.NoError(t, InitFromScratch(ctx, decl, seed, 0.02))
		out := map[string][]float32{}
		for v := range ctx.IterVariables() {
			require.True(t, v.Trainable)
			out[ScopeToKey("", v.Scope(), v.Name())] = tensors.MustCopyFlatData[float32](v.MustValue())
		}
		return out
	}
	a, b, c := values(1), values(1), values(2)
	require.Equal(t, a, b, "same seed, same values")
	require.NotEqual(t, a["conv_in.weight"], c["conv_in.weight"])
	bound := 1 / math.Sqrt(8*9)
	for _, v := range a["conv_in.weight"] {
		require.LessOrEqual(t, math.Abs(float64(v)), bound)
	}
	for _, v := range a["conv_in.bias"] {
		require.LessOrEqual(t, math.Abs(float64(v)), bound)
	}
	for _, v := range a["norm1.weight"] {
		require.Equal(t, float32(1), v)
	}
	for _, v := range a["norm1.bias"] {
		require.Zero(t, v)
	}
	var sq float64
	for _, v := range a["token_embedding.weight"] {
		sq += float64(v) * float64(v)
	}
	require.InDelta(t, 0.02, math.Sqrt(sq/300), 0.005)
}
