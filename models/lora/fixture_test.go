package lora

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

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
// UNet and checks the resolved modules, ranks and alphas, then the UNet with the Adapter at
// multiplier 1 (out.target_pred), 0 (out.target_pred_lora_disabled) and per sample [1, 0, …], and the
// gradients of loss_erase / loss_enhance with respect to the LoRA weights (out.grad_*).
func TestLoRALossFixture(t *testing.T) {
	backend := testutil.Backend(t)
	for _, dir := range testutil.Cases(t, "lora_loss") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var c loraCase
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
				name, err := net.KohyaName(mod, LayoutDiffusers, false)
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

			exec := model.MustNewExec(backend, ctx.Store(), func(_ *model.Scope, x, ts, enc, mult *Node) *Node {
				prev := nn.UseAdapter(x.Graph(), net.Adapter(ctx, "/", mult))
				defer nn.UseAdapter(x.Graph(), prev)
				return m.Forward(ctx, x, ts, enc, nil)
			})
			run := func(mult any) []float32 {
				return flat(t, exec.MustExec(io["in.x_t"], io["in.timestep"], io["in.target"], mult)[0])
			}
			on, off := run(float32(c.LoRA.Multiplier)), run(float32(0))
			wantOn, wantOff := flat(t, io["out.target_pred"]), flat(t, io["out.target_pred_lora_disabled"])
			require.Less(t, testutil.RelErr(on, wantOn), 1e-4, "multiplier %g", c.LoRA.Multiplier)
			require.Less(t, testutil.RelErr(off, wantOff), 1e-4, "multiplier 0")
			require.Greater(t, testutil.RelErr(wantOff, wantOn), 1e-3, "the LoRA must change the output")

			// Per-sample multiplier: even samples on, odd samples off.
			b := io["in.x_t"].Shape().Dim(0)
			per := make([]float32, b)
			for i := range per {
				if i%2 == 0 {
					per[i] = float32(c.LoRA.Multiplier)
				}
			}
			mixed := run(tensors.FromFlatDataAndDimensions(per, b))
			n := len(mixed) / b
			for i := range b {
				want := wantOff
				if i%2 == 0 {
					want = wantOn
				}
				require.Less(t, testutil.RelErr(mixed[i*n:(i+1)*n], want[i*n:(i+1)*n]), 1e-4, "sample %d", i)
			}

			checkGradients(t, c, m, ctx, net, io)
		})
	}
}

// checkGradients checks d loss_{erase,enhance} / d LoRA weights against out.grad_*.
func checkGradients(t *testing.T, c loraCase, m *unet.UNet2DConditionModel, ctx *model.Scope, net *Network, io map[string]*tensors.Tensor) {
	t.Helper()
	vars, err := net.Variables(ctx)
	require.NoError(t, err)
	names := make([]string, len(vars))
	for i, mod := range net.Modules {
		name, err := net.KohyaName(mod, LayoutDiffusers, false)
		require.NoError(t, err)
		names[2*i], names[2*i+1] = name+".lora_down.weight", name+".lora_up.weight"
	}
	g := c.GuidanceScale
	exec := model.MustNewExec(testutil.Backend(t), ctx.Store(), func(_ *model.Scope, in []*Node) []*Node {
		x, ts, enc, pos, neu, unc := in[0], in[1], in[2], in[3], in[4], in[5]
		prev := nn.UseAdapter(x.Graph(), net.Adapter(ctx, "/", nil))
		pred := m.Forward(ctx, x, ts, enc, nil)
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
	res := exec.MustExec(io["in.x_t"], io["in.timestep"], io["in.target"], io["out.positive_pred"], io["out.neutral_pred"], io["out.unconditional_pred"])
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
