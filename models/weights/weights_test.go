package weights

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/safetensors"
)

// tinyModel declares down.0.proj (Linear 3→4) and conv (Conv2D 2→5, 3×3).
func tinyModel(ctx *model.Scope, g *Graph) {
	x := Zeros(g, shapes.Make(dtypes.Float32, 1, 3))
	nn.Linear(In(ctx, "down.0.proj"), x, 4, true)
	img := Zeros(g, shapes.Make(dtypes.Float32, 1, 2, 4, 4))
	nn.Conv2D(ctx.At("conv"), img, 5, 3, 1, 1)
}

func TestKeyScopeRoundTrip(t *testing.T) {
	for _, key := range []string{"weight", "conv_in.bias", "down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_out.0.weight"} {
		scope, name := KeyToScope(key)
		got := ScopeToKey("", "/"+strings.Join(scope, "/"), name)
		require.Equal(t, key, got)
		got = ScopeToKey("/unet", "/unet/"+strings.Join(scope, "/"), name)
		require.Equal(t, key, got)
	}
}

func TestDeclared(t *testing.T) {
	decl, err := Declared(tinyModel)
	require.NoError(t, err)
	want := map[string][]int{
		"down.0.proj.weight": {4, 3}, "down.0.proj.bias": {4},
		"conv.weight": {5, 2, 3, 3}, "conv.bias": {5},
	}
	require.Len(t, decl, len(want))
	for k, dims := range want {
		require.Equal(t, dims, decl[k].Dimensions, k)
	}
	require.EqualValues(t, 4*3+4+5*2*9+5, ParamCount(decl))

	_, err = Declared(func(ctx *model.Scope, g *Graph) {
		nn.GroupNorm(ctx, Zeros(g, shapes.Make(dtypes.Float32, 1, 6, 2, 2)), 4, 1e-5)
	})
	require.ErrorContains(t, err, "groups")
}

func writeTensors(t *testing.T, path string, dims map[string][]int) {
	t.Helper()
	ts := map[string]*tensors.Tensor{}
	for k, d := range dims {
		tt := tensors.FromShape(shapes.Make(dtypes.Float32, d...))
		tensors.MutableFlatData[float32](tt, func(flat []float32) {
			for i := range flat {
				flat[i] = float32(i) + 0.5
			}
		})
		ts[k] = tt
	}
	require.NoError(t, safetensors.Write(path, ts, map[string]string{"format": "pt"}))
}

func TestLoadFiles(t *testing.T) {
	backend := testutil.Backend(t)
	decl, err := Declared(tinyModel)
	require.NoError(t, err)
	dir := t.TempDir()
	good := filepath.Join(dir, "model.safetensors")
	writeTensors(t, good, map[string][]int{
		"down.0.proj.weight": {4, 3}, "down.0.proj.bias": {4},
		"conv.weight": {5, 2, 3, 3}, "conv.bias": {5}, "position_ids": {1, 7},
	})
	ctx := model.NewStore().RootScope()
	err = LoadFiles(ctx.At("m"), decl, []string{good}, LoadOptions{})
	require.ErrorContains(t, err, "position_ids", "an unexpected key must be reported")
	err = LoadFiles(ctx.At("m"), decl, []string{good}, LoadOptions{Ignore: func(k string) bool { return k == "position_ids" }})
	require.NoError(t, err)
	v := ctx.At("m").At("down").At("0").At("proj").GetVariable("weight")
	require.NotNil(t, v)
	require.False(t, v.Trainable, "base weights load frozen")
	require.Equal(t, float32(5.5), tensors.MustCopyFlatData[float32](v.MustValue())[5])

	// The graph then builds under Reuse() and runs on the loaded weights.
	out := model.MustExecOnce(backend, ctx.Store(), func(root *model.Scope, x *Node) *Node {
		ctx := root.At("m")
		return nn.Linear(In(ctx, "down.0.proj"), x, 4, true)
	}, [][]float32{{1, 0, 0}})
	require.InDelta(t, 0.5+0.5, out.Value().([][]float32)[0][0], 1e-6) // w[0,0] + b[0]
}

func TestLoadFilesReportsEverythingTogether(t *testing.T) {
	decl, err := Declared(tinyModel)
	require.NoError(t, err)
	dir := t.TempDir()
	bad := filepath.Join(dir, "diffusion_pytorch_model.safetensors")
	writeTensors(t, bad, map[string][]int{
		"down.0.proj.weight": {3, 4}, // transposed
		"conv.weight":        {5, 2, 3, 3},
		"conv.extra":         {2},
	})
	err = LoadFiles(model.NewStore().RootScope(), decl, []string{bad}, LoadOptions{})
	var probs *Problems
	require.True(t, errors.As(err, &probs), "want *Problems, got %v", err)
	msg := err.Error()
	for _, want := range []string{bad, "down.0.proj.bias", "conv.bias", "conv.extra", "down.0.proj.weight", "[3 4]", "[4 3]"} {
		require.Contains(t, msg, want)
	}
	require.Len(t, probs.Missing, 2)
	require.Len(t, probs.Extra, 1)
	require.Len(t, probs.Mismatch, 1)
	require.Equal(t, err.Error(), Check(decl, []string{bad}, LoadOptions{}).Error())
}

func TestPickleRefused(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"model.ckpt", "pytorch_model.bin", "x.pt", "y.PTH"} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("\x80\x02}q\x00."), 0o644))
		err := LoadFiles(model.NewStore().RootScope(), map[string]shapes.Shape{}, []string{p}, LoadOptions{})
		require.ErrorContains(t, err, p)
		require.ErrorContains(t, err, "safetensors")
		require.ErrorContains(t, err, "pickle")
	}
	_, err := FindWeightFiles(dir, "")
	require.ErrorContains(t, err, "pickle")
}

func TestFindWeightFiles(t *testing.T) {
	dir := t.TempDir()
	_, err := FindWeightFiles(dir, "")
	require.ErrorContains(t, err, dir)
	writeTensors(t, filepath.Join(dir, "diffusion_pytorch_model.safetensors"), map[string][]int{"a": {1}})
	writeTensors(t, filepath.Join(dir, "diffusion_pytorch_model.fp16.safetensors"), map[string][]int{"a": {1}})
	files, err := FindWeightFiles(dir, "")
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(dir, "diffusion_pytorch_model.safetensors")}, files)
	files, err = FindWeightFiles(dir, "fp16")
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(dir, "diffusion_pytorch_model.fp16.safetensors")}, files)

	sharded := t.TempDir()
	writeTensors(t, filepath.Join(sharded, "model-00001-of-00002.safetensors"), map[string][]int{"a": {1}})
	writeTensors(t, filepath.Join(sharded, "model-00002-of-00002.safetensors"), map[string][]int{"b": {1}})
	require.NoError(t, os.WriteFile(filepath.Join(sharded, "model.safetensors.index.json"),
		[]byte(`{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}`), 0o644))
	files, err = FindWeightFiles(sharded, "")
	require.NoError(t, err)
	require.Len(t, files, 2)
	require.NoError(t, os.WriteFile(filepath.Join(sharded, "model.safetensors.index.json"),
		[]byte(`{"weight_map": {"a": "../../etc/passwd"}}`), 0o644))
	_, err = FindWeightFiles(sharded, "")
	require.ErrorContains(t, err, "../../etc/passwd")
}

// TestSaveComponentRoundTrip: SaveComponent writes a component's variables under their checkpoint
// keys; LoadFiles reads them back (float16 values rounded once).
func TestSaveComponentRoundTrip(t *testing.T) {
	decl, err := Declared(tinyModel)
	require.NoError(t, err)
	root := model.NewStore().RootScope()
	require.NoError(t, InitFromScratch(root.At("unet"), decl, 5, 0.02))
	root.At("other").VariableWithValue("x", []float32{1, 2}) // outside the component: not saved
	dir := t.TempDir()
	for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float16} {
		path := filepath.Join(dir, dt.String()+".safetensors")
		require.NoError(t, SaveComponent(root.At("unet"), path, dt, map[string]string{"format": "pt"}))
		back := model.NewStore().RootScope()
		require.NoError(t, LoadFiles(back, decl, []string{path}, LoadOptions{}))
		for key := range decl {
			scope, name := KeyToScope(key)
			want := tensors.MustCopyFlatData[float32](In(root.At("unet"), strings.Join(scope, ".")).GetVariable(name).MustValue())
			got := tensors.MustCopyFlatData[float32](In(back, strings.Join(scope, ".")).GetVariable(name).MustValue())
			tol := 0.0
			if dt == dtypes.Float16 {
				tol = 1e-3
			}
			require.InDeltaSlice(t, toF64(want), toF64(got), tol, key)
		}
	}
}

func toF64(xs []float32) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}
