package safetensors

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rawFile assembles a file from a header JSON (padded with spaces to a multiple of 8) and data.
func rawFile(header string, data []byte) []byte {
	for (len(header))%8 != 0 {
		header += " "
	}
	out := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(out, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

// withPrefix is a file whose 8-byte length prefix is n, followed by rest.
func withPrefix(n uint64, rest string) []byte {
	out := make([]byte, 8)
	binary.LittleEndian.PutUint64(out, n)
	return append(out, rest...)
}

func writeTemp(t *testing.T, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// badCases are malformed files: each must be rejected by Open, ReadHeader and FromBytes with an
// error naming the file, the key (when not empty) and containing the phrase.
var badCases = []struct {
	name    string
	content []byte
	key     string
	phrase  string
}{
	{"truncated_file", []byte{1, 0, 0}, "", "shorter than the 8-byte"},
	{"empty_file", nil, "", "shorter than the 8-byte"},
	{"truncated_header", withPrefix(64, `{"a":{"dtype":"F32"`), "", "oversized header"},
	{"oversized_header", withPrefix(200_000_000, "{}      "), "", "oversized header"},
	{"huge_header_length", withPrefix(1<<63+5, "{}      "), "", "oversized header"},
	{"header_too_short", withPrefix(0, ""), "", "too short"},
	{"overlapping_offsets", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)), "b", "overlap"},
	{"same_offsets", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "b", "overlap"},
	{"gap", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 12)), "b", "gap of 4 bytes"},
	{"gap_at_start", rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, make([]byte, 2)), "a", "gap of 1 bytes at the start"},
	{"trailing_data", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 9)), "a", "trailing data"},
	{"trailing_data_no_tensor", rawFile(`{}`, make([]byte, 3)), "", "trailing data"},
	{"out_of_range_offsets", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)), "a", "out of range"},
	{"begin_after_end", rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, make([]byte, 4)), "a", "begin > end"},
	{"negative_offset", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, nil), "a", "negative offset"},
	{"offsets_not_pair", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, make([]byte, 4)), "a", "2 integers"},
	{"offset_overflow", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999]}}`, nil), "a", "int64 range"},
	{"dtype_size_mismatch", rawFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, make([]byte, 8)), "a", "needs 12 bytes"},
	{"shape_overflow", rawFile(`{"a":{"dtype":"F64","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}}`, make([]byte, 8)), "a", "overflows int64"},
	{"shape_overflow_wraps_to_size", rawFile(`{"a":{"dtype":"U8","shape":[4294967296,4294967296,1],"data_offsets":[0,0]}}`, nil), "a", "overflows int64"},
	{"bad_json", rawFile(`{"a":{"dtype":"F32",`, nil), "", "malformed JSON"},
	{"bad_json_value", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":nope}`, make([]byte, 4)), "b", "malformed JSON"},
	{"json_trailing_garbage", rawFile(`{}x`, nil), "", "trailing data after the object"},
	{"json_two_objects", rawFile(`{}{}`, nil), "", "trailing data after the object"},
	{"header_not_object", rawFile(`[]`, nil), "", "does not start with '{'"},
	{"header_invalid_utf8", rawFile("{\"\xff\":{}}", nil), "", "not valid UTF-8"},
	{"unknown_dtype", rawFile(`{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)), "a", "unknown dtype \"F8_E4M3\""},
	{"dtype_not_string", rawFile(`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "a", "dtype must be a string"},
	{"negative_shape", rawFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), "a", "negative dimension"},
	{"fractional_shape", rawFile(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, make([]byte, 4)), "a", "not an integer"},
	{"shape_not_array", rawFile(`{"a":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}`, make([]byte, 4)), "a", "must be an array of integers"},
	{"shape_string_element", rawFile(`{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}`, make([]byte, 4)), "a", "must be an integer"},
	{"missing_dtype", rawFile(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "a", "no dtype"},
	{"missing_shape", rawFile(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, make([]byte, 4)), "a", "no shape"},
	{"missing_offsets", rawFile(`{"a":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), "a", "no data_offsets"},
	{"unexpected_field", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, make([]byte, 4)), "a", "unexpected field \"x\""},
	{"entry_not_object", rawFile(`{"a":[1,2]}`, nil), "a", "must be an object"},
	{"duplicate_key", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), "a", "duplicate key"},
	{"duplicate_field", rawFile(`{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "a", "duplicate key"},
	{"metadata_not_object", rawFile(`{"__metadata__":"x"}`, nil), "__metadata__", "must be an object"},
	{"metadata_value_not_string", rawFile(`{"__metadata__":{"format":1}}`, nil), "__metadata__", "must be a string"},
	{"metadata_duplicate_key", rawFile(`{"__metadata__":{"f":"a","f":"b"}}`, nil), "__metadata__", "duplicate key"},
}

// TestOpenRejects checks that each malformed file is rejected with a clear error naming the file and
// the key, by Open, ReadHeader and FromBytes alike.
func TestOpenRejects(t *testing.T) {
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTemp(t, tc.name+".safetensors", tc.content)
			check := func(what string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s accepted a malformed file", what)
				}
				msg := err.Error()
				if !strings.Contains(msg, path) {
					t.Errorf("%s: error %q does not name the file %q", what, msg, path)
				}
				if tc.key != "" && !strings.Contains(msg, `key "`+tc.key+`"`) {
					t.Errorf("%s: error %q does not name the key %q", what, msg, tc.key)
				}
				if !strings.Contains(msg, tc.phrase) {
					t.Errorf("%s: error %q does not contain %q", what, msg, tc.phrase)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("%s: error %q does not wrap ErrInvalid", what, msg)
				}
			}
			f, err := Open(path)
			if f != nil {
				f.Close()
			}
			check("Open", err)
			_, err = ReadHeader(path)
			check("ReadHeader", err)
			_, err = FromBytes(path, tc.content)
			check("FromBytes", err)
		})
	}
}

// TestOpenAcceptsEdgeCases checks valid corner cases: no tensors, zero-sized tensors sharing an
// offset, scalars, metadata only.
func TestOpenAcceptsEdgeCases(t *testing.T) {
	for name, content := range map[string][]byte{
		"empty_object":  rawFile(`{}`, nil),
		"metadata_only": rawFile(`{"__metadata__":{"a":"b"}}`, nil),
		"zero_sized":    rawFile(`{"z":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"y":{"dtype":"I64","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}`, []byte{7}),
		"unpadded":      append(withPrefix(2, "{}"), []byte{}...),
	} {
		t.Run(name, func(t *testing.T) {
			f, err := Open(writeTemp(t, name+".safetensors", content))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, n := range f.Names() {
				if _, err := f.Tensor(n, 0); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestReadErrors checks the errors of the tensor accessors: unknown name, closed file, invalid BOOL
// bytes, impossible conversions.
func TestReadErrors(t *testing.T) {
	path := writeTemp(t, "r.safetensors", rawFile(`{"b":{"dtype":"BOOL","shape":[2],"data_offsets":[4,6]},"f":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, []byte{0, 0, 128, 63, 1, 2}))
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	expectErr := func(err error, phrases ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("expected an error containing %q", phrases)
		}
		for _, p := range append(phrases, path) {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not contain %q", err, p)
			}
		}
	}
	_, err = f.Tensor("nope", 0)
	expectErr(err, `key "nope"`, "not found")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("%v does not wrap ErrNotFound", err)
	}
	_, err = f.Tensor("b", 0)
	expectErr(err, `key "b"`, "neither 0 nor 1")
	_, _, err = f.Float32s("b")
	expectErr(err, `key "b"`, "cannot convert dtype BOOL")
	_, _, err = f.Int64s("f")
	expectErr(err, `key "f"`, "only integer dtypes")
	_, err = f.Tensor("f", 0x7fff)
	expectErr(err, `key "f"`)
	if v, _, err := f.Float32s("f"); err != nil || v[0] != 1 {
		t.Fatalf("Float32s(f) = %v, %v", v, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = f.Bytes("f")
	expectErr(err, `key "f"`, "closed")
}

// TestOpenWithoutMmap reads a file through the fallback path (no mmap) and compares with the
// mapped read; it also checks that paths that are not regular files are rejected.
func TestOpenWithoutMmap(t *testing.T) {
	content := rawFile(`{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, []byte{0, 0, 128, 63, 0, 0, 0, 192})
	path := writeTemp(t, "m.safetensors", content)
	useMmap = false
	f, err := Open(path)
	useMmap = true
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, shape, err := f.Float32s("a")
	if err != nil || len(shape) != 1 || v[0] != 1 || v[1] != -2 || f.Metadata()["k"] != "v" {
		t.Fatalf("fallback read: %v %v %v", v, shape, err)
	}
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("opening a folder: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "missing.safetensors")
	if _, err := Open(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("opening a missing file: %v", err)
	}
}
