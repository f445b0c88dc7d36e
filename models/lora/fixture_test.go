package lora

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/unet"
	"github.com/loba-dev/loba/models/weights"
)

// loraCase is the part of a lora_loss case.json these tests read.
type loraCase struct {
	BaseModel struct {
		Path string `json:"path"`
	} `json:"base_model"`
	GuidanceScale float64 `json:"guidance_scale"`
	LoRA          struct {
		Rank       int               `json:"rank"`
		Alpha      float64           `json:"alpha"`
		Multiplier float64           `json:"multiplier"`
		Mapping    map[string]string `json:"mapping_kohya_to_diffusers"`
	} `json:"lora"`
}

func flat(t *testing.T, x *tensors.Tensor) []float32 {
	t.Helper()
	require.Equal(t, dtypes.Float32, x.DType())
	return tensors.MustCopyFlatData[float32](x)
}

// TestLoRALossFixture loads every lora_loss case's lora.safetensors through LoadKohya onto its base
// UNet and checks the resolved modules, ranks and alphas, then the UNet with the Adapter at the
// case's multiplier (out.target_pred), 0 (out.target_pred_lora_disabled and the other roles'
// out.*_pred) and per sample [m, 0, …], and the gradients of loss_erase / loss_enhance with respect
// to the LoRA weights (out.grad_*). Inputs are read as the fixtures README documents
// (fixtures.ResolveLoRALossInputs); a case with an input it does not recognise fails.
func TestLoRALossFixture(t *testing.T) {
	backend := testutil.Backend(t)
	for _, dir := range fixtures.Cases(t, "lora_loss") {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkLoRALossFixtureCase(t, backend, dir) })
	}
}

// checkLoRALossFixtureCase is TestLoRALossFixture on the case in dir.
func checkLoRALossFixtureCase(t *testing.T, backend compute.Backend, dir string) {
	t.Helper()
	c := loraCase{GuidanceScale: 1} // case.json values; guidance and multiplier default to 1
	c.LoRA.Multiplier = 1
	readJSON(t, filepath.Join(dir, "case.json"), &c)
	baseDir := filepath.Join(dir, c.BaseModel.Path)
	m, ctx, err := unet.Load(baseDir)
	require.NoError(t, err)
	decl, err := weights.Declared(m.Declare)
	require.NoError(t, err)

	loraPath := filepath.Join(dir, "lora.safetensors")
	l, err := LoadKohya(loraPath, Base{Component: UNet, Declared: decl})
	require.NoError(t, err)
	require.Equal(t, LayoutDiffusers, l.Layout)
	require.Len(t, l.Networks, 1)
	net := l.Network(UNet)
	require.NotNil(t, net)

	// Modules = the case's mapping; rank and alpha as stored in the file.
	f, err := safetensors.Open(loraPath)
	require.NoError(t, err)
	defer f.Close()
	got := map[string]string{}
	for _, mod := range net.Modules {
		name, err := net.KohyaName(mod, LayoutDiffusers, m.Config.IsSDXL())
		require.NoError(t, err)
		got[name] = mod.Path
		info, ok := f.Info(name + ".lora_down.weight")
		require.True(t, ok)
		require.Equal(t, info.Shape[0], mod.Rank, name)
		alpha, _, err := f.Float64s(name + ".alpha")
		require.NoError(t, err)
		require.Equal(t, alpha[0], mod.Alpha, name)
		require.Equal(t, c.LoRA.Rank, mod.Rank)
		require.Equal(t, c.LoRA.Alpha, mod.Alpha)
	}
	require.Equal(t, c.LoRA.Mapping, got)

	require.NoError(t, l.SetWeights(ctx))
	io, err := safetensors.ReadTensors(filepath.Join(dir, "io.safetensors"), dtypes.Float32)
	require.NoError(t, err)
	in, err := fixtures.ResolveLoRALossInputs(io, m.Config.IsSDXL())
	require.NoError(t, err, "lora_loss case %s", dir)

	// Inputs: x, t, hidden states, multiplier, then (text_time) text embeds and time ids.
	exec := model.MustNewExec(backend, ctx.Store(), func(_ *model.Scope, args []*Node) *Node {
		x, ts, enc, mult := args[0], args[1], args[2], args[3]
		prev := nn.UseAdapter(x.Graph(), net.Adapter(ctx, "/", mult))
		defer nn.UseAdapter(x.Graph(), prev)
		return m.Forward(ctx, x, ts, condOf(enc, args[4:]))
	})
	run := func(role string, mult any) []float32 {
		args := append([]any{in.X, in.T, in.Conds[role].Hidden, mult}, in.Added(role)...)
		return flat(t, exec.MustExec(args...)[0])
	}
	on, off := run("target", float32(c.LoRA.Multiplier)), run("target", float32(0))
	wantOn, wantOff := flat(t, io["out.target_pred"]), flat(t, io["out.target_pred_lora_disabled"])
	require.Less(t, testutil.RelErr(on, wantOn), 1e-4, "multiplier %g", c.LoRA.Multiplier)
	require.Less(t, testutil.RelErr(off, wantOff), 1e-4, "multiplier 0")
	require.Greater(t, testutil.RelErr(wantOff, wantOn), 1e-3, "the LoRA must change the output")
	// The other conditionings are predicted with the LoRA disabled.
	for _, role := range fixtures.LoRALossRoles[1:] {
		require.Less(t, testutil.RelErr(run(role, float32(0)), flat(t, io["out."+role+"_pred"])), 1e-4, "out.%s_pred", role)
	}

	// Per-sample multiplier: even samples on, odd samples off.
	b := in.X.Shape().Dim(0)
	per := make([]float32, b)
	for i := range per {
		if i%2 == 0 {
			per[i] = float32(c.LoRA.Multiplier)
		}
	}
	mixed := run("target", tensors.FromFlatDataAndDimensions(per, b))
	n := len(mixed) / b
	for i := range b {
		want := wantOff
		if i%2 == 0 {
			want = wantOn
		}
		require.Less(t, testutil.RelErr(mixed[i*n:(i+1)*n], want[i*n:(i+1)*n]), 1e-4, "sample %d", i)
	}

	checkGradients(t, c, m, ctx, net, in, io)
}

// checkGradients checks d loss_{erase,enhance} / d LoRA weights, with the LoRA at the case's
// multiplier, against out.grad_*.
func checkGradients(t *testing.T, c loraCase, m *unet.UNet2DConditionModel, ctx *model.Scope, net *Network, in *fixtures.LoRALossInputs, io map[string]*tensors.Tensor) {
	t.Helper()
	vars, err := net.Variables(ctx)
	require.NoError(t, err)
	names := make([]string, len(vars))
	for i, mod := range net.Modules {
		name, err := net.KohyaName(mod, LayoutDiffusers, m.Config.IsSDXL())
		require.NoError(t, err)
		names[2*i], names[2*i+1] = name+".lora_down.weight", name+".lora_up.weight"
	}
	g := c.GuidanceScale
	exec := model.MustNewExec(testutil.Backend(t), ctx.Store(), func(_ *model.Scope, args []*Node) []*Node {
		x, ts, enc, pos, neu, unc := args[0], args[1], args[2], args[3], args[4], args[5]
		prev := nn.UseAdapter(x.Graph(), net.Adapter(ctx, "/", Scalar(x.Graph(), dtypes.Float32, c.LoRA.Multiplier)))
		pred := m.Forward(ctx, x, ts, condOf(enc, args[6:]))
		nn.UseAdapter(x.Graph(), prev)
		diff := Sub(pos, unc)
		erase := ReduceAllMean(Square(Sub(pred, Sub(neu, MulScalar(diff, g)))))
		enhance := ReduceAllMean(Square(Sub(pred, Add(neu, MulScalar(diff, g)))))
		nodes := make([]*Node, len(vars))
		for i, v := range vars {
			nodes[i] = v.NodeValue(x.Graph())
		}
		out := []*Node{erase, enhance}
		out = append(out, Gradient(erase, nodes...)...)
		return append(out, Gradient(enhance, nodes...)...)
	})
	args := append([]any{in.X, in.T, in.Conds["target"].Hidden, io["out.positive_pred"], io["out.neutral_pred"], io["out.unconditional_pred"]}, in.Added("target")...)
	res := exec.MustExec(args...)
	require.Less(t, testutil.RelErr(flat(t, res[0]), flat(t, io["out.loss_erase"])), 1e-4)
	require.Less(t, testutil.RelErr(flat(t, res[1]), flat(t, io["out.loss_enhance"])), 1e-4)
	var seen []string
	for k, loss := range []string{"erase", "enhance"} {
		var all, allWant []float32
		for i, name := range names {
			key := "out.grad_" + loss + "." + name
			want, ok := io[key]
			require.True(t, ok, key)
			gotG := flat(t, res[2+k*len(vars)+i])
			require.Less(t, testutil.RelErr(gotG, flat(t, want)), 1e-3, key)
			all, allWant = append(all, gotG...), append(allWant, flat(t, want)...)
			seen = append(seen, key)
		}
		require.Less(t, testutil.RelErr(all, allWant), 1e-4, loss)
	}
	var wantKeys []string
	for k := range io {
		if strings.HasPrefix(k, "out.grad_") {
			wantKeys = append(wantKeys, k)
		}
	}
	sort.Strings(wantKeys)
	sort.Strings(seen)
	require.Equal(t, wantKeys, seen)
}

// condOf is the UNet conditioning of hidden states and an exec's trailing inputs (SDXL's text
// embeds and time ids, when there are any).
func condOf(hidden *Node, added []*Node) unet.Conditioning[*Node] {
	c := unet.Conditioning[*Node]{Hidden: hidden}
	if len(added) > 0 {
		c.TextEmbeds, c.TimeIDs = added[0], added[1]
	}
	return c
}

// TestLoRALossFixtureSyntheticSDXL runs checkLoRALossFixtureCase on an SDXL-shaped lora_loss case
// written in the documented form (in.<role>.encoder_hidden_states, in.<role>.text_embeds,
// in.time_ids) on the public unet/sdxl_tiny, with multiplier -0.75 and guidance 1.5. out.target_pred
// comes from the LoRA merged into the base weights (Merge), not from the Adapter; the other
// predictions from the base UNet; the gradients from the README's loss formula.
func TestLoRALossFixtureSyntheticSDXL(t *testing.T) {
	backend := testutil.Backend(t)
	dir := filepath.Join(t.TempDir(), "sdxl_tiny_synthetic")
	require.NoError(t, os.Mkdir(dir, 0o755))
	writeSyntheticSDXLCase(t, backend, dir, 1.5, -0.75)
	checkLoRALossFixtureCase(t, backend, dir)
}

// writeSyntheticSDXLCase writes case.json, lora.safetensors and io.safetensors of an SDXL-shaped
// lora_loss case into dir (see TestLoRALossFixtureSyntheticSDXL).
func writeSyntheticSDXLCase(t *testing.T, backend compute.Backend, dir string, g, mult float64) {
	t.Helper()
	baseDir := filepath.Join(fixtures.Root(t), "unet", "sdxl_tiny")
	rel, err := filepath.Rel(dir, baseDir)
	require.NoError(t, err)
	m, ctx, err := unet.Load(baseDir)
	require.NoError(t, err)
	cfg := m.Config
	require.True(t, cfg.IsSDXL(), "unet/sdxl_tiny must be text_time")
	decl, err := weights.Declared(m.Declare)
	require.NoError(t, err)
	const rank, alpha = 4, 2.0
	net, err := Resolve(UNet, decl, Targets{Preset: PresetNone, Rank: rank, Alpha: alpha, Selectors: []Selector{{Match: "attn"}}})
	require.NoError(t, err)

	rng := rand.New(rand.NewPCG(6003, 1))
	normal := func(std float64, dims ...int) *tensors.Tensor {
		v := make([]float32, shapes.Make(dtypes.Float32, dims...).Size())
		for i := range v {
			v[i] = float32(rng.NormFloat64() * std)
		}
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
	w := map[string]ModuleWeights{}
	mapping := map[string]string{}
	for _, mod := range net.Modules {
		w[mod.Path] = ModuleWeights{Down: normal(0.1, mod.DownShape()...), Up: normal(0.05, mod.UpShape()...)}
		name, err := net.KohyaName(mod, LayoutDiffusers, true)
		require.NoError(t, err)
		mapping[name] = mod.Path
	}
	require.NoError(t, WriteKohya(filepath.Join(dir, "lora.safetensors"), []*Network{net},
		map[string]map[string]ModuleWeights{UNet: w}, SaveOptions{DType: safetensors.F32, BaseModel: BaseSDXL10}))

	// Inputs, sized from the base config: pooled P = projection input − 6·addition_time_embed_dim.
	const b, seq, nTimeIDs = 2, 77, 6
	side := 4 * cfg.DownsampleFactor()
	cross := cfg.CrossAttentionDim.At(0)
	pooled := *cfg.ProjectionClassEmbeddingsInputDim - nTimeIDs*(*cfg.AdditionTimeEmbedDim)
	io := map[string]*tensors.Tensor{
		"in.x_t":      normal(1, b, cfg.InChannels, side, side),
		"in.timestep": tensors.FromValue([]int64{801, 301}),
		"in.time_ids": tensors.FromValue([][]float32{{16, 16, 0, 0, 16, 16}, {24, 16, 2, 1, 16, 16}}),
	}
	cond := func(role string) unet.Conditioning[*tensors.Tensor] {
		return unet.Conditioning[*tensors.Tensor]{Hidden: io["in."+role+".encoder_hidden_states"],
			TextEmbeds: io["in."+role+".text_embeds"], TimeIDs: io["in.time_ids"]}
	}
	predict := func(m *unet.UNet2DConditionModel, ctx *model.Scope, role string) *tensors.Tensor {
		out, err := m.Predict(backend, ctx, io["in.x_t"], io["in.timestep"], cond(role))
		require.NoError(t, err)
		return out
	}
	for _, role := range fixtures.LoRALossRoles {
		io["in."+role+".encoder_hidden_states"] = normal(1, b, seq, cross)
		io["in."+role+".text_embeds"] = normal(1, b, pooled)
		io["out."+role+"_pred"] = predict(m, ctx, role) // LoRA disabled
	}
	io["out.target_pred_lora_disabled"] = io["out.target_pred"]
	merged, mctx, err := unet.Load(baseDir)
	require.NoError(t, err)
	require.NoError(t, Merge(mctx, "/", net, w, mult))
	io["out.target_pred"] = predict(merged, mctx, "target")
	require.Greater(t, testutil.RelErr(flat(t, io["out.target_pred"]), flat(t, io["out.target_pred_lora_disabled"])), 1e-3,
		"the LoRA must change the output")

	// Losses and their gradients with respect to the LoRA weights (adapter at mult on the target).
	require.NoError(t, net.SetWeights(ctx, w))
	vars, err := net.Variables(ctx)
	require.NoError(t, err)
	exec := model.MustNewExec(backend, ctx.Store(), func(_ *model.Scope, in []*Node) []*Node {
		x, pos, neu, unc := in[0], in[5], in[6], in[7]
		prev := nn.UseAdapter(x.Graph(), net.Adapter(ctx, "/", Scalar(x.Graph(), dtypes.Float32, mult)))
		target := m.Forward(ctx, x, in[1], condOf(in[2], in[3:5]))
		nn.UseAdapter(x.Graph(), prev)
		diff := MulScalar(Sub(pos, unc), g)
		erase := ReduceAllMean(Square(Sub(target, Sub(neu, diff))))
		enhance := ReduceAllMean(Square(Sub(target, Add(neu, diff))))
		nodes := make([]*Node, len(vars))
		for i, v := range vars {
			nodes[i] = v.NodeValue(x.Graph())
		}
		out := []*Node{erase, enhance}
		out = append(out, Gradient(erase, nodes...)...)
		return append(out, Gradient(enhance, nodes...)...)
	})
	res := exec.MustExec(io["in.x_t"], io["in.timestep"], io["in.target.encoder_hidden_states"], io["in.target.text_embeds"],
		io["in.time_ids"], io["out.positive_pred"], io["out.neutral_pred"], io["out.unconditional_pred"])
	io["out.loss_erase"], io["out.loss_enhance"] = res[0], res[1]
	for k, loss := range []string{"erase", "enhance"} {
		for i, mod := range net.Modules {
			name, err := net.KohyaName(mod, LayoutDiffusers, true)
			require.NoError(t, err)
			base := 2 + k*len(vars) + 2*i
			io["out.grad_"+loss+"."+name+".lora_down.weight"] = res[base]
			io["out.grad_"+loss+"."+name+".lora_up.weight"] = res[base+1]
		}
	}
	require.NoError(t, safetensors.Write(filepath.Join(dir, "io.safetensors"), io, nil))

	cs := map[string]any{
		"kind": "lora_loss", "name": filepath.Base(dir),
		"base_model":     map[string]any{"path": rel},
		"guidance_scale": g,
		"lora":           map[string]any{"rank": rank, "alpha": alpha, "multiplier": mult, "mapping_kohya_to_diffusers": mapping},
	}
	data, err := json.MarshalIndent(cs, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "case.json"), data, 0o644))
}
