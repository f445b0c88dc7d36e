package lora

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/models/safetensors"
)

// copyEditing writes a copy of the safetensors file src to dst in which edit changed the stored
// bytes of tensor key.
func copyEditing(t *testing.T, src, dst, key string, edit func(b []byte)) {
	t.Helper()
	f, err := safetensors.Open(src)
	require.NoError(t, err)
	defer f.Close()
	var entries []safetensors.Entry
	for _, ti := range f.Infos() {
		b, err := f.Bytes(ti.Name)
		require.NoError(t, err)
		b = append([]byte(nil), b...)
		if ti.Name == key {
			edit(b)
		}
		entries = append(entries, safetensors.Entry{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: b})
	}
	require.NoError(t, safetensors.WriteEntries(dst, entries, f.Metadata()))
}

// TestKohyaNonFinite: a kohya LoRA holding +Inf or NaN in a lora_up / lora_down weight (F16, BF16)
// or a NaN alpha is refused by LoadKohya (which UseLoRA and the merged LoRAs of training go
// through), whatever strength it would be used at, with an error naming the file, the key and the
// first bad value, wrapping safetensors.ErrNonFinite; the unedited file loads.
func TestKohyaNonFinite(t *testing.T) {
	_, decls, _ := tinyUNets(t)
	decl := decls[0]
	net, err := Resolve(UNet, decl, Targets{Preset: PresetLierLa, Rank: 4})
	require.NoError(t, err)
	ctx := model.NewStore().RootScope()
	require.NoError(t, net.Init(ctx, InitOptions{Seed: 1}))
	require.NoError(t, net.SetWeights(ctx, randomWeights(net, 2)))
	name, err := net.KohyaName(net.Modules[0], LayoutDiffusers, false)
	require.NoError(t, err)
	dir := t.TempDir()
	cases := []struct {
		name, key, want, first string
		dtype                  safetensors.DType
		edit                   func(b []byte)
	}{
		{"f16_inf_up", name + ".lora_up.weight", `": 1 of `, "(first: +Inf at index 3)", safetensors.F16,
			func(b []byte) { binary.LittleEndian.PutUint16(b[2*3:], 0x7C00) }},
		{"bf16_nan_down", name + ".lora_down.weight", `": 2 of `, "(first: NaN at index 5)", safetensors.BF16,
			func(b []byte) {
				binary.LittleEndian.PutUint16(b[2*5:], 0xFFC1)
				binary.LittleEndian.PutUint16(b[2*9:], 0x7FC0)
			}},
		{"nan_alpha", name + ".alpha", `": 1 of 1 values are not finite`, "(first: NaN at index 0)", safetensors.F16,
			func(b []byte) { binary.LittleEndian.PutUint32(b, math.Float32bits(float32(math.NaN()))) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			good := filepath.Join(dir, tc.name+"_good.safetensors")
			require.NoError(t, SaveKohya(ctx, good, []*Network{net}, SaveOptions{DType: tc.dtype, BaseModel: BaseSD1}))
			_, err := LoadKohya(good, Base{Component: UNet, Declared: decl})
			require.NoError(t, err)

			bad := filepath.Join(dir, tc.name+".safetensors")
			copyEditing(t, good, bad, tc.key, tc.edit)
			_, err = LoadKohya(bad, Base{Component: UNet, Declared: decl})
			require.ErrorIs(t, err, safetensors.ErrNonFinite)
			require.ErrorContains(t, err, bad+`: "`+tc.key+tc.want)
			require.ErrorContains(t, err, tc.first)
		})
	}
}
