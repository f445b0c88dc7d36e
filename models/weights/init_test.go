package weights

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/require"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"github.com/loba-dev/loba/models/nn"
)

func TestInitFromScratch(t *testing.T) {
	build := func(ctx *context.Context, g *Graph) {
		x := Zeros(g, shapes.Make(dtypes.Float32, 1, 8, 4, 4))
		h := nn.Conv2D(ctx.In("conv_in"), x, 16, 3, 1, 1)
		nn.GroupNorm(ctx.In("norm1"), h, 4, 1e-5)
		nn.Linear(ctx.In("proj"), Zeros(g, shapes.Make(dtypes.Float32, 1, 32)), 10, true)
		ctx.In("token_embedding").VariableWithShape("weight", shapes.Make(dtypes.Float32, 50, 6))
	}
	decl, err := Declared(build)
	require.NoError(t, err)
	values := func(seed uint64) map[string][]float32 {
		ctx := context.New()
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
