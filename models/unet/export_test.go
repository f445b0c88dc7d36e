package unet

import (
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"
)

// Test helpers exported to the external test package unet_test (checkpoint_test.go), which
// imports models/lora, itself an importer of unet.

// FixtureInputs reads a unet fixture case's inputs in the order ForwardInputs takes them:
// in.sample, in.timestep, in.encoder_hidden_states and, for a text_time (SDXL) model,
// in.text_embeds and in.time_ids.
func FixtureInputs(t testing.TB, dir string, sdxl bool) []*tensors.Tensor {
	t.Helper()
	io := readIO(t, dir)
	keys := []string{"in.sample", "in.timestep", "in.encoder_hidden_states"}
	if sdxl {
		keys = append(keys, "in.text_embeds", "in.time_ids")
	}
	inputs := make([]*tensors.Tensor, len(keys))
	for i, k := range keys {
		require.Contains(t, io, k)
		inputs[i] = io[k]
	}
	return inputs
}

// ForwardInputs runs m on graph inputs in FixtureInputs' order.
func ForwardInputs(m *UNet2DConditionModel, ctx *model.Scope, in []*Node) *Node {
	cond := Conditioning[*Node]{Hidden: in[2]}
	if len(in) == 5 {
		cond.TextEmbeds, cond.TimeIDs = in[3], in[4]
	}
	return m.Forward(ctx, in[0], in[1], cond)
}

// LossAndGradients returns [loss = mean(out²), ∂loss/∂(every variable under ctx)...,
// ∂loss/∂(every float input in in)...].
func LossAndGradients(ctx *model.Scope, out *Node, in []*Node) []*Node {
	g := out.Graph()
	loss := ReduceAllMean(Square(out))
	var wrt []*Node
	for v := range ctx.IterVariables() {
		wrt = append(wrt, v.NodeValue(g))
	}
	for _, x := range in {
		if x.DType().IsFloat() {
			wrt = append(wrt, x)
		}
	}
	return append([]*Node{loss}, Gradient(loss, wrt...)...)
}
