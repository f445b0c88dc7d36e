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
	case U64:
		for i := range out {
			out[i] = T(le.Uint64(b[8*i:]))
		}
	default:
		if !decodeIntValues(src, b, out) {
			return fmt.Errorf("cannot convert dtype %s to a float", src)
		}
	}
	return nil
}

// decodeInts converts the little-endian integer values b of dtype src into out.
func decodeInts(src DType, b []byte, out []int64) error {
	if src != U64 {
		if !decodeIntValues(src, b, out) {
			return fmt.Errorf("cannot read dtype %s as integers (only integer dtypes)", src)
		}
		return nil
	}
	le := binary.LittleEndian
	for i := range out {
		v := le.Uint64(b[8*i:])
		if v > math.MaxInt64 {
			return fmt.Errorf("U64 value %d at index %d does not fit int64", v, i)
		}
		out[i] = int64(v)
	}
	return nil
}

// decodeIntValues converts the little-endian values b of an integer dtype src other than U64 (whose
// values may not fit int64: decodeFloats and decodeInts each treat it their own way) into out. Every
// such value is exact in int64, so T(value) rounds as a direct conversion would. ok is false, and
// out untouched, for any other dtype.
func decodeIntValues[T int64 | float32 | float64](src DType, b []byte, out []T) (ok bool) {
	le := binary.LittleEndian
	switch src {
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
		return false
	}
	return true
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
	if target == src {
		return copyTensor(ti, b, target)
	}
	return convertTensor(ti, b, target)
}

// copyTensor builds a tensor of target, the GoMLX twin of the stored dtype, from the bytes b as they
// are; BOOL bytes must be 0 or 1.
func copyTensor(ti TensorInfo, b []byte, target dtypes.DType) (*tensors.Tensor, error) {
	if ti.DType == BOOL {
		for i, v := range b {
			if v > 1 {
				return nil, fmt.Errorf("BOOL byte %d at index %d is neither 0 nor 1", v, i)
			}
		}
	}
	t := tensors.FromShape(shapes.Make(target, ti.Shape...))
	if ti.NumElements() > 0 {
		if err := t.MutableBytes(func(data []byte) { copy(data, b) }); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// convertTensor builds a tensor of target, another dtype than the stored one, converting every
// value of b: ints and floats convert to a float target, ints to an int target (overflow fails).
func convertTensor(ti TensorInfo, b []byte, target dtypes.DType) (*tensors.Tensor, error) {
	switch {
	case target.IsFloat() && (ti.DType.IsFloat() || ti.DType.IsInt()):
	case target.IsInt() && ti.DType.IsInt():
	default:
		return nil, fmt.Errorf("cannot convert dtype %s to %s", ti.DType, target)
	}
	t := tensors.FromShape(shapes.Make(target, ti.Shape...))
	var convErr error
	accessErr := t.MutableFlatData(func(flat any) {
		convErr = convertFlat(ti, b, flat, target)
	})
	if accessErr != nil {
		return nil, accessErr
	}
	if convErr != nil {
		return nil, convErr
	}
	return t, nil
}

// convertFlat decodes the values b of ti into flat, the flat data (ti.NumElements() values) of a
// tensor of dtype target.
func convertFlat(ti TensorInfo, b []byte, flat any, target dtypes.DType) error {
	switch out := flat.(type) {
	case []float32:
		return decodeFloats(ti.DType, b, out)
	case []float64:
		return decodeFloats(ti.DType, b, out)
	case []float16.Float16, []bfloat16.BFloat16:
		return decodeHalfFloats(ti.DType, b, flat, ti.NumElements())
	}
	vals := make([]int64, ti.NumElements())
	if err := decodeInts(ti.DType, b, vals); err != nil {
		return err
	}
	return storeInts(vals, flat, ti.DType, target)
}

// decodeHalfFloats converts the values b of dtype src into out, the flat data (n values) of a
// Float16 or BFloat16 tensor: decoded to float32, then rounded to the nearest 16-bit float.
func decodeHalfFloats(src DType, b []byte, out any, n int) error {
	tmp := make([]float32, n)
	if err := decodeFloats(src, b, tmp); err != nil {
		return err
	}
	switch out := out.(type) {
	case []float16.Float16:
		for i, v := range tmp {
			out[i] = float16.FromFloat32(v)
		}
	case []bfloat16.BFloat16:
		for i, v := range tmp {
			out[i] = BF16FromFloat32(v)
		}
	}
	return nil
}

// storeInts stores vals into flat, the flat data of a tensor of the integer dtype target, failing
// on the first value out of range; src is the stored dtype, for the error messages.
func storeInts(vals []int64, flat any, src DType, target dtypes.DType) error {
	switch out := flat.(type) {
	case []int64:
		copy(out, vals)
		return nil
	case []int32:
		return castInts(vals, out, target)
	case []int16:
		return castInts(vals, out, target)
	case []int8:
		return castInts(vals, out, target)
	case []uint64:
		return castInts(vals, out, target)
	case []uint32:
		return castInts(vals, out, target)
	case []uint16:
		return castInts(vals, out, target)
	case []uint8:
		return castInts(vals, out, target)
	}
	return fmt.Errorf("cannot convert dtype %s to %s", src, target)
}
