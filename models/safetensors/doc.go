// Package safetensors reads and writes the safetensors format (huggingface/safetensors) for LOBA:
// memory-mapped, validated reading into GoMLX tensors and atomic writing.
//
// # Format
//
// A file is an 8-byte little-endian unsigned length N, then N bytes of UTF-8 JSON (the header),
// then the data buffer. The header is an object mapping each tensor name to
//
//	{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
//
// plus an optional "__metadata__" object of string → string. Offsets are relative to the start of
// the data buffer (file offset 8+N). Tensor data is little-endian and C-contiguous (row-major).
// Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL; other names of
// the spec (F8_*, C64, F4, ...) are rejected as unknown.
//
// # Validation (Open, ReadHeader, FromBytes)
//
// Each violation is an error wrapping ErrInvalid that names the file and, where one is involved, the
// key:
//   - the file is at least 8 bytes long;
//   - N ≤ MaxHeaderSize (100 MB) and N ≤ file size - 8 ("oversized header");
//   - the header is valid UTF-8, starts with '{' and is one well-formed JSON object with nothing but
//     whitespace after it; no object in it (top level, "__metadata__", tensor entries) repeats a key;
//   - "__metadata__" is an object whose values are all strings;
//   - each tensor entry is an object with exactly the fields dtype (a known dtype string), shape (an
//     array of non-negative integers) and data_offsets (an array of 2 non-negative integers with
//     begin ≤ end ≤ data buffer length);
//   - dtype size × product(shape) == end - begin, computed without overflow (a shape whose byte size
//     overflows int64 is an error, nothing is allocated from it);
//   - sorted by offset, the tensors tile the data buffer exactly: each begins where the previous one
//     ended (no overlap, no gap) and the last ends at the end of the file (no trailing bytes), as
//     the official Rust reader requires.
//
// The reader never panics on malformed input (see FuzzOpen). BOOL bytes other than 0 and 1 are
// rejected when the tensor is read.
//
// # Reading
//
// Open maps the file read-only (syscall.Mmap; it falls back to reading the file when mapping
// fails). File.Bytes is a zero-copy view; File.Tensor copies into a GoMLX tensor converting to the
// requested dtype (the simplego backend has no F16: F16/BF16/F64 → F32 is the usual load);
// File.Float32s / File.Int64s return flat Go slices; ReadTensors loads a whole file.
//
// # Finite values
//
// ScanNonFinite counts the NaN and ±Inf values of raw F64/F32/F16/BF16 bytes (all exponent bits
// set; -0 and subnormals are finite), 8 bytes at a time. File.CheckFinite / CheckAllFinite scan
// stored tensors in place, File.FiniteTensor reads a tensor and refuses non-finite values, and
// CheckTensor / CheckFinite check loaded GoMLX tensors (e.g. a checkpoint read with ReadTensors).
// Their errors are *NonFiniteError values naming the file, the key, the counts and the first bad
// index, wrapping ErrNonFinite.
//
// # Writing
//
// Write (GoMLX tensors) and WriteEntries (raw bytes) lay files out as the Rust serializer does:
// the header lists "__metadata__" first (keys sorted) then the tensors in data order, data sorted
// by dtype alignment (U64, I64, F64, F32, U32, I32, BF16, F16, U16, I16, I8, U8, BOOL) then by
// name, and the JSON is padded with spaces so that 8+N is a multiple of 8. The file is written to a
// temporary file in the destination folder, synced and renamed into place; on error the temporary
// file is removed, so a half-written output never appears. Values are assumed to be in the host's
// byte order, which must be little-endian (amd64, arm64).
package safetensors
