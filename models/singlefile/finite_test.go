package singlefile

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/models/safetensors"
)

// TestLoadSingleFileNonFinite: an F16 single file with a NaN in a UNet weight, or a -Inf in a text
// encoder's (for SDXL, the fused OpenCLIP in_proj tensor), fails Load and LoadInto with an error
// naming the file and the key in the file (wrapping safetensors.ErrNonFinite).
func TestLoadSingleFileNonFinite(t *testing.T) {
	for _, tc := range sfTinyCases(t) {
		t.Run(tc.name(), func(t *testing.T) {
			dir := t.TempDir()
			good := filepath.Join(dir, "good.safetensors")
			tc.write(t, good, dtypes.Float16)
			opts := Options{Layout: tc.layout}
			_, err := Load(good, tc.declared, opts)
			require.NoError(t, err)
			te := tc.layout.Text[len(tc.layout.Text)-1]
			var unetKey, textKey string
			for _, ti := range mustInfos(t, good) {
				switch {
				case unetKey == "" && strings.HasPrefix(ti.Name, tc.layout.UNetPrefix) && strings.HasSuffix(ti.Name, "0.weight"):
					unetKey = ti.Name
				case textKey == "" && strings.HasPrefix(ti.Name, te.Prefix) &&
					(strings.HasSuffix(ti.Name, "in_proj_weight") || strings.HasSuffix(ti.Name, "q_proj.weight")):
					textKey = ti.Name
				}
			}
			require.NotEmpty(t, unetKey)
			require.NotEmpty(t, textKey)
			keys := map[string]uint16{unetKey: 0x7E00, textKey: 0xFC00} // file key → the bits written at index 1
			for key, bits := range keys {
				bad := filepath.Join(dir, "bad.safetensors")
				tc.write(t, bad, dtypes.Float16)
				sfEdit(t, bad, func(entries map[string]safetensors.Entry) {
					binary.LittleEndian.PutUint16(entries[key].Data[2:], bits)
				})
				want := bad + `: "` + key + `": 1 of `
				_, err := Load(bad, tc.declared, opts)
				require.ErrorIs(t, err, safetensors.ErrNonFinite)
				require.ErrorContains(t, err, want)
				require.ErrorContains(t, err, "at index 1)")
				ctxs := map[string]*model.Scope{}
				root := model.NewStore().RootScope()
				for comp := range tc.declared {
					ctxs[comp] = root.At("%s", comp)
				}
				require.ErrorIs(t, LoadInto(ctxs, bad, tc.declared, opts), safetensors.ErrNonFinite)
			}
		})
	}
}

// mustInfos lists the tensors of a safetensors file.
func mustInfos(t *testing.T, path string) []safetensors.TensorInfo {
	t.Helper()
	f, err := safetensors.Open(path)
	require.NoError(t, err)
	defer f.Close()
	return f.Infos()
}
