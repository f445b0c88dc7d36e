package train

import (
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"
)

// TestCostOf checks the liveness peak and the FLOPs on graphs whose figures are known by hand.
func TestCostOf(t *testing.T) {
	f32 := func(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }
	// A chain a → b = a·w (64×32 · 32×16) → c = b+1 → d = c·2: after b, a's buffer is an input
	// (not counted); b (4 KiB) lives until c is made, c until d: peak = b + c = 8 KiB.
	chain := func(_ *model.Scope, in []*Node) []*Node {
		b := DotGeneral(in[0], []int{1}, nil, in[1], []int{0}, nil) // [64, 16]
		c := AddScalar(b, 1)
		return []*Node{MulScalar(c, 2)}
	}
	c, err := shapeGraph("chain", chain, nil, []shapes.Shape{f32(64, 32), f32(32, 16)})
	require.NoError(t, err)
	require.Equal(t, int64(2*64*16*4), c.PeakBytes)
	require.Equal(t, float64(2*64*16*32), c.FLOPs)

	// A fan-out keeps x alive until its last user: x = a+1 (4 KiB), y = x·2, z = x+y → peak x+y+z.
	fan := func(_ *model.Scope, in []*Node) []*Node {
		x := AddScalar(in[0], 1)
		y := MulScalar(x, 2)
		return []*Node{Add(x, y)}
	}
	c, err = shapeGraph("fan", fan, nil, []shapes.Shape{f32(1024)})
	require.NoError(t, err)
	require.Equal(t, int64(3*1024*4), c.PeakBytes)

	// A batched contraction: [4, 8, 16] · [4, 16, 32] over axis 2/1 with batch axis 0.
	batched := func(_ *model.Scope, in []*Node) []*Node {
		return []*Node{DotGeneral(in[0], []int{2}, []int{0}, in[1], []int{1}, []int{0})}
	}
	c, err = shapeGraph("batched", batched, nil, []shapes.Shape{f32(4, 8, 16), f32(4, 16, 32)})
	require.NoError(t, err)
	require.Equal(t, float64(2*4*8*32*16), c.FLOPs)
}

func TestParseBytes(t *testing.T) {
	for s, want := range map[string]int64{"8GB": 8e9, "512MiB": 512 << 20, "1.5 GB": 1.5e9, "1024": 1024, "2GiB": 2 << 30} {
		got, err := parseBytes(s)
		require.NoError(t, err, s)
		require.Equal(t, want, got, s)
	}
	for _, s := range []string{"", "eight", "3 parsecs", "-1GB"} {
		_, err := parseBytes(s)
		require.Error(t, err, s)
	}
}
