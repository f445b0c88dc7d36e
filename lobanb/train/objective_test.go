package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/safetensors"
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
	for _, dir := range testutil.Cases(t, "lora_loss") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
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
			model, err := unet.LoadInto(root.At("unet"), filepath.Join(dir, cs.BaseModel.Path), dtypes.Float32)
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
			used := map[string]bool{}
			get := func(key string) *tensors.Tensor {
				used[key] = true
				return io[key]
			}
			x, ts := get("in.x_t"), get("in.timestep")
			require.NotNil(t, x)
			require.NotNil(t, ts)
			conds := map[string]*tensors.Tensor{}
			for _, c := range []string{"target", "positive", "neutral", "unconditional"} {
				conds[c] = get("in." + c)
				require.NotNil(t, conds[c], "in.%s", c)
			}
			// SDXL-shaped cases carry pooled text embeds (per conditioning or shared) and time ids.
			sdxlExtra := func(c string) (te, tid *tensors.Tensor) {
				for _, k := range []string{"in." + c + "_text_embeds", "in." + c + ".text_embeds", "in.text_embeds"} {
					if io[k] != nil {
						te = get(k)
						break
					}
				}
				if io["in.time_ids"] != nil {
					tid = get("in.time_ids")
				}
				return te, tid
			}
			b := x.Shape().Dim(0)
			signed := func(s float64) *tensors.Tensor {
				v := make([]float32, b)
				for i := range v {
					v[i] = float32(s)
				}
				return tensors.FromValue(v)
			}
			multT, ones := signed(mult), signed(1)

			d := &Denoiser{UNet: model, Ctx: root.At("unet")}
			var names []string // output order
			exec, err := gmodel.NewExec(backend, root.Store(), func(ctx *gmodel.Scope, inputs []*Node) []*Node {
				graphCond := func(i int, c string) Cond {
					te, tid := sdxlExtra(c)
					out := Cond{Hidden: inputs[i]}
					if te != nil {
						out.TextEmbeds = Const(inputs[0].Graph(), te)
						out.TimeIDs = Const(inputs[0].Graph(), tid)
					}
					return out
				}
				in := Batch{X: inputs[0], T: inputs[1],
					Target: graphCond(2, "target"), Positive: graphCond(3, "positive"),
					Neutral: graphCond(4, "neutral"), Unconditional: graphCond(5, "unconditional"),
					Multiplier: inputs[6], Weight: inputs[7]}
				factory := func(m *Node) nn.Adapter { return net.Adapter(root, "/unet", m) }
				var outs []*Node
				names = nil
				for _, action := range []struct {
					name string
					sign float64
				}{{"erase", -g}, {"enhance", g}} {
					in.SignedGuidance = MulScalar(OnesLike(inputs[7]), action.sign)
					loss, preds := Loss(d, in, factory, LossConfig{})
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
			results, err := exec.Exec(x, ts, conds["target"], conds["positive"], conds["neutral"], conds["unconditional"], multT, ones)
			require.NoError(t, err)

			// Disabled-adapter prediction (debug aid of the case).
			if ref, ok := io["out.target_pred_lora_disabled"]; ok {
				used["out.target_pred_lora_disabled"] = true
				te, tid := sdxlExtra("target")
				var added *unet.AddedCondTensors
				if te != nil {
					added = &unet.AddedCondTensors{TextEmbeds: te, TimeIDs: tid}
				}
				got, err := model.Predict(backend, root.At("unet"), x, ts, conds["target"], added)
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
		})
	}
}
