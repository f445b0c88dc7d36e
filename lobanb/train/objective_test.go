package train

import (
	"encoding/json"
	"fmt"
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
	gmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/sd"
	"github.com/loba-dev/loba/models/unet"
	"github.com/loba-dev/loba/models/weights"
)

// loraLossCase is what a lora_loss case.json tells beyond its tensors.
type loraLossCase struct {
	BaseModel struct {
		Path string `json:"path"`
	} `json:"base_model"`
	GuidanceScale *float64 `json:"guidance_scale"`
	Lora          struct {
		Multiplier *float64 `json:"multiplier"`
	} `json:"lora"`
}

// TestLoRALossParity: for every lora_loss case, the LoRA loaded through the kohya loader onto the
// case's base UNet, and the erase/enhance losses and every LoRA gradient computed by Loss — the
// graph code the train step runs — match the PyTorch reference.
func TestLoRALossParity(t *testing.T) {
	backend := testutil.Backend(t)
	for _, dir := range fixtures.Cases(t, "lora_loss") {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkLoRALossCase(t, backend, dir) })
	}
}

// checkLoRALossCase runs the lora_loss case in dir through the kohya loader and Loss and compares
// every output of io.safetensors; an io tensor it does not read (except dbg.*) fails the test.
func checkLoRALossCase(t *testing.T, backend compute.Backend, dir string) {
	t.Helper()
	var cs loraLossCase
	data, err := os.ReadFile(filepath.Join(dir, "case.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &cs))
	g, mult := 1.0, 1.0
	if cs.GuidanceScale != nil {
		g = *cs.GuidanceScale
	}
	if cs.Lora.Multiplier != nil {
		mult = *cs.Lora.Multiplier
	}

	root := gmodel.NewStore().RootScope()
	model, err := loadUNetInto(root.At("unet"), filepath.Join(dir, cs.BaseModel.Path))
	require.NoError(t, err)
	decl, err := weights.Declared(model.Declare)
	require.NoError(t, err)
	loaded, err := lora.LoadKohya(filepath.Join(dir, "lora.safetensors"), lora.Base{Component: "unet", Declared: decl})
	require.NoError(t, err)
	require.Len(t, loaded.Networks, 1)
	net := loaded.Networks[0]
	require.NoError(t, net.SetWeights(root, loaded.Weights["unet"]))
	vars, err := net.Variables(root)
	require.NoError(t, err)

	io, err := safetensors.ReadTensors(filepath.Join(dir, "io.safetensors"), 0)
	require.NoError(t, err)
	in, err := fixtures.ResolveLoRALossInputs(io, model.Config.IsSDXL())
	require.NoError(t, err, "lora_loss case %s", dir)
	used := map[string]bool{}
	for _, k := range in.Keys {
		used[k] = true
	}
	b := in.X.Shape().Dim(0)
	signed := func(s float64) *tensors.Tensor {
		v := make([]float32, b)
		for i := range v {
			v[i] = float32(s)
		}
		return tensors.FromValue(v)
	}
	// Exec inputs: x, t, the four hidden states, multiplier, weight, then (text_time) the four
	// text embeds and the time ids.
	args := []any{in.X, in.T}
	for _, role := range fixtures.LoRALossRoles {
		args = append(args, in.Conds[role].Hidden)
	}
	args = append(args, signed(mult), signed(1))
	if in.TimeIDs != nil {
		for _, role := range fixtures.LoRALossRoles {
			args = append(args, in.Conds[role].TextEmbeds)
		}
		args = append(args, in.TimeIDs)
	}

	d := &denoiser{UNet: model, Ctx: root.At("unet")}
	var names []string // output order
	exec, err := gmodel.NewExec(backend, root.Store(), func(ctx *gmodel.Scope, inputs []*Node) []*Node {
		graphCond := func(i int) nodeCond {
			out := nodeCond{Hidden: inputs[2+i]}
			if len(inputs) > 8 {
				out.TextEmbeds, out.TimeIDs = inputs[8+i], inputs[12]
			}
			return out
		}
		batch := stepBatch{X: inputs[0], T: inputs[1],
			Target: graphCond(0), Positive: graphCond(1), Neutral: graphCond(2), Unconditional: graphCond(3),
			Multiplier: inputs[6], Weight: inputs[7]}
		factory := func(m *Node) nn.Adapter { return net.Adapter(root, "/unet", m) }
		var outs []*Node
		names = nil
		for _, action := range []struct {
			name string
			sign float64
		}{{"erase", -g}, {"enhance", g}} {
			batch.SignedGuidance = MulScalar(OnesLike(inputs[7]), action.sign)
			loss, preds := objective(d, batch, factory, lossConfig{})
			nodes := make([]*Node, len(vars))
			for i, v := range vars {
				nodes[i] = v.NodeValue(loss.Graph())
			}
			grads := Gradient(loss, nodes...)
			outs = append(outs, loss)
			names = append(names, "out.loss_"+action.name)
			for i, v := range vars {
				outs = append(outs, grads[i])
				names = append(names, fmt.Sprintf("grad_%s:%d:%s", action.name, i/2, v.Scope()))
			}
			if action.name == "erase" {
				outs = append(outs, preds.Target, preds.Positive, preds.Neutral, preds.Unconditional)
				names = append(names, "out.target_pred", "out.positive_pred", "out.neutral_pred", "out.unconditional_pred")
			}
		}
		return outs
	})
	require.NoError(t, err)
	results, err := exec.Exec(args...)
	require.NoError(t, err)

	// Disabled-adapter prediction (debug aid of the case).
	if ref, ok := io["out.target_pred_lora_disabled"]; ok {
		used["out.target_pred_lora_disabled"] = true
		cond := sd.Conditioning{Hidden: in.Conds["target"].Hidden}
		if in.TimeIDs != nil {
			cond.TextEmbeds, cond.TimeIDs = in.Conds["target"].TextEmbeds, in.TimeIDs
		}
		got, err := model.Predict(backend, root.At("unet"), in.X, in.T, cond)
		require.NoError(t, err)
		require.Less(t, testutil.RelErr(tensors.MustCopyFlatData[float32](got), tensors.MustCopyFlatData[float32](ref)), 1e-4)
	}

	kohya := map[int]string{}
	for i, m := range net.Modules {
		name, err := net.KohyaName(m, loaded.Layout, model.Config.IsSDXL())
		require.NoError(t, err)
		kohya[i] = name
	}
	var allGot, allWant []float32
	for i, name := range names {
		got := tensors.MustCopyFlatData[float32](results[i])
		key := name
		if strings.HasPrefix(name, "grad_") {
			parts := strings.SplitN(name, ":", 3)
			var mod int
			fmt.Sscan(parts[1], &mod)
			half := "lora_down"
			if strings.HasSuffix(parts[2], "lora_up") {
				half = "lora_up"
			}
			key = fmt.Sprintf("out.%s.%s.%s.weight", parts[0], kohya[mod], half)
		}
		ref, ok := io[key]
		require.True(t, ok, "reference %s missing", key)
		used[key] = true
		want := tensors.MustCopyFlatData[float32](ref)
		tol := 1e-4
		if strings.HasPrefix(name, "grad_") {
			tol = 1e-3
			allGot, allWant = append(allGot, got...), append(allWant, want...)
		}
		rel := testutil.RelErr(got, want)
		require.Less(t, rel, tol, "%s: rel err %g", key, rel)
	}
	t.Logf("all gradients concatenated: rel err %.3g", testutil.RelErr(allGot, allWant))
	var unused []string
	for k := range io {
		if !used[k] && !strings.HasPrefix(k, "dbg.") {
			unused = append(unused, k)
		}
	}
	sort.Strings(unused)
	require.Empty(t, unused, "io tensors the test does not check")
}

// TestLoRALossParitySyntheticSDXL runs checkLoRALossCase on an SDXL-shaped lora_loss case written
// in the documented form (in.<role>.encoder_hidden_states, in.<role>.text_embeds, in.time_ids) on
// the public unet/sdxl_tiny, with a negative multiplier and guidance 1.5. Its references are
// computed here without Loss: the UNet forward with the LoRA adapter (target) or without it (the
// other roles), the README's loss formula and its gradient with respect to the LoRA weights.
func TestLoRALossParitySyntheticSDXL(t *testing.T) {
	backend := testutil.Backend(t)
	dir := filepath.Join(t.TempDir(), "sdxl_tiny_synthetic")
	require.NoError(t, os.Mkdir(dir, 0o755))
	writeSyntheticSDXLLoRALossCase(t, backend, dir, 1.5, -0.75)
	checkLoRALossCase(t, backend, dir)
}

// writeSyntheticSDXLLoRALossCase writes case.json, lora.safetensors and io.safetensors of an
// SDXL-shaped lora_loss case into dir (see TestLoRALossParitySyntheticSDXL).
func writeSyntheticSDXLLoRALossCase(t *testing.T, backend compute.Backend, dir string, g, mult float64) {
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
	net, err := lora.Resolve(lora.UNet, decl, lora.Targets{Preset: lora.PresetNone, Rank: 4, Alpha: 2,
		Selectors: []lora.Selector{{Match: "attn"}}})
	require.NoError(t, err)

	rng := rand.New(rand.NewPCG(6002, 1))
	normal := func(std float64, dims ...int) *tensors.Tensor {
		v := make([]float32, shapes.Make(dtypes.Float32, dims...).Size())
		for i := range v {
			v[i] = float32(rng.NormFloat64() * std)
		}
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
	w := map[string]lora.ModuleWeights{}
	for _, mod := range net.Modules {
		w[mod.Path] = lora.ModuleWeights{Down: normal(0.1, mod.DownShape()...), Up: normal(0.05, mod.UpShape()...)}
	}
	require.NoError(t, net.SetWeights(ctx, w))
	require.NoError(t, lora.WriteKohya(filepath.Join(dir, "lora.safetensors"), []*lora.Network{net},
		map[string]map[string]lora.ModuleWeights{lora.UNet: w}, lora.SaveOptions{DType: safetensors.F32, BaseModel: lora.BaseSDXL10}))

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
	for _, r := range fixtures.LoRALossRoles {
		io["in."+r+".encoder_hidden_states"] = normal(1, b, seq, cross)
		io["in."+r+".text_embeds"] = normal(1, b, pooled)
	}

	vars, err := net.Variables(ctx)
	require.NoError(t, err)
	exec, err := gmodel.NewExec(backend, ctx.Store(), func(_ *gmodel.Scope, in []*Node) []*Node {
		x, ts, tid, mulN := in[0], in[1], in[10], in[11]
		fwd := func(i int, adapter nn.Adapter) *Node {
			prev := nn.UseAdapter(x.Graph(), adapter)
			defer nn.UseAdapter(x.Graph(), prev)
			return m.Forward(ctx, x, ts, nodeCond{Hidden: in[2+i], TextEmbeds: in[6+i], TimeIDs: tid})
		}
		target := fwd(0, net.Adapter(ctx, "/", mulN))
		pos, neu, unc, off := fwd(1, nil), fwd(2, nil), fwd(3, nil), fwd(0, nil)
		diff := MulScalar(Sub(pos, unc), g)
		erase := ReduceAllMean(Square(Sub(target, Sub(neu, diff))))
		enhance := ReduceAllMean(Square(Sub(target, Add(neu, diff))))
		nodes := make([]*Node, len(vars))
		for i, v := range vars {
			nodes[i] = v.NodeValue(x.Graph())
		}
		out := []*Node{target, pos, neu, unc, off, erase, enhance}
		out = append(out, Gradient(erase, nodes...)...)
		return append(out, Gradient(enhance, nodes...)...)
	})
	require.NoError(t, err)
	args := []any{io["in.x_t"], io["in.timestep"]}
	for _, suffix := range []string{".encoder_hidden_states", ".text_embeds"} {
		for _, r := range fixtures.LoRALossRoles {
			args = append(args, io["in."+r+suffix])
		}
	}
	args = append(args, io["in.time_ids"], float32(mult))
	res, err := exec.Exec(args...)
	require.NoError(t, err)
	for i, k := range []string{"out.target_pred", "out.positive_pred", "out.neutral_pred", "out.unconditional_pred",
		"out.target_pred_lora_disabled", "out.loss_erase", "out.loss_enhance"} {
		io[k] = res[i]
	}
	require.Greater(t, testutil.RelErr(tensors.MustCopyFlatData[float32](io["out.target_pred"]),
		tensors.MustCopyFlatData[float32](io["out.target_pred_lora_disabled"])), 1e-3, "the LoRA must change the output")
	for k, loss := range []string{"erase", "enhance"} {
		for i, mod := range net.Modules {
			name, err := net.KohyaName(mod, lora.LayoutDiffusers, true)
			require.NoError(t, err)
			base := 7 + k*len(vars) + 2*i
			io["out.grad_"+loss+"."+name+".lora_down.weight"] = res[base]
			io["out.grad_"+loss+"."+name+".lora_up.weight"] = res[base+1]
		}
	}
	require.NoError(t, safetensors.Write(filepath.Join(dir, "io.safetensors"), io, nil))

	cs := map[string]any{
		"kind": "lora_loss", "name": filepath.Base(dir),
		"base_model":     map[string]any{"path": rel},
		"guidance_scale": g,
		"lora":           map[string]any{"rank": 4, "alpha": 2.0, "multiplier": mult},
	}
	data, err := json.MarshalIndent(cs, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "case.json"), data, 0o644))
}

// loadUNetInto reads a UNet folder into ctx (float32), as the pipeline does.
func loadUNetInto(ctx *gmodel.Scope, dir string) (*unet.UNet2DConditionModel, error) {
	cfg, err := unet.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	m, err := unet.New(cfg)
	if err != nil {
		return nil, err
	}
	files, err := weights.FindWeightFiles(dir, "")
	if err != nil {
		return nil, err
	}
	return m, m.LoadWeights(ctx, files, dtypes.Float32)
}
