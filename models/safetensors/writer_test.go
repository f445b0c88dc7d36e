package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
)

// roundTripTensors has one tensor per supported GoMLX dtype, scalars and empty tensors included.
func roundTripTensors() map[string]*tensors.Tensor {
	return map[string]*tensors.Tensor{
		"f32":      tensors.FromFlatDataAndDimensions([]float32{1.5, -2, float32(math.Inf(1)), 3e-39, 0, 7}, 2, 3),
		"f64":      tensors.FromFlatDataAndDimensions([]float64{math.Pi, -1e300, 0.1}, 3),
		"i64":      tensors.FromFlatDataAndDimensions([]int64{math.MaxInt64, math.MinInt64, 999, 37}, 2, 2),
		"i32":      tensors.FromFlatDataAndDimensions([]int32{-7, math.MaxInt32}, 2),
		"i16":      tensors.FromFlatDataAndDimensions([]int16{-300, 300}, 2),
		"i8":       tensors.FromFlatDataAndDimensions([]int8{-128, 127}, 1, 2),
		"u64":      tensors.FromFlatDataAndDimensions([]uint64{math.MaxUint64, 1}, 2),
		"u32":      tensors.FromFlatDataAndDimensions([]uint32{math.MaxUint32}, 1),
		"u16":      tensors.FromFlatDataAndDimensions([]uint16{65535, 2}, 2),
		"u8":       tensors.FromFlatDataAndDimensions([]uint8{0, 255, 17}, 3, 1),
		"bool":     tensors.FromFlatDataAndDimensions([]bool{true, false, true}, 3),
		"bf16":     tensors.FromFlatDataAndDimensions([]bfloat16.BFloat16{bfloat16.FromFloat32(1), bfloat16.FromFloat32(-0.5), bfloat16.FromBits(0x7f80)}, 3),
		"f16":      tensors.FromFlatDataAndDimensions([]float16.Float16{float16.FromBits(0x3c00), float16.FromBits(0xc000), float16.FromBits(0x7bff), float16.FromBits(0x0001)}, 2, 2),
		"scalar":   tensors.FromScalar(float32(0.25)),
		"empty":    tensors.FromShape(shapes.Make(dtypes.Int64, 0)),
		"zero_dim": tensors.FromFlatDataAndDimensions([]float32{}, 0, 4),
	}
}

// TestWriteRoundTrip writes tensors of every dtype, reads them back as stored, and compares shapes
// and values; it also checks the layout rules of the written file.
func TestWriteRoundTrip(t *testing.T) {
	ts := roundTripTensors()
	md := map[string]string{"format": "pt", "producer": "loba <test> & co"}
	path := filepath.Join(t.TempDir(), "rt.safetensors")
	if err := Write(path, ts, md); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Metadata(); !reflect.DeepEqual(got, md) {
		t.Fatalf("metadata %v, want %v", got, md)
	}
	if f.Len() != len(ts) {
		t.Fatalf("%d tensors, want %d", f.Len(), len(ts))
	}
	for name, want := range ts {
		got, err := f.Tensor(name, dtypes.InvalidDType)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Shape().Equal(want.Shape()) {
			t.Fatalf("%s: shape %s, want %s", name, got.Shape(), want.Shape())
		}
		if !reflect.DeepEqual(got.Value(), want.Value()) {
			t.Fatalf("%s: value %v, want %v", name, got.Value(), want.Value())
		}
	}
	// Layout: 8+N multiple of 8, metadata first, data ordered by dtype alignment then name.
	raw, _ := os.ReadFile(path)
	n := binary.LittleEndian.Uint64(raw)
	if (8+n)%8 != 0 {
		t.Fatalf("8+N = %d is not a multiple of 8", 8+n)
	}
	hdr := string(raw[8 : 8+n])
	if !strings.HasPrefix(hdr, `{"__metadata__":{"format":"pt","producer":"loba <test> & co"},`) {
		t.Fatalf("header does not start with the metadata: %s", hdr)
	}
	if !json.Valid([]byte(hdr)) || strings.Contains(strings.TrimRight(hdr, " "), "\n") {
		t.Fatalf("bad header %q", hdr)
	}
	wantOrder := []string{"u64", "empty", "i64", "f64", "f32", "scalar", "zero_dim", "u32", "i32", "bf16", "f16", "u16", "i16", "i8", "u8", "bool"}
	var prev int64
	for _, name := range wantOrder {
		ti, _ := f.Info(name)
		if ti.Begin != prev {
			t.Fatalf("data order: %s begins at %d, want %d (order %v)", name, ti.Begin, prev, wantOrder)
		}
		prev = ti.End
	}
	// Header lists tensors in data order too.
	last := -1
	for _, name := range wantOrder {
		i := strings.Index(hdr, `"`+name+`":{"dtype"`)
		if i < last {
			t.Fatalf("header order: %s at %d before previous at %d", name, i, last)
		}
		last = i
	}
}

// TestConversions checks the dtype conversions on load against known bit patterns.
func TestConversions(t *testing.T) {
	f16 := []uint16{0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x3555}
	f16want := []float32{1, -2, 65504, float32(math.Ldexp(1, -24)), float32(math.Inf(1)), 0.333251953125}
	bf16 := []uint16{0x3f80, 0xc0a0, 0x3eab}
	bf16want := []float32{1, -5, math.Float32frombits(0x3eab0000)}
	f64 := []float64{0.1, -1e10, 1e-50}
	var data []byte
	for _, v := range f64 {
		data = binary.LittleEndian.AppendUint64(data, math.Float64bits(v))
	}
	for _, v := range f16 {
		data = binary.LittleEndian.AppendUint16(data, v)
	}
	for _, v := range bf16 {
		data = binary.LittleEndian.AppendUint16(data, v)
	}
	data = binary.LittleEndian.AppendUint32(data, uint32(0xffffffff)) // i32 -1
	data = binary.LittleEndian.AppendUint32(data, 300)
	path := writeTemp(t, "conv.safetensors", rawFile(`{"d":{"dtype":"F64","shape":[3],"data_offsets":[0,24]},`+
		`"h":{"dtype":"F16","shape":[2,3],"data_offsets":[24,36]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[36,42]},`+
		`"i":{"dtype":"I32","shape":[2],"data_offsets":[42,50]}}`, data))
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	got, shape, err := f.Float32s("h")
	if err != nil || !reflect.DeepEqual(shape, []int{2, 3}) || !reflect.DeepEqual(got, f16want) {
		t.Fatalf("F16 → float32: %v %v %v, want %v", got, shape, err, f16want)
	}
	tt, err := f.Tensor("h", dtypes.Float32)
	if err != nil || !reflect.DeepEqual(tensors.MustCopyFlatData[float32](tt), f16want) {
		t.Fatalf("F16 → Float32 tensor: %v", err)
	}
	got, _, _ = f.Float32s("b")
	if !reflect.DeepEqual(got, bf16want) {
		t.Fatalf("BF16 → float32: %v, want %v", got, bf16want)
	}
	tt, _ = f.Tensor("b", dtypes.BFloat16) // kept as BF16
	if tt.Shape().DType != dtypes.BFloat16 || tensors.MustCopyFlatData[bfloat16.BFloat16](tt)[1].Bits() != 0xc0a0 {
		t.Fatalf("BF16 kept: %s", tt.Shape())
	}
	got, _, _ = f.Float32s("d")
	for i, v := range f64 {
		if got[i] != float32(v) {
			t.Fatalf("F64 → float32 [%d]: %g vs %g", i, got[i], float32(v))
		}
	}
	tt, _ = f.Tensor("d", dtypes.BFloat16) // F64 → BF16 rounds to nearest even
	if b := tensors.MustCopyFlatData[bfloat16.BFloat16](tt); b[0].Bits() != 0x3dcd {
		t.Fatalf("0.1 → bf16 bits %#x, want 0x3dcd (round to nearest)", b[0].Bits())
	}
	tt, _ = f.Tensor("b", dtypes.Float16)
	if h := tensors.MustCopyFlatData[float16.Float16](tt); h[1].Bits() != 0xc500 {
		t.Fatalf("-5 → f16 bits %#x", h[1].Bits())
	}
	ints, _, err := f.Int64s("i")
	if err != nil || !reflect.DeepEqual(ints, []int64{-1, 300}) {
		t.Fatalf("I32 → int64: %v %v", ints, err)
	}
	tt, err = f.Tensor("i", dtypes.Int64)
	if err != nil || !reflect.DeepEqual(tensors.MustCopyFlatData[int64](tt), []int64{-1, 300}) {
		t.Fatalf("I32 → Int64: %v", err)
	}
	if _, err = f.Tensor("i", dtypes.Uint8); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Fatalf("I32 → Uint8 should overflow: %v", err)
	}
	if _, err = f.Tensor("h", dtypes.Int32); err == nil || !strings.Contains(err.Error(), "cannot convert") {
		t.Fatalf("F16 → Int32 should fail: %v", err)
	}
	all, err := ReadTensors(path, dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]dtypes.DType{"d": dtypes.Float32, "h": dtypes.Float32, "b": dtypes.Float32, "i": dtypes.Int32} {
		if all[name].Shape().DType != want {
			t.Fatalf("ReadTensors %s: %s, want %s", name, all[name].Shape().DType, want)
		}
	}
}

// TestWriteEntries checks raw-entry writing, its validation, and that failures are atomic: the
// destination is never touched and no temporary file is left behind.
func TestWriteEntries(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "e.safetensors")
	good := []Entry{
		{Name: "b", DType: F16, Shape: []int{2}, Data: []byte{0, 0x3c, 0, 0xc0}},
		{Name: "a", DType: U8, Shape: []int{3}, Data: []byte{1, 2, 3}},
	}
	if err := WriteEntries(path, good, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	img, err := Encode(good, nil)
	if err != nil || !bytes.Equal(img, before) {
		t.Fatalf("Encode differs from the written file: %v", err)
	}
	if good[0].Name != "b" {
		t.Fatal("WriteEntries reordered the caller's slice")
	}
	f, err := FromBytes("mem", img)
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := f.Float32s("b"); !reflect.DeepEqual(v, []float32{1, -2}) {
		t.Fatalf("F16 entry read back as %v", v)
	}
	if len(f.Metadata()) != 0 || strings.Contains(string(img), "__metadata__") {
		t.Fatal("no metadata expected")
	}
	for _, tc := range []struct {
		name    string
		entries []Entry
		phrase  string
	}{
		{"size_mismatch", []Entry{{Name: "x", DType: F32, Shape: []int{2}, Data: make([]byte, 4)}}, "needs 8 bytes"},
		{"unknown_dtype", []Entry{{Name: "x", DType: "F8_E4M3", Shape: []int{1}, Data: make([]byte, 1)}}, "unknown dtype"},
		{"negative_dim", []Entry{{Name: "x", DType: U8, Shape: []int{-1}}}, "negative"},
		{"duplicate", []Entry{{Name: "x", DType: U8, Shape: []int{}, Data: []byte{1}}, {Name: "x", DType: U8, Shape: []int{}, Data: []byte{1}}}, "duplicate"},
		{"reserved", []Entry{{Name: "__metadata__", DType: U8, Shape: []int{}, Data: []byte{1}}}, "reserved"},
	} {
		err := WriteEntries(path, tc.entries, nil)
		if err == nil || !strings.Contains(err.Error(), tc.phrase) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `key "`) {
			t.Errorf("%s: error %v", tc.name, err)
		}
	}
	if err := Write(filepath.Join(dir, "missing", "x.safetensors"), roundTripTensors(), nil); err == nil {
		t.Error("writing into a missing folder should fail")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("a failed write changed the destination")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("temporary files left behind: %v", names)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", st.Mode())
	}
}
