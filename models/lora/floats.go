package lora

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/loba-dev/loba/models/safetensors"
)

// float64s copies a floating-point tensor's values (F64, F32, F16, BF16) to the host as float64.
func float64s(t *tensors.Tensor) ([]float64, error) {
	var out []float64
	var err error
	cerr := t.ConstFlatData(func(flat any) {
		switch v := flat.(type) {
		case []float32:
			out = make([]float64, len(v))
			for i, x := range v {
				out[i] = float64(x)
			}
		case []float64:
			out = append([]float64(nil), v...)
		case []float16.Float16:
			out = make([]float64, len(v))
			for i, x := range v {
				out[i] = float64(x.Float32())
			}
		case []bfloat16.BFloat16:
			out = make([]float64, len(v))
			for i, x := range v {
				out[i] = float64(x.Float32())
			}
		default:
			err = fmt.Errorf("lora: want a floating-point tensor, got %s", t.Shape())
		}
	})
	if cerr != nil {
		return nil, cerr
	}
	return out, err
}

// tensorOf builds a host tensor of dtype dt and dimensions dims from float64 values.
func tensorOf(dt dtypes.DType, data []float64, dims []int) (*tensors.Tensor, error) {
	switch dt {
	case dtypes.Float32:
		v := make([]float32, len(data))
		for i, x := range data {
			v[i] = float32(x)
		}
		return tensors.FromFlatDataAndDimensions(v, dims...), nil
	case dtypes.Float64:
		return tensors.FromFlatDataAndDimensions(append([]float64(nil), data...), dims...), nil
	case dtypes.Float16:
		v := make([]float16.Float16, len(data))
		for i, x := range data {
			v[i] = float16.FromFloat32(float32(x))
		}
		return tensors.FromFlatDataAndDimensions(v, dims...), nil
	case dtypes.BFloat16:
		v := make([]bfloat16.BFloat16, len(data))
		for i, x := range data {
			v[i] = safetensors.BF16FromFloat32(float32(x))
		}
		return tensors.FromFlatDataAndDimensions(v, dims...), nil
	}
	return nil, fmt.Errorf("lora: unsupported weight dtype %s (valid: Float32, Float64, Float16, BFloat16)", dt)
}

// convertTensor returns t in dtype dt (t itself when it already is).
func convertTensor(t *tensors.Tensor, dt dtypes.DType) (*tensors.Tensor, error) {
	if t.DType() == dt {
		return t, nil
	}
	v, err := float64s(t)
	if err != nil {
		return nil, err
	}
	return tensorOf(dt, v, t.Shape().Dimensions)
}

// encodeFloats lays values out little-endian in a safetensors float dtype.
func encodeFloats(dt safetensors.DType, data []float64) ([]byte, error) {
	le := binary.LittleEndian
	switch dt {
	case safetensors.F32:
		b := make([]byte, 4*len(data))
		for i, x := range data {
			le.PutUint32(b[4*i:], math.Float32bits(float32(x)))
		}
		return b, nil
	case safetensors.F16:
		b := make([]byte, 2*len(data))
		for i, x := range data {
			le.PutUint16(b[2*i:], float16.FromFloat32(float32(x)).Bits())
		}
		return b, nil
	case safetensors.BF16:
		b := make([]byte, 2*len(data))
		for i, x := range data {
			le.PutUint16(b[2*i:], safetensors.BF16FromFloat32(float32(x)).Bits())
		}
		return b, nil
	}
	return nil, fmt.Errorf("lora: unsupported save dtype %q (valid: %s, %s, %s)", dt, safetensors.F32, safetensors.F16, safetensors.BF16)
}
