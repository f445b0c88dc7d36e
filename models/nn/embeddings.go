package nn

import (
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
)

func shapesMake(dtype dtypes.DType, dims ...int) shapes.Shape { return shapes.Make(dtype, dims...) }

// TimestepEmbedding ports diffusers get_timestep_embedding (embeddings.py), in float32:
//
//	exponent_k = -ln(max_period) · k / (half - downscale_freq_shift), k = 0..half-1
//	emb = scale · t[:, None] · exp(exponent)[None]; emb = cat(sin, cos) (cat(cos, sin) when flipSinToCos)
//
// t: [N] (any numeric dtype) → [N, dim] float32; an odd dim gets one zero column at the end.
func TimestepEmbedding(t *Node, dim int, flipSinToCos bool, downscaleFreqShift, scale, maxPeriod float64) *Node {
	if t.Rank() != 1 || dim < 2 {
		exceptions.Panicf("nn.TimestepEmbedding: want 1-D timesteps and dim >= 2, got %s, dim=%d", t.Shape(), dim)
	}
	g := t.Graph()
	half := dim / 2
	k := Iota(g, shapes.Make(dtypes.Float32, half), 0)
	exponent := MulScalar(k, -math.Log(maxPeriod)/(float64(half)-downscaleFreqShift))
	freqs := Exp(exponent)                                                             // [half]
	args := Mul(InsertAxes(ConvertDType(t, dtypes.Float32), -1), InsertAxes(freqs, 0)) // [N, half]
	if scale != 1 {
		args = MulScalar(args, scale)
	}
	var emb *Node
	if flipSinToCos {
		emb = Concatenate([]*Node{Cos(args), Sin(args)}, -1)
	} else {
		emb = Concatenate([]*Node{Sin(args), Cos(args)}, -1)
	} // [N, 2·half]
	if dim%2 == 1 {
		emb = Concatenate([]*Node{emb, Zeros(g, shapes.Make(dtypes.Float32, t.Shape().Dim(0), 1))}, -1)
	}
	return emb
}
