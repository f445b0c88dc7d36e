package safetensors

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
)

// File is an open, validated safetensors file. Its data is memory-mapped read-only (or read into
// memory where mmap is unavailable). It is safe for concurrent use; Close invalidates the views
// returned by Bytes.
type File struct {
	path    string
	header  *Header
	byName  map[string]int // index into header.Tensors
	names   []string
	mu      sync.RWMutex
	data    []byte // the whole file
	dataOff int64  // 8 + header length
	unmap   func() error
	closed  bool
}

// useMmap can be turned off by tests to exercise the read-the-whole-file fallback.
var useMmap = true

// Open maps the file at path and validates its header completely (see the package documentation).
// Every error names the file and, where one is involved, the tensor key.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("safetensors: %q is not a regular file", path)
	}
	size := st.Size()
	var data []byte
	var unmap func() error
	if size >= 8 {
		ok := false
		if useMmap {
			data, unmap, ok = mapFile(fh, size)
		}
		if !ok {
			data = make([]byte, size)
			if _, err := io.ReadFull(fh, data); err != nil {
				return nil, fmt.Errorf("safetensors: reading %q: %w", path, err)
			}
		}
	}
	f, err := newFile(path, data, size)
	if err != nil {
		if unmap != nil {
			_ = unmap()
		}
		return nil, err
	}
	f.unmap = unmap
	return f, nil
}

// FromBytes validates an in-memory safetensors image; path is only used in error messages. The
// File keeps (does not copy) data.
func FromBytes(path string, data []byte) (*File, error) {
	return newFile(path, data, int64(len(data)))
}

func newFile(path string, data []byte, size int64) (*File, error) {
	n, err := headerLen(path, size, func(p []byte, off int64) error {
		copy(p, data[off:])
		return nil
	})
	if err != nil {
		return nil, err
	}
	h, err := parseHeader(path, data[8:8+n], size-8-n)
	if err != nil {
		return nil, err
	}
	f := &File{path: path, header: h, data: data, dataOff: 8 + n, byName: make(map[string]int, len(h.Tensors))}
	for i, ti := range h.Tensors {
		f.byName[ti.Name] = i
		f.names = append(f.names, ti.Name)
	}
	return f, nil
}

// Close releases the mapping. Further reads fail; it is safe to call Close twice.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	f.data = nil
	if f.unmap != nil {
		if err := f.unmap(); err != nil {
			return fmt.Errorf("safetensors: unmapping %q: %w", f.path, err)
		}
	}
	return nil
}

// Path is the path given to Open.
func (f *File) Path() string { return f.path }

// Names lists the tensor names, sorted.
func (f *File) Names() []string { return append([]string(nil), f.names...) }

// Len is the number of tensors.
func (f *File) Len() int { return len(f.names) }

// Info describes the tensor name; ok is false when there is none.
func (f *File) Info(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	ti := f.header.Tensors[i]
	ti.Shape = append([]int{}, ti.Shape...)
	return ti, true
}

// Infos lists every tensor, sorted by name.
func (f *File) Infos() []TensorInfo {
	out := make([]TensorInfo, len(f.header.Tensors))
	for i, ti := range f.header.Tensors {
		ti.Shape = append([]int{}, ti.Shape...)
		out[i] = ti
	}
	return out
}

// Metadata is a copy of the "__metadata__" map (empty, not nil, when the file has none).
func (f *File) Metadata() map[string]string {
	md := make(map[string]string, len(f.header.Metadata))
	for k, v := range f.header.Metadata {
		md[k] = v
	}
	return md
}

// Header is the validated header (shared; do not modify).
func (f *File) Header() *Header { return f.header }

// DataOffset is the file offset of the data buffer (8 + header length).
func (f *File) DataOffset() int64 { return f.dataOff }

// ErrNotFound is wrapped by the errors about a missing tensor name.
var ErrNotFound = errors.New("tensor not found")

func (f *File) lookup(name string) (TensorInfo, error) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, fmt.Errorf("safetensors: %q: key %q: %w", f.path, name, ErrNotFound)
	}
	return f.header.Tensors[i], nil
}

// withBytes calls fn with the raw little-endian bytes of tensor name, under the read lock.
func (f *File) withBytes(name string, fn func(ti TensorInfo, b []byte) error) error {
	ti, err := f.lookup(name)
	if err != nil {
		return err
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return fmt.Errorf("safetensors: %q: key %q: file is closed", f.path, name)
	}
	b := f.data[f.dataOff+ti.Begin : f.dataOff+ti.End : f.dataOff+ti.End]
	return fn(ti, b)
}

// Bytes is a zero-copy view of the raw little-endian bytes of tensor name. It is read-only (writing
// to it faults when the file is mapped) and valid until Close.
func (f *File) Bytes(name string) ([]byte, error) {
	var out []byte
	err := f.withBytes(name, func(_ TensorInfo, b []byte) error {
		out = b
		return nil
	})
	return out, err
}

// Tensor reads tensor name into a new GoMLX tensor of the given dtype. Float sources (F64, F32,
// F16, BF16) and integer sources convert to any float dtype (F16/BF16 targets round to nearest
// even); integer sources convert to any integer dtype when every value fits; BOOL only to Bool.
// dtypes.InvalidDType keeps the stored dtype.
func (f *File) Tensor(name string, dtype dtypes.DType) (*tensors.Tensor, error) {
	var t *tensors.Tensor
	err := f.withBytes(name, func(ti TensorInfo, b []byte) error {
		var err error
		t, err = toTensor(ti, b, dtype)
		if err != nil {
			return fmt.Errorf("safetensors: %q: key %q: %w", f.path, name, err)
		}
		return nil
	})
	return t, err
}

// Float32s reads tensor name as flat float32 values (row-major) plus its shape. It accepts every
// float dtype and the integer dtypes.
func (f *File) Float32s(name string) ([]float32, []int, error) {
	return readFlat(f, name, decodeFloats[float32])
}

// Float64s reads tensor name as flat float64 values plus its shape (every float and integer dtype).
func (f *File) Float64s(name string) ([]float64, []int, error) {
	return readFlat(f, name, decodeFloats[float64])
}

// Int64s reads an integer tensor (I64, I32, I16, I8, U32, U16, U8; U64 when every value fits) as
// flat int64 values plus its shape.
func (f *File) Int64s(name string) ([]int64, []int, error) {
	return readFlat(f, name, decodeInts)
}

// readFlat decodes tensor name into a new []T with decode, returning it with the shape.
func readFlat[T any](f *File, name string, decode func(DType, []byte, []T) error) ([]T, []int, error) {
	var out []T
	var shape []int
	err := f.withBytes(name, func(ti TensorInfo, b []byte) error {
		shape = append([]int{}, ti.Shape...)
		out = make([]T, ti.NumElements())
		if err := decode(ti.DType, b, out); err != nil {
			return fmt.Errorf("safetensors: %q: key %q: %w", f.path, name, err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, shape, nil
}

// Tensors reads every tensor: float tensors converted to dtype (InvalidDType keeps them as stored),
// integer and BOOL tensors kept in their own dtype.
func (f *File) Tensors(dtype dtypes.DType) (map[string]*tensors.Tensor, error) {
	out := make(map[string]*tensors.Tensor, len(f.names))
	for _, name := range f.names {
		ti, _ := f.lookup(name)
		target := dtypes.InvalidDType
		if ti.DType.IsFloat() {
			target = dtype
		}
		t, err := f.Tensor(name, target)
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, nil
}

// ReadTensors opens path and reads every tensor (see File.Tensors): float tensors → dtype, integer
// and BOOL tensors kept as stored.
func ReadTensors(path string, dtype dtypes.DType) (map[string]*tensors.Tensor, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Tensors(dtype)
}
