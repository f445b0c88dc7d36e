package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
)

// decodeFloats converts the little-endian values b of dtype src into out (len = element count).
func decodeFloats[T float32 | float64](src DType, b []byte, out []T) error {
	le := binary.LittleEndian
	switch src {
	case F32:
		for i := range out {
			out[i] = T(math.Float32frombits(le.Uint32(b[4*i:])))
		}
	case F64:
		for i := range out {
			out[i] = T(math.Float64frombits(le.Uint64(b[8*i:])))
		}
	case F16:
		for i := range out {
			out[i] = T(float16.FromBits(le.Uint16(b[2*i:])).Float32())
		}
	case BF16:
		for i := range out {
			out[i] = T(math.Float32frombits(uint32(le.Uint16(b[2*i:])) << 16))
		}
	case I64:
		for i := range out {
			out[i] = T(int64(le.Uint64(b[8*i:])))
		}
	case I32:
		for i := range out {
			out[i] = T(int32(le.Uint32(b[4*i:])))
		}
	case I16:
		for i := range out {
			out[i] = T(int16(le.Uint16(b[2*i:])))
		}
	case I8:
		for i := range out {
			out[i] = T(int8(b[i]))
		}
	case U64:
		for i := range out {
			out[i] = T(le.Uint64(b[8*i:]))
		}
	case U32:
		for i := range out {
			out[i] = T(le.Uint32(b[4*i:]))
		}
	case U16:
		for i := range out {
			out[i] = T(le.Uint16(b[2*i:]))
		}
	case U8:
		for i := range out {
			out[i] = T(b[i])
		}
	default:
		return fmt.Errorf("cannot convert dtype %s to a float", src)
	}
	return nil
}

// decodeInts converts the little-endian integer values b of dtype src into out.
func decodeInts(src DType, b []byte, out []int64) error {
	le := binary.LittleEndian
	switch src {
	case I64:
		for i := range out {
			out[i] = int64(le.Uint64(b[8*i:]))
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(le.Uint32(b[4*i:])))
		}
	case I16:
		for i := range out {
			out[i] = int64(int16(le.Uint16(b[2*i:])))
		}
	case I8:
		for i := range out {
			out[i] = int64(int8(b[i]))
		}
	case U64:
		for i := range out {
			v := le.Uint64(b[8*i:])
			if v > math.MaxInt64 {
				return fmt.Errorf("U64 value %d at index %d does not fit int64", v, i)
			}
			out[i] = int64(v)
		}
	case U32:
		for i := range out {
			out[i] = int64(le.Uint32(b[4*i:]))
		}
	case U16:
		for i := range out {
			out[i] = int64(le.Uint16(b[2*i:]))
		}
	case U8:
		for i := range out {
			out[i] = int64(b[i])
		}
	default:
		return fmt.Errorf("cannot read dtype %s as integers (only integer dtypes)", src)
	}
	return nil
}

// castInts stores vals into out, failing on the first value out of T's range.
func castInts[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64](vals []int64, out []T, target dtypes.DType) error {
	for i, v := range vals {
		c := T(v)
		if int64(c) != v || (v < 0 && c > 0) {
			return fmt.Errorf("value %d at index %d overflows %s", v, i, target)
		}
		out[i] = c
	}
	return nil
}

// BF16FromFloat32 rounds f to the nearest bfloat16 (ties to even), as torch does; NaN stays NaN.
func BF16FromFloat32(f float32) bfloat16.BFloat16 {
	b := math.Float32bits(f)
	if f != f {
		return bfloat16.BFloat16(uint16(b>>16) | 0x40)
	}
	b += 0x7FFF + ((b >> 16) & 1)
	return bfloat16.BFloat16(b >> 16)
}

// toTensor builds a GoMLX tensor of dtype target (InvalidDType: the stored dtype) from raw bytes.
func toTensor(ti TensorInfo, b []byte, target dtypes.DType) (t *tensors.Tensor, err error) {
	src, err := ToGoMLX(ti.DType)
	if err != nil {
		return nil, err
	}
	if target == dtypes.InvalidDType {
		target = src
	}
	if int(target) < 0 || int(target) >= len(dtypes.SupportedDTypes) || !dtypes.SupportedDTypes[target] {
		return nil, fmt.Errorf("cannot convert dtype %s to unknown dtype %d", ti.DType, int(target))
	}
	n := ti.NumElements()
	if target == src {
		if ti.DType == BOOL {
			for i, v := range b {
				if v > 1 {
					return nil, fmt.Errorf("BOOL byte %d at index %d is neither 0 nor 1", v, i)
				}
			}
		}
		t = tensors.FromShape(shapes.Make(target, ti.Shape...))
		if n > 0 {
			if err := t.MutableBytes(func(data []byte) { copy(data, b) }); err != nil {
				return nil, err
			}
		}
		return t, nil
	}
	switch {
	case target.IsFloat() && (ti.DType.IsFloat() || ti.DType.IsInt()):
	case target.IsInt() && ti.DType.IsInt():
	default:
		return nil, fmt.Errorf("cannot convert dtype %s to %s", ti.DType, target)
	}
	t = tensors.FromShape(shapes.Make(target, ti.Shape...))
	var convErr error
	accessErr := t.MutableFlatData(func(flat any) {
		var err error
		defer func() { convErr = err }()
		switch out := flat.(type) {
		case []float32:
			err = decodeFloats(ti.DType, b, out)
		case []float64:
			err = decodeFloats(ti.DType, b, out)
		case []float16.Float16:
			tmp := make([]float32, n)
			if err = decodeFloats(ti.DType, b, tmp); err == nil {
				for i, v := range tmp {
					out[i] = float16.FromFloat32(v)
				}
			}
		case []bfloat16.BFloat16:
			tmp := make([]float32, n)
			if err = decodeFloats(ti.DType, b, tmp); err == nil {
				for i, v := range tmp {
					out[i] = BF16FromFloat32(v)
				}
			}
		default:
			vals := make([]int64, n)
			if err = decodeInts(ti.DType, b, vals); err != nil {
				return
			}
			switch out := flat.(type) {
			case []int64:
				copy(out, vals)
			case []int32:
				err = castInts(vals, out, target)
			case []int16:
				err = castInts(vals, out, target)
			case []int8:
				err = castInts(vals, out, target)
			case []uint64:
				err = castInts(vals, out, target)
			case []uint32:
				err = castInts(vals, out, target)
			case []uint16:
				err = castInts(vals, out, target)
			case []uint8:
				err = castInts(vals, out, target)
			default:
				err = fmt.Errorf("cannot convert dtype %s to %s", ti.DType, target)
			}
		}
	})
	if accessErr != nil {
		return nil, accessErr
	}
	if convErr != nil {
		return nil, convErr
	}
	return t, nil
}
