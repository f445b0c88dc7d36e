package safetensors

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/gomlx/core/tensors"
)

// specialBits are, per float dtype, bit patterns of finite values that look odd (±0, the smallest
// and largest subnormals, the largest finite value, ±1) and of every kind of non-finite value.
var specialBits = map[DType]struct{ finite, nan, posInf, negInf []uint64 }{
	F64: {
		finite: []uint64{0, 1 << 63, 1, 1<<63 | 1, 0x000FFFFFFFFFFFFF, 0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF, 0x3FF0000000000000, 0xBFF0000000000000},
		nan:    []uint64{0x7FF8000000000000, 0x7FF0000000000001, 0xFFF8000000000000, 0xFFFFFFFFFFFFFFFF},
		posInf: []uint64{0x7FF0000000000000}, negInf: []uint64{0xFFF0000000000000},
	},
	F32: {
		finite: []uint64{0, 0x80000000, 1, 0x80000001, 0x007FFFFF, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000, 0xBF800000},
		nan:    []uint64{0x7FC00000, 0x7F800001, 0xFFC00000, 0xFFFFFFFF},
		posInf: []uint64{0x7F800000}, negInf: []uint64{0xFF800000},
	},
	F16: {
		finite: []uint64{0, 0x8000, 1, 0x8001, 0x03FF, 0x7BFF, 0xFBFF, 0x3C00, 0xBC00},
		nan:    []uint64{0x7E00, 0x7C01, 0xFE00, 0xFFFF},
		posInf: []uint64{0x7C00}, negInf: []uint64{0xFC00},
	},
	BF16: {
		finite: []uint64{0, 0x8000, 1, 0x8001, 0x007F, 0x7F7F, 0xFF7F, 0x3F80, 0xBF80},
		nan:    []uint64{0x7FC0, 0x7F81, 0xFFC0, 0xFFFF},
		posInf: []uint64{0x7F80}, negInf: []uint64{0xFF80},
	},
}

// putBits stores v as the i-th little-endian value of size bytes of b.
func putBits(b []byte, size, i int, v uint64) {
	switch size {
	case 2:
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	default:
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
}

// referenceCount classifies every value through decodeFloats and the math package.
func referenceCount(d DType, b []byte) NonFinite {
	vals := make([]float64, len(b)/d.Size())
	if err := decodeFloats(d, b, vals); err != nil {
		panic(err)
	}
	n := NonFinite{Total: len(vals)}
	for i, v := range vals {
		kind := ""
		switch {
		case math.IsNaN(v):
			n.NaN, kind = n.NaN+1, "NaN"
		case math.IsInf(v, 1):
			n.PosInf, kind = n.PosInf+1, "+Inf"
		case math.IsInf(v, -1):
			n.NegInf, kind = n.NegInf+1, "-Inf"
		}
		if kind != "" && n.Count() == 1 {
			n.First, n.FirstValue = i, kind
		}
	}
	return n
}

// TestScanNonFiniteBitPatterns: for F64, F32, F16 and BF16 buffers of every length from 0 to 80
// values (so the 32-byte blocks, the 8-byte words and the tail are all exercised), filled with
// finite values that look odd (±0, subnormals, the largest finite) and holding 0 to 3 NaN/±Inf bit
// patterns at random places, ScanNonFinite agrees with a value-by-value count through the math
// package: -0 and subnormals are finite, every NaN payload and sign is NaN.
func TestScanNonFiniteBitPatterns(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, d := range []DType{F64, F32, F16, BF16} {
		sp := specialBits[d]
		bad := append(append(append([]uint64{}, sp.nan...), sp.posInf...), sp.negInf...)
		for length := 0; length <= 80; length++ {
			for trial := 0; trial < 6; trial++ {
				b := make([]byte, length*d.Size())
				for i := range length {
					putBits(b, d.Size(), i, sp.finite[rng.IntN(len(sp.finite))])
				}
				for k := 0; length > 0 && k < trial%4; k++ {
					putBits(b, d.Size(), rng.IntN(length), bad[rng.IntN(len(bad))])
				}
				got, want := ScanNonFinite(d, b), referenceCount(d, b)
				if want.Count() == 0 {
					got.First, got.FirstValue = 0, "" // meaningless without a non-finite value
				}
				if got != want {
					t.Fatalf("%s, %d values, trial %d: ScanNonFinite = %+v, want %+v", d, length, trial, got, want)
				}
			}
		}
		if ScanNonFinite(d, make([]byte, 8*d.Size())).Count() != 0 {
			t.Fatalf("%s: zeros are not finite", d)
		}
	}
	if n := ScanNonFinite(I32, []byte{0, 0, 0x80, 0x7F}); n.Count() != 0 || n.Total != 1 {
		t.Fatalf("an I32 whose bits are those of +Inf counted as %+v", n)
	}
}

// TestCheckFiniteFile: File.CheckFinite names the file, the key, the counts and the first bad
// value for NaN/±Inf in F32, F16, BF16 and F64 tensors, passes finite and integer tensors, and the
// error wraps ErrNonFinite.
func TestCheckFiniteFile(t *testing.T) {
	f32 := make([]float32, 11520)
	f32[17], f32[300], f32[11519] = float32(math.NaN()), float32(math.NaN()), float32(math.Inf(1))
	ts := map[string]*tensors.Tensor{
		"down_blocks.0.resnets.0.conv1.weight": tensors.FromFlatDataAndDimensions(f32, 320, 4, 3, 3),
		"f16":                                  tensors.FromFlatDataAndDimensions([]float16.Float16{float16.FromBits(0x3C00), float16.FromBits(0xFC00)}, 2),
		"bf16": tensors.FromFlatDataAndDimensions([]bfloat16.BFloat16{bfloat16.FromBits(0x8000), bfloat16.FromBits(0x0001),
			bfloat16.FromBits(0x7F81)}, 3),
		"f64":    tensors.FromFlatDataAndDimensions([]float64{math.Inf(-1)}, 1),
		"finite": tensors.FromFlatDataAndDimensions([]float32{0, float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, math.MaxFloat32}, 4),
		"ints":   tensors.FromFlatDataAndDimensions([]int32{0x7F800000, -1}, 2),
	}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := Write(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]string{
		"down_blocks.0.resnets.0.conv1.weight": `: "down_blocks.0.resnets.0.conv1.weight": 3 of 11,520 values are not finite (2 NaN, 1 +Inf; first: NaN at index 17)`,
		"f16":                                  `: "f16": 1 of 2 values are not finite (first: -Inf at index 1)`,
		"bf16":                                 `: "bf16": 1 of 3 values are not finite (first: NaN at index 2)`,
		"f64":                                  `: "f64": 1 of 1 values are not finite (first: -Inf at index 0)`,
	}
	for _, name := range f.Names() {
		err := f.CheckFinite(name)
		if want[name] == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrNonFinite) || err.Error() != path+want[name] {
			t.Errorf("%s: got %v, want %s%s wrapping ErrNonFinite", name, err, path, want[name])
		}
	}
	if _, err := f.FiniteTensor("bf16", dtypes.Float32); err == nil || !strings.Contains(err.Error(), `"bf16": 1 of 3`) {
		t.Errorf("FiniteTensor of a NaN tensor: %v", err)
	}
	if _, err := f.FiniteTensor("finite", dtypes.Float32); err != nil {
		t.Errorf("FiniteTensor of a finite tensor: %v", err)
	}
}

// TestFiniteTensorConversionOverflow: an F32 value too large for F16 is finite as stored but +Inf
// once converted; FiniteTensor says so instead of blaming the file.
func TestFiniteTensorConversionOverflow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.safetensors")
	if err := Write(path, map[string]*tensors.Tensor{"w": tensors.FromFlatDataAndDimensions([]float32{1, 1e6}, 2)}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.FiniteTensor("w", dtypes.Float32); err != nil {
		t.Fatal(err)
	}
	_, err = f.FiniteTensor("w", dtypes.Float16)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.ConvertedTo != "F16" || !strings.Contains(err.Error(), "after conversion to F16") {
		t.Fatalf("got %v, want a *NonFiniteError naming the conversion to F16", err)
	}
}

// TestCheckFiniteMap: CheckFinite over a map (as the checkpoint reader uses it) passes finite,
// integer and empty tensors and names the first 10 bad tensors in key order, counting the rest.
func TestCheckFiniteMap(t *testing.T) {
	ts := map[string]*tensors.Tensor{
		"a":     tensors.FromFlatDataAndDimensions([]float32{1, 2}, 2),
		"ints":  tensors.FromFlatDataAndDimensions([]int64{-1}, 1),
		"empty": tensors.FromFlatDataAndDimensions([]float32{}, 0),
	}
	if err := CheckFinite("ckpt.safetensors", ts); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		ts[string(rune('b'+i))] = tensors.FromFlatDataAndDimensions([]float32{0, float32(math.NaN())}, 2)
	}
	err := CheckFinite("ckpt.safetensors", ts)
	if !errors.Is(err, ErrNonFinite) {
		t.Fatalf("got %v, want ErrNonFinite", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, `ckpt.safetensors: "b": 1 of 2 values are not finite (first: NaN at index 1)`) ||
		!strings.Contains(msg, `"k": 1 of 2`) || strings.Contains(msg, `"l":`) ||
		!strings.HasSuffix(msg, "ckpt.safetensors: 2 more tensors hold NaN or ±Inf values: non-finite values") {
		t.Fatalf("message:\n%s", msg)
	}
}

// BenchmarkScanNonFinite measures the scan of an all-finite 64 MiB tensor per dtype (MB/s).
func BenchmarkScanNonFinite(b *testing.B) {
	buf := make([]byte, 64<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range buf {
		buf[i] = byte(rng.IntN(0x70)) // top bits of every value stay clear: finite in every dtype
	}
	for _, d := range []DType{F32, F16, BF16, F64} {
		b.Run(string(d), func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if ScanNonFinite(d, buf).Count() != 0 {
					b.Fatal("not finite")
				}
			}
		})
	}
}

// TestCheckAllFinite: File.CheckAllFinite scans every stored tensor: nil for a finite file, else
// the bad tensors named in key order, wrapping ErrNonFinite.
func TestCheckAllFinite(t *testing.T) {
	dir := t.TempDir()
	good := map[string]*tensors.Tensor{
		"a": tensors.FromFlatDataAndDimensions([]float32{1, float32(math.Copysign(0, -1))}, 2),
		"i": tensors.FromFlatDataAndDimensions([]int64{math.MaxInt64}, 1),
	}
	bad := map[string]*tensors.Tensor{
		"a": good["a"],
		"z": tensors.FromFlatDataAndDimensions([]float16.Float16{float16.FromBits(0x7C00)}, 1),
		"m": tensors.FromFlatDataAndDimensions([]float32{float32(math.NaN())}, 1),
	}
	for name, ts := range map[string]map[string]*tensors.Tensor{"good": good, "bad": bad} {
		path := filepath.Join(dir, name+".safetensors")
		if err := Write(path, ts, nil); err != nil {
			t.Fatal(err)
		}
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		err = f.CheckAllFinite()
		_ = f.Close()
		if name == "good" {
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		want := path + `: "m": 1 of 1 values are not finite (first: NaN at index 0)` + "\n" +
			path + `: "z": 1 of 1 values are not finite (first: +Inf at index 0)`
		if !errors.Is(err, ErrNonFinite) || err.Error() != want {
			t.Fatalf("got %v, want\n%s", err, want)
		}
	}
}

// BenchmarkFiniteTensor compares reading a 64 MiB F16 tensor as F32 with Tensor and with
// FiniteTensor (the read plus the scan of the 128 MiB result), and the scan of the stored bytes in
// place (CountNonFinite); MB/s are of the stored bytes.
func BenchmarkFiniteTensor(b *testing.B) {
	vals := make([]float16.Float16, 32<<20)
	for i := range vals {
		vals[i] = float16.FromFloat32(float32(i%1000) / 1000)
	}
	path := filepath.Join(b.TempDir(), "big.safetensors")
	if err := Write(path, map[string]*tensors.Tensor{"w": tensors.FromFlatDataAndDimensions(vals, len(vals))}, nil); err != nil {
		b.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for name, read := range map[string]func() error{
		"Tensor":         func() error { _, err := f.Tensor("w", dtypes.Float32); return err },
		"FiniteTensor":   func() error { _, err := f.FiniteTensor("w", dtypes.Float32); return err },
		"CountNonFinite": func() error { _, err := f.CountNonFinite("w"); return err },
	} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(2 * len(vals)))
			for b.Loop() {
				if err := read(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
