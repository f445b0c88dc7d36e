package weights

import (
	"fmt"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/safetensors"
)

// SaveComponent writes every variable under ctx's scope (a component root such as ctx.At("unet"))
// to a safetensors file under its checkpoint key — the inverse of LoadFiles, so diffusers,
// transformers and LoadFiles read it back. Floating-point values are stored as dtype (Float32,
// Float16 or BFloat16; InvalidDType keeps each variable's). The write is atomic.
func SaveComponent(ctx *model.Scope, path string, dtype dtypes.DType, metadata map[string]string) error {
	root := ctx.Scope()
	out := map[string]*tensors.Tensor{}
	for v := range ctx.IterVariables() {
		if !strings.HasPrefix(v.Scope()+"/", strings.TrimSuffix(root, "/")+"/") {
			continue
		}
		t, err := v.Value()
		if err != nil {
			return fmt.Errorf("weights.SaveComponent: %s: %w", v.Path(), err)
		}
		if dtype != dtypes.InvalidDType && t.DType().IsFloat() && t.DType() != dtype {
			if t, err = convertFloat32(t, dtype); err != nil {
				return fmt.Errorf("weights.SaveComponent: %s: %w", v.Path(), err)
			}
		}
		out[ScopeToKey(root, v.Scope(), v.Name())] = t
	}
	if len(out) == 0 {
		return fmt.Errorf("weights.SaveComponent: no variable under %q", root)
	}
	return safetensors.Write(path, out, metadata)
}

// convertFloat32 converts a float32 host tensor to Float16 or BFloat16 (round to nearest even).
func convertFloat32(t *tensors.Tensor, dtype dtypes.DType) (*tensors.Tensor, error) {
	if t.DType() != dtypes.Float32 {
		return nil, fmt.Errorf("want float32 values to convert, got %s", t.DType())
	}
	src := tensors.MustCopyFlatData[float32](t)
	dims := t.Shape().Dimensions
	switch dtype {
	case dtypes.Float16:
		v := make([]float16.Float16, len(src))
		for i, x := range src {
			v[i] = float16.FromFloat32(x)
		}
		return tensors.FromFlatDataAndDimensions(v, dims...), nil
	case dtypes.BFloat16:
		v := make([]bfloat16.BFloat16, len(src))
		for i, x := range src {
			v[i] = safetensors.BF16FromFloat32(x)
		}
		return tensors.FromFlatDataAndDimensions(v, dims...), nil
	case dtypes.Float32:
		return t, nil
	}
	return nil, fmt.Errorf("unsupported dtype %s (valid: Float32, Float16, BFloat16)", dtype)
}
