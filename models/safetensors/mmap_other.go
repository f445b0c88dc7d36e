//go:build !unix

package safetensors

import "os"

// mapFile is not available on this platform: the caller reads the file instead.
func mapFile(f *os.File, size int64) (data []byte, unmap func() error, ok bool) {
	return nil, nil, false
}
