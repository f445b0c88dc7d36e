package safetensors

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/gomlx/compute/dtypes"
)

// fuzzSeeds are valid files of every dtype plus the malformed files of badCases.
func fuzzSeeds(tb testing.TB) [][]byte {
	valid := [][]Entry{
		{{Name: "w", DType: F32, Shape: []int{2, 2}, Data: []byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64}}},
		{
			{Name: "a.weight", DType: F16, Shape: []int{3}, Data: []byte{0, 0x3c, 0, 0xc0, 0xff, 0x7b}},
			{Name: "b", DType: BF16, Shape: []int{1}, Data: []byte{0x80, 0x3f}},
			{Name: "t", DType: I64, Shape: []int{2}, Data: []byte{0xe7, 3, 0, 0, 0, 0, 0, 0, 37, 0, 0, 0, 0, 0, 0, 0}},
			{Name: "m", DType: BOOL, Shape: []int{2}, Data: []byte{1, 0}},
			{Name: "u", DType: U8, Shape: []int{}, Data: []byte{9}},
			{Name: "d", DType: F64, Shape: []int{1}, Data: []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}},
			{Name: "i", DType: I32, Shape: []int{1, 1}, Data: []byte{0xff, 0xff, 0xff, 0xff}},
			{Name: "z", DType: F32, Shape: []int{0, 5}},
		},
		{{Name: "x", DType: I8, Shape: []int{2}, Data: []byte{0x80, 1}}, {Name: "y", DType: U64, Shape: []int{1}, Data: bytes.Repeat([]byte{0xff}, 8)},
			{Name: "p", DType: I16, Shape: []int{1}, Data: []byte{1, 0x80}}, {Name: "q", DType: U16, Shape: []int{1}, Data: []byte{1, 2}},
			{Name: "r", DType: U32, Shape: []int{1}, Data: []byte{1, 2, 3, 4}}},
		nil,
	}
	var seeds [][]byte
	for i, entries := range valid {
		md := map[string]string{"format": "pt"}
		if i == 3 {
			md = nil
		}
		img, err := Encode(entries, md)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, img)
	}
	for _, bc := range badCases {
		seeds = append(seeds, bc.content)
	}
	return seeds
}

// FuzzOpen writes the input to a file and opens it: Open must never panic; it must agree with
// ReadHeader and FromBytes; an accepted file must have consistent infos (sorted unique names,
// offsets tiling the data buffer, byte sizes matching dtype × shape), every tensor must be readable
// (BOOL with bytes other than 0/1 excepted) and re-encoding must reproduce the same tensors.
func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "f.safetensors")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		file, err := Open(path)
		_, hErr := ReadHeader(path)
		mem, mErr := FromBytes(path, data)
		if (err == nil) != (hErr == nil) || (err == nil) != (mErr == nil) {
			t.Fatalf("Open, ReadHeader and FromBytes disagree: %v / %v / %v", err, hErr, mErr)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		defer file.Close()
		names := file.Names()
		if !sort.StringsAreSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
			t.Fatalf("names not sorted/unique: %q", names)
		}
		dataLen := int64(len(data)) - file.DataOffset()
		infos := file.Infos()
		var total int64
		var entries []Entry
		for _, ti := range infos {
			if ti.Begin < 0 || ti.Begin > ti.End || ti.End > dataLen || !ti.DType.Valid() {
				t.Fatalf("bad info %+v (data %d)", ti, dataLen)
			}
			if int64(ti.NumElements())*int64(ti.DType.Size()) != ti.ByteLen() {
				t.Fatalf("size mismatch %+v", ti)
			}
			total += ti.ByteLen()
			b, err := file.Bytes(ti.Name)
			if err != nil || int64(len(b)) != ti.ByteLen() {
				t.Fatalf("Bytes(%q): %d bytes, %v", ti.Name, len(b), err)
			}
			mb, _ := mem.Bytes(ti.Name)
			if !bytes.Equal(b, mb) {
				t.Fatalf("mmap and in-memory bytes differ for %q", ti.Name)
			}
			badBool := ti.DType == BOOL && slices.ContainsFunc(b, func(v byte) bool { return v > 1 })
			tt, err := file.Tensor(ti.Name, dtypes.InvalidDType)
			if (err != nil) != badBool {
				t.Fatalf("Tensor(%q): %v", ti.Name, err)
			}
			if err == nil && tt.Shape().Size() != ti.NumElements() {
				t.Fatalf("Tensor(%q): shape %s vs %v", ti.Name, tt.Shape(), ti.Shape)
			}
			if ti.DType != BOOL {
				if v, _, err := file.Float32s(ti.Name); err != nil || len(v) != ti.NumElements() {
					t.Fatalf("Float32s(%q): %v", ti.Name, err)
				}
			}
			entries = append(entries, Entry{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: b})
		}
		if total != dataLen {
			t.Fatalf("tensors cover %d of %d data bytes", total, dataLen)
		}
		img, err := Encode(entries, file.Metadata())
		if err != nil {
			t.Fatalf("re-encoding an accepted file: %v", err)
		}
		again, err := FromBytes("re-encoded", img)
		if err != nil {
			t.Fatalf("re-encoded file rejected: %v", err)
		}
		for _, ti := range infos {
			ti2, ok := again.Info(ti.Name)
			b1, _ := file.Bytes(ti.Name)
			b2, _ := again.Bytes(ti.Name)
			if !ok || ti2.DType != ti.DType || !slices.Equal(ti2.Shape, ti.Shape) || !bytes.Equal(b1, b2) {
				t.Fatalf("re-encoded %q differs", ti.Name)
			}
		}
	})
}
