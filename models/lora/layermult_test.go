package lora

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/weights"
)

// TestLayerMultiplierSelectors checks each module's multiplier against the product of the
// matching selectors computed here, the errors, and that nil clears the multipliers.
func TestLayerMultiplierSelectors(t *testing.T) {
	_, decls, _ := tinyUNets(t)
	net, err := Resolve(UNet, decls[0], Targets{Preset: PresetC3Lier})
	require.NoError(t, err)
	sel := map[string]float64{"attn2": 2, "down_blocks.0": 0.5, "re:to_q$": 0, "self_attn": 7}
	require.NoError(t, net.SetLayerMultipliers(sel))
	counted := 0
	for _, m := range net.Modules {
		want := 1.0
		if strings.Contains(m.Path, ".attn2.") {
			want *= 2
		}
		if strings.HasPrefix(m.Path, "down_blocks.0.") {
			want *= 0.5
		}
		if strings.HasSuffix(m.Path, "to_q") {
			want = 0
		}
		if want != 1 {
			counted++
		}
		require.Equal(t, want, net.LayerMultiplier(m.Path), m.Path)
	}
	require.Greater(t, counted, 10)
	require.Equal(t, 1.0, net.LayerMultiplier("not.a.module"))
	got := net.LayerMultipliers()
	require.Equal(t, sel, got)
	got["attn2"] = 5
	require.Equal(t, 2.0, net.LayerMultipliers()["attn2"], "LayerMultipliers returns a copy")

	for _, bad := range []struct {
		sel  map[string]float64
		want string
	}{
		{map[string]float64{"attn2": -1}, `"attn2" has multiplier -1`},
		{map[string]float64{"mid_block": math.NaN()}, `"mid_block" has multiplier NaN`},
		{map[string]float64{"down_blocks.9": 1}, `"down_blocks.9" matches no module`},
		{map[string]float64{"a..b": 1}, `bad selector "a..b"`},
		{map[string]float64{"re:(": 1}, "bad regexp"},
	} {
		err := net.SetLayerMultipliers(bad.sel)
		require.ErrorContains(t, err, bad.want)
		require.ErrorContains(t, err, "unet")
	}
	require.Equal(t, sel, net.LayerMultipliers(), "a refused call keeps the multipliers")
	require.NoError(t, net.SetLayerMultipliers(nil))
	require.Nil(t, net.LayerMultipliers())
	for _, m := range net.Modules {
		require.Equal(t, 1.0, net.LayerMultiplier(m.Path))
	}
}

// miniSetup is miniModel's weights under "/comp" and a full network on it with random LoRA weights.
func miniSetup(t *testing.T, seed uint64) (ctx *model.Scope, net *Network, w map[string]ModuleWeights, xT, imgT *tensors.Tensor) {
	rng := rand.New(rand.NewPCG(seed, 2))
	xT, imgT = randTensor(rng, 2, 3, 4), randTensor(rng, 2, 4, 9, 8)
	decl, err := weights.Declared(func(ctx *model.Scope, g *Graph) {
		miniModel(ctx, Zeros(g, xT.Shape()), Zeros(g, imgT.Shape()))
	})
	require.NoError(t, err)
	net, err = Resolve("comp", decl, Targets{Preset: PresetFull, Rank: 4, Alpha: 3})
	require.NoError(t, err)
	ctx = model.NewStore().RootScope()
	for key, s := range decl {
		scope, name := weights.KeyToScope(key)
		c := ctx.At("comp")
		for _, p := range scope {
			c = c.At("%s", p)
		}
		c.VariableWithValue(name, randTensor(rng, s.Dimensions...)).SetTrainable(false)
	}
	w = randomWeights(net, seed+10)
	require.NoError(t, net.SetWeights(ctx, w))
	return ctx, net, w, xT, imgT
}

// miniRun runs miniModel with (or without) net's adapter at run multiplier 0.7: y (Linear) and h
// (the two convs).
func miniRun(t *testing.T, ctx *model.Scope, net *Network, adapter bool, xT, imgT *tensors.Tensor) (y, h []float32) {
	t.Helper()
	exec := model.MustNewExec(testutil.Backend(t), ctx.Store(), func(_ *model.Scope, x, img, mult *Node) (*Node, *Node) {
		if adapter {
			prev := nn.UseAdapter(x.Graph(), net.Adapter(ctx, "/comp/", mult))
			defer nn.UseAdapter(x.Graph(), prev)
		}
		return miniModel(ctx.At("comp"), x, img)
	})
	out := exec.MustExec(xT, imgT, float32(0.7))
	return flat(t, out[0]), flat(t, out[1])
}

// linearDelta is the adapter's update of the Linear "blocks.0.lin" alone (x [2, 3, 4] → [2, 3, 6]).
func linearDelta(t *testing.T, ctx *model.Scope, net *Network, xT *tensors.Tensor) []float32 {
	t.Helper()
	exec := model.MustNewExec(testutil.Backend(t), ctx.Store(), func(_ *model.Scope, x *Node) *Node {
		a := net.Adapter(ctx, "/comp/", Const(x.Graph(), float32(0.7)))
		return a.LinearDelta(ctx.At("comp").At("blocks").At("0").At("lin"), x, 6)
	})
	return flat(t, exec.MustExec(xT)[0])
}

// TestLayerMultiplierForward checks the adapter's forward with layer multipliers: the Linear's
// update at m_l = 0.5 is exactly half its update without; a conv at m_l = 0 adds nothing; the
// output without multipliers (none set, cleared, or all 1) is bit-identical; and Merge of the
// network with multipliers gives the adapter's outputs.
func TestLayerMultiplierForward(t *testing.T) {
	ctx, net, w, xT, imgT := miniSetup(t, 1)
	full := linearDelta(t, ctx, net, xT)
	yBase, hBase := miniRun(t, ctx, nil, false, xT, imgT)
	y1, h1 := miniRun(t, ctx, net, true, xT, imgT)
	require.Greater(t, testutil.RelErr(y1, yBase), 1e-3)

	for _, sel := range []map[string]float64{{"blocks.0.lin": 1, "conv": 1}, nil} {
		require.NoError(t, net.SetLayerMultipliers(sel))
		y, h := miniRun(t, ctx, net, true, xT, imgT)
		require.Equal(t, y1, y, "multipliers %v: output bit-identical", sel)
		require.Equal(t, h1, h, "multipliers %v: output bit-identical", sel)
		require.Equal(t, full, linearDelta(t, ctx, net, xT))
	}

	require.NoError(t, net.SetLayerMultipliers(map[string]float64{"blocks.0.lin": 0.5}))
	half := linearDelta(t, ctx, net, xT)
	for i := range full {
		require.Equal(t, full[i]*0.5, half[i], "delta[%d]", i)
	}
	// Both convs at 0: their output is the base model's, the Linear still adapted.
	require.NoError(t, net.SetLayerMultipliers(map[string]float64{"blocks.0.lin": 0.5, "conv": 0}))
	yA, hA := miniRun(t, ctx, net, true, xT, imgT)
	require.Equal(t, hBase, hA, "convs at multiplier 0")
	require.Greater(t, testutil.RelErr(yA, yBase), 1e-3)

	require.NoError(t, net.SetLayerMultipliers(map[string]float64{"blocks.0.lin": 0.5, "blocks.1": 0, "blocks.0.conv": 3}))
	yA, hA = miniRun(t, ctx, net, true, xT, imgT)
	require.NoError(t, Merge(ctx, "comp", net, w, 0.7))
	yM, hM := miniRun(t, ctx, nil, false, xT, imgT)
	require.Less(t, testutil.RelErr(yM, yA), 1e-5, "linear")
	require.Less(t, testutil.RelErr(hM, hA), 1e-5, "convs")
}

// baseStore holds random base weights for every module of net, under "/" (the UNet layout).
func baseStore(net *Network, seed uint64) *model.Scope {
	rng := rand.New(rand.NewPCG(seed, 5))
	ctx := model.NewStore().RootScope()
	for _, m := range net.Modules {
		c := ctx
		for _, p := range strings.Split(m.Path, ".") {
			c = c.At("%s", p)
		}
		c.VariableWithValue(VarName, randTensor(rng, m.BaseShape()...))
	}
	return ctx
}

// baseValues are the base weights of net's modules in ctx, by module path.
func baseValues(t *testing.T, ctx *model.Scope, net *Network) map[string][]float32 {
	out := map[string][]float32{}
	for _, m := range net.Modules {
		v := ctx.Store().GetVariable(model.JoinPath("/"+strings.ReplaceAll(m.Path, ".", "/"), VarName))
		require.NotNil(t, v, m.Path)
		val, err := v.Value()
		require.NoError(t, err)
		out[m.Path] = flat(t, val)
	}
	return out
}

// TestLayerMultiplierSaveLoad saves a c3lier network with layer multipliers (powers of two, and 0)
// as a kohya F32 file, loads it back and merges it: the merged weights equal, bit for bit, the
// merge of the trained network with its multipliers, and one module's equal W + s·(α·m_l/r)·up@down
// computed here; alphas are α·m_l (α, with lora_up zero, at m_l = 0), the metadata records the
// multipliers, and without multipliers the file is byte-identical to a cleared network's.
func TestLayerMultiplierSaveLoad(t *testing.T) {
	_, decls, _ := tinyUNets(t)
	net, err := Resolve(UNet, decls[0], Targets{Preset: PresetC3Lier, Rank: 4, Alpha: 2, ConvRank: 2, ConvAlpha: 1})
	require.NoError(t, err)
	ctx := model.NewStore().RootScope()
	w := randomWeights(net, 9)
	require.NoError(t, net.SetWeights(ctx, w))
	dir := t.TempDir()
	save := func(name string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, SaveKohya(ctx, path, []*Network{net}, SaveOptions{DType: safetensors.F32, BaseModel: BaseSD1, Title: "t"}))
		return path
	}
	plain := save("plain.safetensors")
	sel := map[string]float64{"attn2": 0.5, "resnet": 2, "mid_block": 0, "down_blocks.0.attentions.0.proj_in": 0.25}
	require.NoError(t, net.SetLayerMultipliers(sel))
	path := save("mult.safetensors")

	l, err := LoadKohya(path, Base{Component: UNet, Declared: decls[0]})
	require.NoError(t, err)
	var md map[string]map[string]float64
	require.NoError(t, json.Unmarshal([]byte(l.Metadata[MetaLayerMultipliers]), &md))
	require.Equal(t, map[string]map[string]float64{UNet: sel}, md)
	got := l.Network(UNet)
	require.Len(t, got.Modules, len(net.Modules))
	zeroed := 0
	for i, m := range net.Modules {
		mult, alpha := net.LayerMultiplier(m.Path), got.Modules[i].Alpha
		if mult == 0 {
			zeroed++
			require.Equal(t, m.Alpha, alpha, m.Path)
			require.Equal(t, make([]float32, m.Out*m.Rank), flat(t, l.Weights[UNet][m.Path].Up), m.Path)
		} else {
			require.Equal(t, m.Alpha*mult, alpha, m.Path)
		}
	}
	require.Positive(t, zeroed, "the mid block is written at multiplier 0")

	const strength = 0.7
	trained, loaded := baseStore(net, 4), baseStore(net, 4)
	before := baseValues(t, trained, net)
	require.NoError(t, Merge(trained, "/", net, w, strength))
	require.NoError(t, Merge(loaded, "/", got, l.Weights[UNet], strength))
	wantW, gotW := baseValues(t, trained, net), baseValues(t, loaded, net)
	require.Equal(t, wantW, gotW, "merged weights: trained network vs saved and loaded file")

	m := net.Module("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k")
	require.NotNil(t, m)
	down, up := flat(t, w[m.Path].Down), flat(t, w[m.Path].Up)
	for o := range m.Out {
		for c := range m.In {
			var d float64
			for k := range m.Rank {
				d += float64(up[o*m.Rank+k]) * float64(down[k*m.In+c])
			}
			want := float64(before[m.Path][o*m.In+c]) + strength*(m.Alpha*0.5/float64(m.Rank))*d
			require.InDelta(t, want, gotW[m.Path][o*m.In+c], 1e-6, "W'[%d,%d]", o, c)
		}
	}

	require.NoError(t, net.SetLayerMultipliers(nil))
	cleared := save("cleared.safetensors")
	a, err := os.ReadFile(plain)
	require.NoError(t, err)
	b, err := os.ReadFile(cleared)
	require.NoError(t, err)
	require.True(t, bytes.Equal(a, b), "no multipliers: the same file bytes")
	require.NotContains(t, string(a), MetaLayerMultipliers)
}

// TestLayerMultiplierPEFT checks that SavePEFT folds α·m_l/r into lora_B and records the multipliers.
func TestLayerMultiplierPEFT(t *testing.T) {
	_, decls, _ := tinyUNets(t)
	net, err := Resolve(UNet, decls[0], Targets{Preset: PresetLierLa, Rank: 2, Alpha: 1})
	require.NoError(t, err)
	ctx := model.NewStore().RootScope()
	w := randomWeights(net, 6)
	require.NoError(t, net.SetWeights(ctx, w))
	require.NoError(t, net.SetLayerMultipliers(map[string]float64{"attn1": 0.3}))
	path := filepath.Join(t.TempDir(), "peft.safetensors")
	require.NoError(t, SavePEFT(ctx, path, []*Network{net}, SaveOptions{DType: safetensors.F32}))
	f, err := safetensors.Open(path)
	require.NoError(t, err)
	defer f.Close()
	require.Equal(t, `{"unet":{"attn1":0.3}}`, f.Metadata()[MetaLayerMultipliers])
	for _, m := range net.Modules {
		b, _, err := f.Float32s("unet." + m.Path + ".lora_B.weight")
		require.NoError(t, err)
		mult := 1.0
		if strings.Contains(m.Path, ".attn1.") {
			mult = 0.3
		}
		for i, u := range flat(t, w[m.Path].Up) {
			require.Equal(t, float32(float64(u)*m.Scale()*mult), b[i], "%s[%d]", m.Path, i)
		}
	}
}
