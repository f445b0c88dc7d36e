package weights

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/models/safetensors"
)

// TestLoadFilesNonFinite: a weight holding NaN or ±Inf — stored as F32, F16 or BF16, in any shard
// — fails LoadFiles with an error naming the file and the key (wrapping safetensors.ErrNonFinite);
// -0 and subnormals load; an F32 value too large for the F16 compute dtype is named as an overflow
// of the conversion.
func TestLoadFilesNonFinite(t *testing.T) {
	decl, err := Declared(tinyModel)
	require.NoError(t, err)
	dir := t.TempDir()
	shard1 := filepath.Join(dir, "model-00001-of-00002.safetensors")
	writeTensors(t, shard1, map[string][]int{"down.0.proj.weight": {4, 3}, "down.0.proj.bias": {4}})
	write := func(name string, bias *tensors.Tensor) string {
		p := filepath.Join(dir, name)
		w := tensors.FromFlatDataAndDimensions(make([]float32, 5*2*3*3), 5, 2, 3, 3)
		require.NoError(t, safetensors.Write(p, map[string]*tensors.Tensor{"conv.weight": w, "conv.bias": bias}, nil))
		return p
	}
	odd := []float32{float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, math.MaxFloat32, 1}
	good := write("good.safetensors", tensors.FromFlatDataAndDimensions(odd, 5))
	require.NoError(t, LoadFiles(model.NewStore().RootScope(), decl, []string{shard1, good}, LoadOptions{}))

	h := func(bits ...uint16) []float16.Float16 {
		out := make([]float16.Float16, len(bits))
		for i, b := range bits {
			out[i] = float16.FromBits(b)
		}
		return out
	}
	cases := map[string]struct {
		bias  *tensors.Tensor
		dtype dtypes.DType
		want  string
	}{
		"f32_nan": {tensors.FromFlatDataAndDimensions([]float32{0, 1, float32(math.NaN()), 0, 0}, 5), 0,
			`: "conv.bias": 1 of 5 values are not finite (first: NaN at index 2)`},
		"f16_inf": {tensors.FromFlatDataAndDimensions(h(0x8000, 0x0001, 0x7C00, 0xFC00, 0x7E00), 5), 0,
			`: "conv.bias": 3 of 5 values are not finite (1 NaN, 1 +Inf, 1 -Inf; first: +Inf at index 2)`},
		"bf16_nan": {tensors.FromFlatDataAndDimensions([]bfloat16.BFloat16{0, 0, 0, 0, bfloat16.FromBits(0xFF81)}, 5), dtypes.BFloat16,
			`: "conv.bias": 1 of 5 values are not finite (first: NaN at index 4)`},
		"f16_overflow": {tensors.FromFlatDataAndDimensions([]float32{0, 0, 0, 1e5, 0}, 5), dtypes.Float16,
			`: "conv.bias": 1 of 5 values are not finite (first: +Inf at index 3) after conversion to F16`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bad := write(name+".safetensors", tc.bias)
			err := LoadFiles(model.NewStore().RootScope(), decl, []string{shard1, bad}, LoadOptions{DType: tc.dtype})
			require.ErrorIs(t, err, safetensors.ErrNonFinite)
			require.ErrorContains(t, err, bad+tc.want)
		})
	}
}
