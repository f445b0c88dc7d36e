package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
)

// rewriteHeader returns a copy of a safetensors file whose JSON header went through edit.
func rewriteHeader(t *testing.T, file []byte, edit func(h map[string]map[string]any)) []byte {
	t.Helper()
	n := binary.LittleEndian.Uint64(file[:8])
	var h map[string]map[string]any
	require.NoError(t, json.Unmarshal(file[8:8+n], &h))
	edit(h)
	hdr, err := json.Marshal(h)
	require.NoError(t, err)
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	return append(append(out, hdr...), file[8+n:]...)
}

// TestInspectCorruptWeights: each kind of corrupt weight file makes `loba inspect` exit 1 with an
// error naming the file (and the key where there is one) — never a panic.
func TestInspectCorruptWeights(t *testing.T) {
	testutil.Backend(t)
	src := filepath.Join(fixtures.Root(t), "vae", "sd_vae_tiny")
	good, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
	require.NoError(t, err)
	cfg, err := os.ReadFile(filepath.Join(src, "config.json"))
	require.NoError(t, err)
	const key = "decoder.conv_in.bias"
	// overlapKey is the tensor stored last; moving its start back by 4 bytes overlaps the one before.
	var overlapKey string
	rewriteHeader(t, good, func(h map[string]map[string]any) {
		last := -1.0
		for k, e := range h {
			if k == "__metadata__" {
				continue
			}
			if b := e["data_offsets"].([]any)[0].(float64); b > last {
				last, overlapKey = b, k
			}
		}
	})
	cases := map[string]struct {
		data    []byte
		wantKey bool
	}{
		"oversized_header": {data: append(binary.LittleEndian.AppendUint64(nil, 1<<40), good[8:]...)},
		"bad_json":         {data: append(binary.LittleEndian.AppendUint64(nil, 5), []byte("{oops")...)},
		"overlapping_offsets": {data: rewriteHeader(t, good, func(h map[string]map[string]any) {
			offs := h[overlapKey]["data_offsets"].([]any)
			h[overlapKey]["data_offsets"] = []any{offs[0].(float64) - 4, offs[1].(float64)}
		})},
		"dtype_size_mismatch": {data: rewriteHeader(t, good, func(h map[string]map[string]any) {
			h[key]["dtype"] = "F64"
		}), wantKey: true},
		"unknown_dtype": {data: rewriteHeader(t, good, func(h map[string]map[string]any) {
			h[key]["dtype"] = "Q4"
		}), wantKey: true},
		"wrong_shape": {data: rewriteHeader(t, good, func(h map[string]map[string]any) {
			shape := h[key]["shape"].([]any)
			h[key]["shape"] = []any{1, shape[0]}
		}), wantKey: true},
		"truncated": {data: good[:len(good)-100]},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644))
			path := filepath.Join(dir, "diffusion_pytorch_model.safetensors")
			require.NoError(t, os.WriteFile(path, tc.data, 0o644))
			var stdout, stderr bytes.Buffer
			code := run([]string{"inspect", dir}, &stdout, &stderr)
			require.Equal(t, 1, code, "stdout: %s\nstderr: %s", stdout.String(), stderr.String())
			require.Contains(t, stderr.String(), path)
			if tc.wantKey {
				require.Contains(t, stderr.String(), key)
			}
			if name == "overlapping_offsets" {
				require.Contains(t, stderr.String(), overlapKey)
				require.Contains(t, stderr.String(), "overlap")
			}
		})
	}
}
