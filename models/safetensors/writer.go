package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/loba-dev/loba/internal/atomicfile"
)

// Entry is one tensor to write: its raw little-endian, C-contiguous bytes.
type Entry struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// Write saves ts (name → tensor) with metadata to path atomically (see WriteEntries). Tensors of
// every dtype with a safetensors equivalent are written as stored (Float16 → F16, BFloat16 → BF16,
// Bool → BOOL, ...).
func Write(path string, ts map[string]*tensors.Tensor, metadata map[string]string) error {
	entries := make([]Entry, 0, len(ts))
	for name, t := range ts {
		if t == nil {
			return fmt.Errorf("safetensors: writing %q: key %q: nil tensor", path, name)
		}
		shape := t.Shape()
		if shape.IsTuple() {
			return fmt.Errorf("safetensors: writing %q: key %q: tuple tensors cannot be saved", path, name)
		}
		dt, err := FromGoMLX(shape.DType)
		if err != nil {
			return fmt.Errorf("safetensors: writing %q: key %q: %w", path, name, err)
		}
		e := Entry{Name: name, DType: dt, Shape: append([]int{}, shape.Dimensions...)}
		if shape.Size() > 0 {
			err = t.ConstBytes(func(data []byte) { e.Data = append([]byte(nil), data...) })
			if err != nil {
				return fmt.Errorf("safetensors: writing %q: key %q: %w", path, name, err)
			}
		}
		entries = append(entries, e)
	}
	return WriteEntries(path, entries, metadata)
}

// SortEntries orders entries as the file layout does: by dtype, largest alignment first (as the
// Rust serializer: U64, I64, F64, F32, U32, I32, BF16, F16, U16, I16, I8, U8, BOOL), then by name.
func SortEntries(entries []Entry) {
	sort.SliceStable(entries, func(i, j int) bool {
		ri, rj := dtypeRank[entries[i].DType], dtypeRank[entries[j].DType]
		if ri != rj {
			return ri > rj
		}
		return entries[i].Name < entries[j].Name
	})
}

// Encode builds the full file image: the 8-byte header length, the JSON header ("__metadata__"
// first, then the tensors in data order, padded with spaces so that its length is a multiple of 8)
// and the data. Entries are validated (names unique and valid UTF-8, not "__metadata__"; known
// dtype; non-negative shape; len(Data) == dtype size × elements) and sorted as SortEntries does;
// the caller's slice is not reordered.
func Encode(entries []Entry, metadata map[string]string) ([]byte, error) {
	hdr, sorted, dataLen, err := encodeHeader(entries, metadata)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, int64(len(hdr))+dataLen)
	out = append(out, hdr...)
	for _, e := range sorted {
		out = append(out, e.Data...)
	}
	return out, nil
}

// encodeHeader validates and sorts entries and returns the 8-byte length prefix plus the padded
// JSON header, the entries in data order and the data length.
func encodeHeader(entries []Entry, metadata map[string]string) ([]byte, []Entry, int64, error) {
	sorted := append([]Entry(nil), entries...)
	SortEntries(sorted)
	seen := make(map[string]bool, len(sorted))
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	if err := writeMetadata(&hdr, metadata); err != nil {
		return nil, nil, 0, err
	}
	first := len(metadata) == 0
	var offset int64
	for _, e := range sorted {
		if err := checkEntryName(e.Name, seen); err != nil {
			return nil, nil, 0, err
		}
		n, err := entryDataLen(e)
		if err != nil {
			return nil, nil, 0, err
		}
		if !first {
			hdr.WriteByte(',')
		}
		first = false
		writeTensorEntry(&hdr, e, offset, offset+n)
		offset += n
	}
	hdr.WriteByte('}')
	return lengthPrefixed(&hdr), sorted, offset, nil
}

// writeMetadata writes the "__metadata__" object (keys sorted) to hdr, or nothing when metadata is
// empty; keys and values must be valid UTF-8.
func writeMetadata(hdr *bytes.Buffer, metadata map[string]string) error {
	if len(metadata) == 0 {
		return nil
	}
	keys := make([]string, 0, len(metadata))
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("key %q: metadata key and value must be valid UTF-8", metadataKey)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	hdr.WriteString(`"__metadata__":{`)
	for i, k := range keys {
		if i > 0 {
			hdr.WriteByte(',')
		}
		writeJSONString(hdr, k)
		hdr.WriteByte(':')
		writeJSONString(hdr, metadata[k])
	}
	hdr.WriteByte('}')
	return nil
}

// checkEntryName checks that a tensor name is valid UTF-8, not "__metadata__" and not in seen,
// then adds it to seen.
func checkEntryName(name string, seen map[string]bool) error {
	if name == metadataKey {
		return fmt.Errorf("key %q: reserved name, cannot be a tensor", name)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("key %q: tensor name must be valid UTF-8", name)
	}
	if seen[name] {
		return fmt.Errorf("key %q: duplicate tensor name", name)
	}
	seen[name] = true
	return nil
}

// entryDataLen is the byte length of e (dtype size × elements, which must not exceed 2^62), after
// checking its dtype, its shape and that len(e.Data) matches.
func entryDataLen(e Entry) (int64, error) {
	size, ok := DTypeSize(e.DType)
	if !ok {
		return 0, fmt.Errorf("key %q: unknown dtype %q (supported: %v)", e.Name, string(e.DType), SupportedDTypes())
	}
	n := int64(size)
	for _, d := range e.Shape {
		if d < 0 {
			return 0, fmt.Errorf("key %q: shape %v has a negative dimension", e.Name, e.Shape)
		}
		if d == 0 {
			n = 0
		} else if n != 0 {
			if n > (1<<62)/int64(d) {
				return 0, fmt.Errorf("key %q: shape %v is too large", e.Name, e.Shape)
			}
			n *= int64(d)
		}
	}
	if n != int64(len(e.Data)) {
		return 0, fmt.Errorf("key %q: dtype %s shape %v needs %d bytes, got %d", e.Name, e.DType, e.Shape, n, len(e.Data))
	}
	return n, nil
}

// writeTensorEntry writes the header entry of e, whose data lies at [begin, end) of the data buffer:
// "name":{"dtype":"F32","shape":[2,3],"data_offsets":[begin,end]}.
func writeTensorEntry(hdr *bytes.Buffer, e Entry, begin, end int64) {
	writeJSONString(hdr, e.Name)
	hdr.WriteString(`:{"dtype":"`)
	hdr.WriteString(string(e.DType))
	hdr.WriteString(`","shape":[`)
	for i, d := range e.Shape {
		if i > 0 {
			hdr.WriteByte(',')
		}
		hdr.WriteString(strconv.Itoa(d))
	}
	hdr.WriteString(`],"data_offsets":[`)
	hdr.WriteString(strconv.FormatInt(begin, 10))
	hdr.WriteByte(',')
	hdr.WriteString(strconv.FormatInt(end, 10))
	hdr.WriteString("]}")
}

// lengthPrefixed pads the JSON header hdr with spaces to a multiple of 8 bytes and returns it after
// its 8-byte little-endian length.
func lengthPrefixed(hdr *bytes.Buffer) []byte {
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	out := make([]byte, 8, 8+hdr.Len())
	binary.LittleEndian.PutUint64(out, uint64(hdr.Len()))
	return append(out, hdr.Bytes()...)
}

// writeJSONString writes s as a JSON string without HTML escaping (as serde_json does).
func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // cannot fail for a string
	buf.Truncate(buf.Len() - 1) // Encode appends '\n'
}

// WriteEntries saves entries with metadata to path (see Encode for the layout and the checks). The
// write is atomic: the file is written to a temporary file in the same folder, synced, then renamed
// over path; on any error the temporary file is removed and path is left untouched.
func WriteEntries(path string, entries []Entry, metadata map[string]string) (err error) {
	hdr, sorted, _, err := encodeHeader(entries, metadata)
	if err != nil {
		return fmt.Errorf("safetensors: writing %q: %w", path, err)
	}
	return writeAtomic(path, func(w io.Writer) error {
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		for _, e := range sorted {
			if _, err := w.Write(e.Data); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeAtomic writes the content produced by fill to path atomically (internal/atomicfile).
func writeAtomic(path string, fill func(w io.Writer) error) error {
	if err := atomicfile.Write(path, fill); err != nil {
		return fmt.Errorf("safetensors: writing %q: %w", path, err)
	}
	return nil
}
