package lora

import (
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/weights"
)

// miniModel is a component with one Linear ("blocks.0.lin"), one strided 3×3 conv with asymmetric
// padding ("blocks.0.conv") and one 1×1 conv ("blocks.1.conv").
func miniModel(ctx *model.Scope, x, img *Node) (*Node, *Node) {
	y := nn.Linear(ctx.At("blocks").At("0").At("lin"), x, 6, true) // [B, S, 6]
	h := nn.Conv2DWith(ctx.At("blocks").At("0").At("conv"), img, nn.Conv2DConfig{Out: 5, Kernel: 3, Stride: 2,
		Padding: [2][2]int{{1, 0}, {0, 1}}}) // [B, 5, H', W']
	h = nn.Conv2D(ctx.At("blocks").At("1").At("conv"), h, 7, 1, 1, 0) // [B, 7, H', W']
	return y, h
}

func randTensor(rng *rand.Rand, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return tensors.FromFlatDataAndDimensions(v, dims...)
}

// TestMergeEqualsAdapter checks that Merge at strength s gives the same outputs as the Adapter at
// multiplier s, on a Linear, a strided asymmetric-padded 3×3 conv and a 1×1 conv, with the
// component's weights under "/comp".
func TestMergeEqualsAdapter(t *testing.T) {
	backend := testutil.Backend(t)
	rng := rand.New(rand.NewPCG(1, 2))
	xT, imgT := randTensor(rng, 2, 3, 4), randTensor(rng, 2, 4, 9, 8)
	decl, err := weights.Declared(func(ctx *model.Scope, g *Graph) {
		miniModel(ctx, Zeros(g, xT.Shape()), Zeros(g, imgT.Shape()))
	})
	require.NoError(t, err)
	net, err := Resolve("comp", decl, Targets{Preset: PresetFull, Rank: 8, Alpha: 3})
	require.NoError(t, err)
	require.Len(t, net.Modules, 3)
	require.Equal(t, 4, net.Module("blocks.0.conv").Rank, "conv rank clamped to min(8, in 4, out 5)")
	require.Equal(t, 5, net.Module("blocks.1.conv").Rank, "conv rank clamped to min(8, in 5, out 7)")
	require.Equal(t, 8, net.Module("blocks.0.lin").Rank, "linear rank is not clamped")

	ctx := model.NewStore().RootScope()
	for key, s := range decl {
		scope, name := weights.KeyToScope(key)
		c := ctx.At("comp")
		for _, p := range scope {
			c = c.At("%s", p)
		}
		c.VariableWithValue(name, randTensor(rng, s.Dimensions...)).SetTrainable(false)
	}
	w := randomWeights(net, 11)
	require.NoError(t, net.SetWeights(ctx, w))

	const strength = 0.7
	run := func(withAdapter bool) (y, h []float32) {
		exec := model.MustNewExec(backend, ctx.Store(), func(_ *model.Scope, x, img, mult *Node) (*Node, *Node) {
			if withAdapter {
				prev := nn.UseAdapter(x.Graph(), net.Adapter(ctx, "/comp/", mult))
				defer nn.UseAdapter(x.Graph(), prev)
			}
			return miniModel(ctx.At("comp"), x, img)
		})
		out := exec.MustExec(xT, imgT, float32(strength))
		return flat(t, out[0]), flat(t, out[1])
	}
	yBase, hBase := run(false)
	yA, hA := run(true)
	require.Greater(t, testutil.RelErr(yBase, yA), 1e-3)
	require.Greater(t, testutil.RelErr(hBase, hA), 1e-3)
	require.NoError(t, Merge(ctx, "comp", net, w, strength))
	yM, hM := run(false)
	require.Less(t, testutil.RelErr(yM, yA), 1e-5, "linear")
	require.Less(t, testutil.RelErr(hM, hA), 1e-5, "conv")

	require.ErrorContains(t, Merge(ctx, "/other", net, w, 1), "not found")
	delete(w, "blocks.0.lin")
	require.ErrorContains(t, Merge(ctx, "/comp", net, w, 1), "no weights")
}

// TestAdapterLayout checks that the adapter targets only its modules and finds them under any
// component scope, and that a [B] multiplier of the wrong size is reported.
func TestAdapterLayout(t *testing.T) {
	backend := testutil.Backend(t)
	rng := rand.New(rand.NewPCG(3, 4))
	xT, imgT := randTensor(rng, 2, 3, 4), randTensor(rng, 2, 4, 9, 8)
	decl, err := weights.Declared(func(ctx *model.Scope, g *Graph) {
		miniModel(ctx, Zeros(g, xT.Shape()), Zeros(g, imgT.Shape()))
	})
	require.NoError(t, err)
	net, err := Resolve("comp", decl, Targets{Preset: PresetNone, Selectors: []Selector{{Match: "linear"}}})
	require.NoError(t, err)
	require.Len(t, net.Modules, 1)
	ctx := model.NewStore().RootScope()
	for key, s := range decl {
		scope, name := weights.KeyToScope(key)
		c := ctx
		for _, p := range scope {
			c = c.At("%s", p)
		}
		c.VariableWithValue(name, randTensor(rng, s.Dimensions...))
	}
	require.NoError(t, net.SetWeights(ctx, randomWeights(net, 1)))
	run := func(mult any, adapter bool) (y, h []float32, err error) {
		exec, err := model.NewExec(backend, ctx.Store(), func(_ *model.Scope, x, img, mult *Node) (*Node, *Node) {
			if adapter {
				prev := nn.UseAdapter(x.Graph(), net.Adapter(ctx, "/", mult))
				defer nn.UseAdapter(x.Graph(), prev)
			}
			return miniModel(ctx, x, img)
		})
		if err != nil {
			return nil, nil, err
		}
		out, err := exec.Exec(xT, imgT, mult)
		if err != nil {
			return nil, nil, err
		}
		return flat(t, out[0]), flat(t, out[1]), nil
	}
	y0, h0, err := run(float32(1), false)
	require.NoError(t, err)
	y1, h1, err := run(float32(1), true)
	require.NoError(t, err)
	require.Greater(t, testutil.RelErr(y1, y0), 1e-3)
	require.Equal(t, h0, h1, "the convs are not targeted")
	_, _, err = run(tensors.FromFlatDataAndDimensions([]float32{1, 1, 1}, 3), true)
	require.ErrorContains(t, err, "per-sample multiplier")
}
