package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	"github.com/gomlx/gomlx/core/tensors"
)

// ErrNonFinite is wrapped by the errors about a tensor holding NaN or ±Inf values
// (*NonFiniteError).
var ErrNonFinite = errors.New("non-finite values")

// NonFinite counts the values of one tensor that are NaN or ±Inf.
type NonFinite struct {
	Total  int `json:"total"` // values scanned
	NaN    int `json:"nan"`
	PosInf int `json:"pos_inf"`
	NegInf int `json:"neg_inf"`
	// First is the flat (row-major) index of the first non-finite value, FirstValue what it is
	// ("NaN", "+Inf" or "-Inf"); both are meaningless when Count is 0.
	First      int    `json:"first_index"`
	FirstValue string `json:"first"`
}

// Count is the number of non-finite values.
func (n NonFinite) Count() int { return n.NaN + n.PosInf + n.NegInf }

// String reads "3 of 11,520 values are not finite (2 NaN, 1 +Inf; first: NaN at index 17)".
func (n NonFinite) String() string {
	var kinds []string
	for _, k := range []struct {
		n    int
		name string
	}{{n.NaN, "NaN"}, {n.PosInf, "+Inf"}, {n.NegInf, "-Inf"}} {
		if k.n > 0 {
			kinds = append(kinds, groupThousands(k.n)+" "+k.name)
		}
	}
	detail := ""
	if len(kinds) > 1 {
		detail = kinds[0]
		for _, k := range kinds[1:] {
			detail += ", " + k
		}
		detail += "; "
	}
	return fmt.Sprintf("%s of %s values are not finite (%sfirst: %s at index %s)", groupThousands(n.Count()),
		groupThousands(n.Total), detail, n.FirstValue, groupThousands(n.First))
}

// NonFiniteError tells that tensor Key of File holds NaN or ±Inf values; it wraps ErrNonFinite.
type NonFiniteError struct {
	File, Key string
	NonFinite
	// ConvertedTo is set (e.g. "F16") when the stored values are all finite and the non-finite
	// ones come from converting them to that narrower dtype (F32 values above 65504 overflow F16).
	ConvertedTo string
}

// Error reads `unet/diffusion_pytorch_model.safetensors: "conv_in.weight": 3 of 11,520 values are
// not finite (first: NaN at index 17)`.
func (e *NonFiniteError) Error() string {
	msg := fmt.Sprintf("%s: %q: %s", e.File, e.Key, e.NonFinite)
	if e.ConvertedTo != "" {
		msg += fmt.Sprintf(" after conversion to %s: the stored values are finite but too large for %s", e.ConvertedTo, e.ConvertedTo)
	}
	return msg
}

// Unwrap returns ErrNonFinite.
func (e *NonFiniteError) Unwrap() error { return ErrNonFinite }

// CountNonFinite scans tensor name of the file for NaN and ±Inf values, reading its stored bytes
// in place (no copy, no conversion). Integer and BOOL tensors have none. The error is for an
// unknown name or a closed file.
func (f *File) CountNonFinite(name string) (NonFinite, error) {
	var n NonFinite
	err := f.withBytes(name, func(ti TensorInfo, b []byte) error {
		n = ScanNonFinite(ti.DType, b)
		return nil
	})
	return n, err
}

// CheckFinite returns a *NonFiniteError (wrapping ErrNonFinite) naming the file and the key when
// the stored values of tensor name hold a NaN or ±Inf, nil when all are finite.
func (f *File) CheckFinite(name string) error {
	n, err := f.CountNonFinite(name)
	if err != nil {
		return err
	}
	if n.Count() > 0 {
		return &NonFiniteError{File: f.path, Key: name, NonFinite: n}
	}
	return nil
}

// CheckAllFinite scans the stored values of every tensor of the file (CountNonFinite), in name
// order. It returns nil when all are finite, else the *NonFiniteError of the first 10 tensors that
// are not (then a count of the others) joined, wrapping ErrNonFinite.
func (f *File) CheckAllFinite() error {
	var errs []error
	more := 0
	for _, name := range f.names {
		err := f.CheckFinite(name)
		switch {
		case err == nil:
		case !errors.Is(err, ErrNonFinite):
			return err // a closed file
		case len(errs) < maxNamedNonFinite:
			errs = append(errs, err)
		default:
			more++
		}
	}
	return joinNonFinite(f.path, errs, more)
}

// FiniteTensor is Tensor that also fails when a value of the result is NaN or ±Inf, with a
// *NonFiniteError naming the file and the key (and the target dtype, when only the conversion to
// it overflowed). Loaders use it so that a damaged weight is refused before any value is used.
// When the target dtype holds every finite value of the stored one (F16 → F32, the usual load),
// the stored bytes are scanned in place before the conversion; otherwise the result is.
func (f *File) FiniteTensor(name string, dtype dtypes.DType) (*tensors.Tensor, error) {
	ti, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	if keepsFinite(ti.DType, dtype) {
		if err := f.CheckFinite(name); err != nil {
			return nil, err
		}
		return f.Tensor(name, dtype)
	}
	t, err := f.Tensor(name, dtype)
	if err != nil {
		return nil, err
	}
	err = CheckTensor(f.path, name, t)
	var nf *NonFiniteError
	if errors.As(err, &nf) {
		if stored := f.CheckFinite(name); stored == nil {
			nf.ConvertedTo = string(mustFromGoMLX(t.DType()))
		}
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// wider lists, per float dtype, the dtypes every finite value of it converts to finitely.
var wider = map[DType][]DType{F16: {F16, BF16, F32, F64}, BF16: {BF16, F32, F64}, F32: {F32, F64}, F64: {F64}}

// keepsFinite reports whether converting stored float values to target (InvalidDType: kept as
// stored) keeps every finite value finite, so that scanning the stored values is enough.
func keepsFinite(stored DType, target dtypes.DType) bool {
	if target == dtypes.InvalidDType {
		return stored.IsFloat()
	}
	to, err := FromGoMLX(target)
	return err == nil && slices.Contains(wider[stored], to)
}

// mustFromGoMLX is FromGoMLX for a dtype known to have a safetensors twin.
func mustFromGoMLX(g dtypes.DType) DType {
	d, err := FromGoMLX(g)
	if err != nil {
		return DType(g.String())
	}
	return d
}

// CheckTensor returns a *NonFiniteError (wrapping ErrNonFinite) naming file and key when the
// float tensor t (F64, F32, F16 or BF16) holds a NaN or ±Inf value; nil when every value is finite
// or t is not a float tensor. file and key are only used in the message.
func CheckTensor(file, key string, t *tensors.Tensor) error {
	if t == nil {
		return fmt.Errorf("%s: %q: no tensor (nil)", file, key)
	}
	d, err := FromGoMLX(t.DType())
	if err != nil || !d.IsFloat() || t.Shape().Size() == 0 {
		return nil // not a float dtype safetensors stores, or no values
	}
	var n NonFinite
	err = exceptions.TryCatch[error](func() {
		if accessErr := t.ConstBytes(func(b []byte) { n = ScanNonFinite(d, b) }); accessErr != nil {
			panic(accessErr)
		}
	})
	if err != nil {
		return fmt.Errorf("%s: %q: reading the values: %w", file, key, err)
	}
	if n.Count() > 0 {
		return &NonFiniteError{File: file, Key: key, NonFinite: n}
	}
	return nil
}

// maxNamedNonFinite is how many non-finite tensors CheckFinite names; the rest are counted.
const maxNamedNonFinite = 10

// CheckFinite runs CheckTensor over every tensor of ts (e.g. read with ReadTensors from file,
// which names the tensors in the messages), in key order. It returns nil when all values are
// finite, else the errors of the first 10 tensors that are not (then a count of the others)
// joined, wrapping ErrNonFinite.
func CheckFinite(file string, ts map[string]*tensors.Tensor) error {
	keys := make([]string, 0, len(ts))
	for k := range ts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	more := 0
	for _, k := range keys {
		err := CheckTensor(file, k, ts[k])
		switch {
		case err == nil:
		case len(errs) < maxNamedNonFinite:
			errs = append(errs, err)
		default:
			more++
		}
	}
	return joinNonFinite(file, errs, more)
}

// joinNonFinite joins errs and, when more > 0, a line counting the tensors left unnamed.
func joinNonFinite(file string, errs []error, more int) error {
	if more > 0 {
		errs = append(errs, fmt.Errorf("%s: %d more tensors hold NaN or ±Inf values: %w", file, more, ErrNonFinite))
	}
	return errors.Join(errs...)
}

// floatBits describes the bit layout of a float dtype: size in bytes and the exponent, mantissa
// and sign masks of one value.
type floatBits struct {
	size                 int
	exp, mantissa, sign  uint64
	laneExp, laneAdd, hi uint64 // the exponent mask, 2^(bits-1)-1 and the top bit, per lane of a uint64
}

var floatLayouts = map[DType]floatBits{
	F64:  {8, 0x7FF0000000000000, 0x000FFFFFFFFFFFFF, 1 << 63, 0x7FF0000000000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000},
	F32:  {4, 0x7F800000, 0x007FFFFF, 1 << 31, 0x7F8000007F800000, 0x7FFFFFFF7FFFFFFF, 0x8000000080000000},
	F16:  {2, 0x7C00, 0x03FF, 1 << 15, 0x7C007C007C007C00, 0x7FFF7FFF7FFF7FFF, 0x8000800080008000},
	BF16: {2, 0x7F80, 0x007F, 1 << 15, 0x7F807F807F807F80, 0x7FFF7FFF7FFF7FFF, 0x8000800080008000},
}

// ScanNonFinite counts the NaN and ±Inf values among the little-endian values b of dtype d (F64,
// F32, F16 or BF16; other dtypes have none). A value is not finite when all its exponent bits are
// set, so -0 and subnormals are finite. The scan reads the raw bits, 8 bytes at a time, and looks
// at single values only from the first 8-byte word that holds a non-finite one.
func ScanNonFinite(d DType, b []byte) NonFinite {
	fb, ok := floatLayouts[d]
	if !ok {
		return NonFinite{Total: len(b) / max(d.Size(), 1)}
	}
	n := NonFinite{Total: len(b) / fb.size}
	start := firstSuspectWord(b, fb) / fb.size
	countFrom(&n, b, fb, start)
	return n
}

// firstSuspectWord is the byte offset of the first 8-byte word of b with a lane whose exponent
// bits are all set (each lane's masked exponent XOR the mask is 0 exactly then; adding 2^(bits-1)-1
// sets the lane's top bit unless it is 0, and never carries into the next lane), or the offset of
// the tail shorter than a word when there is none.
func firstSuspectWord(b []byte, fb floatBits) int {
	le := binary.LittleEndian
	m, k, h := fb.laneExp, fb.laneAdd, fb.hi
	off := 0
	for ; off+32 <= len(b); off += 32 {
		w := b[off : off+32 : off+32]
		z0 := (((le.Uint64(w[0:]) & m) ^ m) + k) & h
		z1 := (((le.Uint64(w[8:]) & m) ^ m) + k) & h
		z2 := (((le.Uint64(w[16:]) & m) ^ m) + k) & h
		z3 := (((le.Uint64(w[24:]) & m) ^ m) + k) & h
		if z0&z1&z2&z3 != h {
			break
		}
	}
	for ; off+8 <= len(b); off += 8 {
		if (((le.Uint64(b[off:])&m)^m)+k)&h != h {
			return off
		}
	}
	return off
}

// countFrom classifies every value of b from index start on, adding the NaN and ±Inf ones to n.
func countFrom(n *NonFinite, b []byte, fb floatBits, start int) {
	le := binary.LittleEndian
	for i := start; i < n.Total; i++ {
		var v uint64
		switch fb.size {
		case 2:
			v = uint64(le.Uint16(b[2*i:]))
		case 4:
			v = uint64(le.Uint32(b[4*i:]))
		default:
			v = le.Uint64(b[8*i:])
		}
		if v&fb.exp != fb.exp {
			continue
		}
		kind := "NaN"
		switch {
		case v&fb.mantissa != 0:
			n.NaN++
		case v&fb.sign != 0:
			n.NegInf++
			kind = "-Inf"
		default:
			n.PosInf++
			kind = "+Inf"
		}
		if n.Count() == 1 {
			n.First, n.FirstValue = i, kind
		}
	}
}

// groupThousands writes n with comma thousands separators (11,520).
func groupThousands(n int) string {
	s := strconv.Itoa(n)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
