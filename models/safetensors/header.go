package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"unicode/utf8"
)

// MaxHeaderSize bounds the JSON header (as the Rust reader does): a larger length prefix is an
// "oversized header" error, before anything is allocated.
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key holding the free-form string→string metadata.
const metadataKey = "__metadata__"

// ErrInvalid is wrapped by every error about a malformed file: errors.Is(err, ErrInvalid).
var ErrInvalid = errors.New("invalid safetensors file")

// TensorInfo describes one tensor of a file. Begin and End are byte offsets into the data buffer
// (which starts right after the header, at File.DataOffset()).
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	Begin int64
	End   int64
}

// NumElements is the product of the shape (1 for a scalar).
func (ti TensorInfo) NumElements() int {
	n := 1
	for _, d := range ti.Shape {
		n *= d
	}
	return n
}

// ByteLen is End - Begin.
func (ti TensorInfo) ByteLen() int64 { return ti.End - ti.Begin }

// Header is the validated header of a file.
type Header struct {
	// Tensors sorted by name.
	Tensors []TensorInfo
	// Metadata is the "__metadata__" map (never nil).
	Metadata map[string]string
	// HeaderLen is N, the JSON length (padding included) that follows the 8-byte prefix.
	HeaderLen int64
	// DataLen is the length of the data buffer, which starts at offset 8 + HeaderLen.
	DataLen int64
}

// invalid builds an error about file path (and key, when not empty) that wraps ErrInvalid.
func invalid(path, key, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if key != "" {
		return fmt.Errorf("safetensors: %w %q: key %q: %s", ErrInvalid, path, key, msg)
	}
	return fmt.Errorf("safetensors: %w %q: %s", ErrInvalid, path, msg)
}

// ReadHeader reads and fully validates the header of the file at path (offsets are checked against
// the file size) without reading or mapping the tensor data.
func ReadHeader(path string) (*Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	size := st.Size()
	n, err := headerLen(path, size, func(p []byte, off int64) error {
		_, err := f.ReadAt(p, off)
		return err
	})
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 8); err != nil {
		return nil, fmt.Errorf("safetensors: reading header of %q: %w", path, err)
	}
	return parseHeader(path, buf, size-8-n)
}

// headerLen reads and checks the 8-byte little-endian header length N against the file size.
func headerLen(path string, size int64, readAt func(p []byte, off int64) error) (int64, error) {
	if size < 8 {
		return 0, invalid(path, "", "file is %d bytes long, shorter than the 8-byte header length prefix (truncated file)", size)
	}
	var p [8]byte
	if err := readAt(p[:], 0); err != nil {
		return 0, fmt.Errorf("safetensors: reading %q: %w", path, err)
	}
	var n uint64
	for i := 7; i >= 0; i-- {
		n = n<<8 | uint64(p[i])
	}
	if n > MaxHeaderSize {
		return 0, invalid(path, "", "oversized header: length prefix %d exceeds the limit of %d bytes", n, MaxHeaderSize)
	}
	if int64(n) > size-8 {
		return 0, invalid(path, "", "oversized header: length prefix %d exceeds the %d bytes that follow it (truncated file?)", n, size-8)
	}
	if n < 2 {
		return 0, invalid(path, "", "header length %d is too short for a JSON object", n)
	}
	return int64(n), nil
}

// rawField is one key/value pair of a JSON object, in file order.
type rawField struct {
	key   string
	value json.RawMessage
}

// objectFields splits a JSON object into its fields, rejecting duplicate keys and trailing data.
// what names the object in error messages.
func objectFields(data []byte) ([]rawField, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("malformed JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("expected a JSON object, got %s", describeToken(tok))
	}
	var fields []rawField
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("malformed JSON: %v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("malformed JSON: expected an object key, got %s", describeToken(tok))
		}
		if seen[key] {
			return nil, &keyError{key: key, msg: "duplicate key in JSON object"}
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, &keyError{key: key, msg: fmt.Sprintf("malformed JSON value: %v", err)}
		}
		fields = append(fields, rawField{key: key, value: raw})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("malformed JSON: trailing data after the object")
	}
	return fields, nil
}

// keyError is an objectFields error tied to one key.
type keyError struct{ key, msg string }

func (e *keyError) Error() string { return fmt.Sprintf("key %q: %s", e.key, e.msg) }

func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// jsonKind names the JSON type of a raw value for error messages.
func jsonKind(raw json.RawMessage) string {
	s := bytes.TrimSpace(raw)
	if len(s) == 0 {
		return "nothing"
	}
	switch s[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// parseHeader parses and validates the JSON header buf of the file at path, whose data buffer is
// dataLen bytes long.
func parseHeader(path string, buf []byte, dataLen int64) (*Header, error) {
	h := &Header{Metadata: map[string]string{}, HeaderLen: int64(len(buf)), DataLen: dataLen}
	if !utf8.Valid(buf) {
		return nil, invalid(path, "", "header is not valid UTF-8")
	}
	if len(buf) == 0 || buf[0] != '{' {
		return nil, invalid(path, "", "malformed JSON: header does not start with '{'")
	}
	fields, err := objectFields(buf)
	if err != nil {
		var ke *keyError
		if errors.As(err, &ke) {
			return nil, invalid(path, ke.key, "%s", ke.msg)
		}
		return nil, invalid(path, "", "header: %v", err)
	}
	for _, fld := range fields {
		if fld.key == metadataKey {
			md, err := parseMetadata(fld.value)
			if err != nil {
				return nil, invalid(path, metadataKey, "%v", err)
			}
			h.Metadata = md
			continue
		}
		ti, err := parseTensorInfo(fld.key, fld.value)
		if err != nil {
			return nil, invalid(path, fld.key, "%v", err)
		}
		if ti.End > dataLen {
			return nil, invalid(path, fld.key, "data_offsets [%d, %d] out of range: the data buffer is %d bytes", ti.Begin, ti.End, dataLen)
		}
		h.Tensors = append(h.Tensors, ti)
	}
	if err := checkCoverage(path, h.Tensors, dataLen); err != nil {
		return nil, err
	}
	sort.Slice(h.Tensors, func(i, j int) bool { return h.Tensors[i].Name < h.Tensors[j].Name })
	return h, nil
}

// parseMetadata decodes the "__metadata__" object: string keys to string values, no duplicates.
func parseMetadata(raw json.RawMessage) (map[string]string, error) {
	if k := jsonKind(raw); k != "an object" {
		return nil, fmt.Errorf("must be an object of strings, got %s", k)
	}
	fields, err := objectFields(raw)
	if err != nil {
		return nil, err
	}
	md := make(map[string]string, len(fields))
	for _, fld := range fields {
		var s string
		if jsonKind(fld.value) != "a string" || json.Unmarshal(fld.value, &s) != nil {
			return nil, fmt.Errorf("entry %q must be a string, got %s", fld.key, jsonKind(fld.value))
		}
		md[fld.key] = s
	}
	return md, nil
}

// parseTensorInfo decodes one tensor entry and checks its types, dtype, shape and byte size.
func parseTensorInfo(name string, raw json.RawMessage) (TensorInfo, error) {
	ti := TensorInfo{Name: name}
	if k := jsonKind(raw); k != "an object" {
		return ti, fmt.Errorf("tensor entry must be an object with dtype, shape and data_offsets, got %s", k)
	}
	fields, err := objectFields(raw)
	if err != nil {
		return ti, err
	}
	var haveDType, haveShape, haveOffsets bool
	for _, fld := range fields {
		switch fld.key {
		case "dtype":
			ti.DType, err = parseDType(fld.value)
			haveDType = true
		case "shape":
			ti.Shape, err = parseShape(fld.value)
			haveShape = true
		case "data_offsets":
			ti.Begin, ti.End, err = parseOffsets(fld.value)
			haveOffsets = true
		default:
			err = fmt.Errorf("unexpected field %q in tensor entry (want dtype, shape, data_offsets)", fld.key)
		}
		if err != nil {
			return ti, err
		}
	}
	switch {
	case !haveDType:
		return ti, fmt.Errorf("tensor entry has no dtype")
	case !haveShape:
		return ti, fmt.Errorf("tensor entry has no shape")
	case !haveOffsets:
		return ti, fmt.Errorf("tensor entry has no data_offsets")
	}
	return ti, checkByteLen(ti)
}

// parseDType decodes the "dtype" field: a string naming a supported dtype.
func parseDType(raw json.RawMessage) (DType, error) {
	var s string
	if jsonKind(raw) != "a string" || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("dtype must be a string, got %s", jsonKind(raw))
	}
	if d := DType(s); d.Valid() {
		return d, nil
	}
	return DType(s), fmt.Errorf("unknown dtype %q (supported: %v)", s, SupportedDTypes())
}

// parseShape decodes the "shape" field: an array of non-negative dimensions that fit an int.
func parseShape(raw json.RawMessage) ([]int, error) {
	dims, err := parseInts(raw)
	if err != nil {
		return nil, fmt.Errorf("shape: %v", err)
	}
	shape := make([]int, len(dims))
	for i, d := range dims {
		if d < 0 {
			return shape, fmt.Errorf("shape %v: negative dimension %d at axis %d", dims, d, i)
		}
		if int64(int(d)) != d {
			return shape, fmt.Errorf("shape %v: dimension %d too large", dims, d)
		}
		shape[i] = int(d)
	}
	return shape, nil
}

// parseOffsets decodes the "data_offsets" field: [begin, end], both non-negative, begin <= end.
func parseOffsets(raw json.RawMessage) (begin, end int64, err error) {
	offs, err := parseInts(raw)
	if err != nil {
		return 0, 0, fmt.Errorf("data_offsets: %v", err)
	}
	if len(offs) != 2 {
		return 0, 0, fmt.Errorf("data_offsets must hold 2 integers [begin, end], got %d", len(offs))
	}
	begin, end = offs[0], offs[1]
	if begin < 0 || end < 0 {
		return begin, end, fmt.Errorf("data_offsets [%d, %d]: negative offset", begin, end)
	}
	if begin > end {
		return begin, end, fmt.Errorf("data_offsets [%d, %d]: begin > end", begin, end)
	}
	return begin, end, nil
}

// checkByteLen checks, without overflowing int64, that dtype size × product(shape) == End - Begin.
func checkByteLen(ti TensorInfo) error {
	want := ti.End - ti.Begin
	nbytes := int64(ti.DType.Size())
	if slices.Contains(ti.Shape, 0) {
		nbytes = 0
	} else {
		for _, d := range ti.Shape {
			if nbytes > math.MaxInt64/int64(d) {
				return fmt.Errorf("shape %v of dtype %s overflows int64 bytes (data_offsets give %d bytes)", ti.Shape, ti.DType, want)
			}
			nbytes *= int64(d)
		}
	}
	if nbytes != want {
		return fmt.Errorf("dtype %s shape %v needs %d bytes but data_offsets [%d, %d] give %d", ti.DType, ti.Shape, nbytes, ti.Begin, ti.End, want)
	}
	return nil
}

// parseInts decodes a JSON array of integers (rejecting fractions, exponents and int64 overflow).
func parseInts(raw json.RawMessage) ([]int64, error) {
	if k := jsonKind(raw); k != "an array" {
		return nil, fmt.Errorf("must be an array of integers, got %s", k)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("malformed array: %v", err)
	}
	out := make([]int64, len(items))
	for i, it := range items {
		s := string(bytes.TrimSpace(it))
		if jsonKind(it) != "a number" {
			return nil, fmt.Errorf("element %d must be an integer, got %s", i, jsonKind(it))
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("element %d (%s) is not an integer in the int64 range", i, s)
		}
		out[i] = v
	}
	return out, nil
}

// checkCoverage checks that the tensors tile the data buffer [0, dataLen) exactly: sorted by
// offset, each begins where the previous ended (no overlap, no gap) and the last ends at dataLen.
func checkCoverage(path string, infos []TensorInfo, dataLen int64) error {
	order := make([]int, len(infos))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		x, y := infos[order[a]], infos[order[b]]
		if x.Begin != y.Begin {
			return x.Begin < y.Begin
		}
		if x.End != y.End {
			return x.End < y.End
		}
		return x.Name < y.Name
	})
	var pos int64
	prev := ""
	for _, i := range order {
		ti := infos[i]
		switch {
		case ti.Begin < pos:
			return invalid(path, ti.Name, "data_offsets [%d, %d] overlap tensor %q, which ends at %d", ti.Begin, ti.End, prev, pos)
		case ti.Begin > pos:
			if prev == "" {
				return invalid(path, ti.Name, "data_offsets [%d, %d]: gap of %d bytes at the start of the data buffer", ti.Begin, ti.End, ti.Begin-pos)
			}
			return invalid(path, ti.Name, "data_offsets [%d, %d]: gap of %d bytes after tensor %q, which ends at %d", ti.Begin, ti.End, ti.Begin-pos, prev, pos)
		}
		pos = ti.End
		prev = ti.Name
	}
	if pos != dataLen {
		if prev == "" {
			return invalid(path, "", "no tensor covers the %d bytes of the data buffer (trailing data)", dataLen)
		}
		return invalid(path, prev, "trailing data: the last tensor ends at %d but the data buffer is %d bytes", pos, dataLen)
	}
	return nil
}
