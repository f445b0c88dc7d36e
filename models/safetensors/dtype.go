package safetensors

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
)

// DType is a safetensors dtype name, as it appears in the header ("F32", "BF16", ...).
type DType string

// The dtypes this package reads and writes. Other names of the spec (F8_E4M3, F8_E5M2, C64, F4, ...)
// are rejected by Open with an "unknown dtype" error.
const (
	F64  DType = "F64"
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U64  DType = "U64"
	U32  DType = "U32"
	U16  DType = "U16"
	U8   DType = "U8"
	BOOL DType = "BOOL"
)

// dtypeSizes gives the byte size of every supported dtype.
var dtypeSizes = map[DType]int{
	F64: 8, F32: 4, F16: 2, BF16: 2,
	I64: 8, I32: 4, I16: 2, I8: 1,
	U64: 8, U32: 4, U16: 2, U8: 1,
	BOOL: 1,
}

// dtypeRank follows the declaration order of the Rust crate's Dtype enum ("sorted by alignment"): the
// writer lays data out by descending rank, then by name, as safetensors' Rust serializer does.
var dtypeRank = map[DType]int{
	BOOL: 0, U8: 1, I8: 2, I16: 3, U16: 4, F16: 5, BF16: 6,
	I32: 7, U32: 8, F32: 9, F64: 10, I64: 11, U64: 12,
}

// Size is the byte size of one element, or 0 for an unknown dtype.
func (d DType) Size() int { return dtypeSizes[d] }

// Valid reports whether d is a dtype this package supports.
func (d DType) Valid() bool { return dtypeSizes[d] > 0 }

// IsFloat reports whether d is a floating-point dtype (F64, F32, F16, BF16).
func (d DType) IsFloat() bool { return d == F64 || d == F32 || d == F16 || d == BF16 }

// IsInt reports whether d is a signed or unsigned integer dtype.
func (d DType) IsInt() bool {
	switch d {
	case I64, I32, I16, I8, U64, U32, U16, U8:
		return true
	}
	return false
}

// DTypeSize is the byte size of one element of d; ok is false for an unknown dtype.
func DTypeSize(d DType) (size int, ok bool) {
	size, ok = dtypeSizes[d]
	return
}

// SupportedDTypes lists the supported dtypes, in the writer's data order (largest alignment first).
func SupportedDTypes() []DType {
	return []DType{U64, I64, F64, F32, U32, I32, BF16, F16, U16, I16, I8, U8, BOOL}
}

var toGoMLX = map[DType]dtypes.DType{
	F64: dtypes.Float64, F32: dtypes.Float32, F16: dtypes.Float16, BF16: dtypes.BFloat16,
	I64: dtypes.Int64, I32: dtypes.Int32, I16: dtypes.Int16, I8: dtypes.Int8,
	U64: dtypes.Uint64, U32: dtypes.Uint32, U16: dtypes.Uint16, U8: dtypes.Uint8,
	BOOL: dtypes.Bool,
}

// ToGoMLX maps a safetensors dtype to the GoMLX dtype with the same memory layout.
func ToGoMLX(d DType) (dtypes.DType, error) {
	if g, ok := toGoMLX[d]; ok {
		return g, nil
	}
	return dtypes.InvalidDType, fmt.Errorf("safetensors: unknown dtype %q (supported: %v)", string(d), SupportedDTypes())
}

// FromGoMLX maps a GoMLX dtype to the safetensors dtype with the same memory layout.
func FromGoMLX(g dtypes.DType) (DType, error) {
	for d, gd := range toGoMLX {
		if gd == g {
			return d, nil
		}
	}
	return "", fmt.Errorf("safetensors: GoMLX dtype %s has no safetensors equivalent (supported: %v)", g, SupportedDTypes())
}
