package safetensors

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/loba-dev/loba/internal/fixtures"
)

// caseJSON is the part of a fixture's case.json these tests use.
type caseJSON struct {
	IOTensors map[string]struct {
		DType string `json:"dtype"`
		Shape []int  `json:"shape"`
	} `json:"io_tensors"`
	Files map[string]struct {
		Bytes  int64  `json:"bytes"`
		SHA256 string `json:"sha256"`
	} `json:"files"`
	ModelTensorCount *int `json:"model_tensor_count"`
}

// fixtureCases lists every case folder (with a case.json) under the fixture root, at run time.
func fixtureCases(t *testing.T) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(fixtures.Root(t), "*", "*", "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(matches) == 0 {
		t.Fatal("no fixture case.json found")
	}
	var dirs []string
	for _, m := range matches {
		dirs = append(dirs, filepath.Dir(m))
	}
	sort.Strings(dirs)
	return dirs
}

func loadCase(t *testing.T, dir string) caseJSON {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c caseJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("case.json of %s: %v", dir, err)
	}
	return c
}

// manualFloat decodes element i of a raw buffer independently of the package's converters.
func manualFloat(dt DType, b []byte, i int) float64 {
	switch dt {
	case F32:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
	case F64:
		return math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	case I64:
		return float64(int64(binary.LittleEndian.Uint64(b[8*i:])))
	case I32:
		return float64(int32(binary.LittleEndian.Uint32(b[4*i:])))
	}
	panic("manualFloat: unexpected dtype " + string(dt))
}

// TestFixtureIOTensors opens io.safetensors of every case and checks names, dtypes and shapes against
// case.json's io_tensors, and the values of each access path against an independent decoding.
func TestFixtureIOTensors(t *testing.T) {
	for _, dir := range fixtureCases(t) {
		t.Run(filepath.Base(filepath.Dir(dir))+"/"+filepath.Base(dir), func(t *testing.T) {
			c := loadCase(t, dir)
			if len(c.IOTensors) == 0 {
				t.Fatalf("case.json has no io_tensors")
			}
			f, err := Open(filepath.Join(dir, "io.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var want []string
			for name := range c.IOTensors {
				want = append(want, name)
			}
			sort.Strings(want)
			if got := f.Names(); !slices.Equal(got, want) {
				t.Fatalf("names %v, case.json io_tensors %v", got, want)
			}
			if md := f.Metadata(); md["format"] != "pt" {
				t.Errorf("metadata %v: want format=pt", md)
			}
			for _, name := range want {
				exp := c.IOTensors[name]
				info, ok := f.Info(name)
				if !ok {
					t.Fatalf("Info(%q) missing", name)
				}
				if string(info.DType) != exp.DType || !slices.Equal(info.Shape, exp.Shape) {
					t.Fatalf("%s: got %s%v, case.json %s%v", name, info.DType, info.Shape, exp.DType, exp.Shape)
				}
				raw, err := f.Bytes(name)
				if err != nil {
					t.Fatal(err)
				}
				n := info.NumElements()
				switch info.DType {
				case F32, F64:
					vals, shape, err := f.Float32s(name)
					if err != nil || !slices.Equal(shape, exp.Shape) || len(vals) != n {
						t.Fatalf("Float32s(%s): %v %v len %d", name, err, shape, len(vals))
					}
					tt, err := f.Tensor(name, dtypes.Float32)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(tt.Shape().Dimensions, exp.Shape) && !(len(exp.Shape) == 0 && tt.Shape().Rank() == 0) {
						t.Fatalf("Tensor(%s) shape %s", name, tt.Shape())
					}
					flat := tensors.MustCopyFlatData[float32](tt)
					for i := 0; i < n; i++ {
						m := float32(manualFloat(info.DType, raw, i))
						if vals[i] != m || flat[i] != m {
							t.Fatalf("%s[%d]: Float32s %g, Tensor %g, raw %g", name, i, vals[i], flat[i], m)
						}
					}
					if _, _, err := f.Int64s(name); err == nil {
						t.Errorf("Int64s(%s) of a float tensor should fail", name)
					}
				case I64, I32:
					vals, shape, err := f.Int64s(name)
					if err != nil || !slices.Equal(shape, exp.Shape) || len(vals) != n {
						t.Fatalf("Int64s(%s): %v %v len %d", name, err, shape, len(vals))
					}
					for i := 0; i < n; i++ {
						if float64(vals[i]) != manualFloat(info.DType, raw, i) {
							t.Fatalf("%s[%d]: %d vs raw %g", name, i, vals[i], manualFloat(info.DType, raw, i))
						}
					}
					tt, err := f.Tensor(name, dtypes.Float32) // ints convert to float on request
					if err != nil {
						t.Fatal(err)
					}
					if got := tensors.MustCopyFlatData[float32](tt); n > 0 && float64(got[0]) != float64(vals[0]) {
						t.Fatalf("%s as float32: %g vs %d", name, got[0], vals[0])
					}
				default:
					t.Fatalf("%s: unexpected dtype %s in fixtures", name, info.DType)
				}
			}
		})
	}
}

// TestFixtureFiles opens every .safetensors file of every case: checks the byte size and sha256
// recorded in case.json, the tensor count of model.safetensors, reads all tensors with ReadTensors,
// and re-encodes them with Write, which must reproduce the file byte for byte (same layout rules).
func TestFixtureFiles(t *testing.T) {
	for _, dir := range fixtureCases(t) {
		t.Run(filepath.Base(filepath.Dir(dir))+"/"+filepath.Base(dir), func(t *testing.T) {
			c := loadCase(t, dir)
			files, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
			if len(files) == 0 {
				t.Fatal("no .safetensors file")
			}
			for _, path := range files {
				base := filepath.Base(path)
				orig, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if rec, ok := c.Files[base]; ok {
					sum := sha256.Sum256(orig)
					if rec.Bytes != int64(len(orig)) || rec.SHA256 != hex.EncodeToString(sum[:]) {
						t.Fatalf("%s: size/sha256 differ from case.json", base)
					}
				}
				h, err := ReadHeader(path)
				if err != nil {
					t.Fatal(err)
				}
				if (8+h.HeaderLen)%8 != 0 || 8+h.HeaderLen+h.DataLen != int64(len(orig)) {
					t.Fatalf("%s: header %d data %d file %d", base, h.HeaderLen, h.DataLen, len(orig))
				}
				if base == "model.safetensors" && c.ModelTensorCount != nil && len(h.Tensors) != *c.ModelTensorCount {
					t.Fatalf("%s: %d tensors, case.json model_tensor_count %d", base, len(h.Tensors), *c.ModelTensorCount)
				}
				ts, err := ReadTensors(path, dtypes.InvalidDType)
				if err != nil {
					t.Fatal(err)
				}
				if len(ts) != len(h.Tensors) {
					t.Fatalf("%s: ReadTensors gave %d tensors, header %d", base, len(ts), len(h.Tensors))
				}
				for _, ti := range h.Tensors {
					if ts[ti.Name].Shape().DType == dtypes.InvalidDType {
						t.Fatalf("%s: bad tensor %s", base, ti.Name)
					}
				}
				out := filepath.Join(t.TempDir(), base)
				if err := Write(out, ts, h.Metadata); err != nil {
					t.Fatal(err)
				}
				again, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again, orig) {
					t.Errorf("%s: re-encoded file differs from the original (%d vs %d bytes)", base, len(again), len(orig))
				}
			}
		})
	}
}
