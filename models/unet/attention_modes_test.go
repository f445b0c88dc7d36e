package unet

import (
	"path/filepath"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/nn"
)

// chunkedAttention makes every attention call of the tiny fixtures chunked: 40 query rows cut the
// 64–384-token self-attentions and the queries of the cross-attentions into 2–10 chunks.
var chunkedAttention = nn.MemoryOptions{Attention: nn.AttentionChunked, AttentionChunk: 40}

// chunkedGradTol bounds the relative L2 error of the chunked attention's gradients against the
// math attention's (the same rows; only the gemms' summation order may differ).
const chunkedGradTol = 1e-5

// attentionModesRun runs a unet fixture case under o: [out] alone, or with grads
// [out, loss = mean(out²), ∂loss/∂(every weight)..., ∂loss/∂(every float input)...]
// (export_test.go's helpers); and the number of SchedulingBarrier nodes in the graph (chunked
// attention puts one between chunks).
func attentionModesRun(t *testing.T, dir string, o nn.MemoryOptions, grads bool) ([]*tensors.Tensor, int) {
	m, ctx, err := Load(dir)
	require.NoError(t, err)
	barriers := 0
	exec, err := model.NewExec(testBackend(t), ctx.Store(), func(_ *model.Scope, in []*Node) []*Node {
		g := in[0].Graph()
		nn.UseMemoryOptions(g, o)
		outs := []*Node{ForwardInputs(m, ctx, in)}
		if grads {
			outs = append(outs, LossAndGradients(ctx, outs[0], in)...)
		}
		for _, n := range g.Nodes() {
			if n.Type() == NodeTypeSchedulingBarrier {
				barriers++
			}
		}
		return outs
	})
	require.NoError(t, err)
	var args []any
	for _, x := range FixtureInputs(t, dir, m.Config.IsSDXL()) {
		args = append(args, x)
	}
	outs, err := exec.Exec(args...)
	require.NoError(t, err)
	return outs, barriers
}

// TestParityChunkedAttention runs every unet fixture case with chunked attention: out.sample must
// match diffusers as in TestParity (relative L2 < 1e-4).
func TestParityChunkedAttention(t *testing.T) {
	for _, dir := range fixtures.Cases(t, "unet") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			outs, barriers := attentionModesRun(t, dir, chunkedAttention, false)
			require.Positive(t, barriers, "attention is chunked")
			want := readIO(t, dir)["out.sample"]
			require.Equal(t, want.Shape().Dimensions, outs[0].Shape().Dimensions)
			rel := testutil.RelErr(flat32(t, outs[0]), flat32(t, want))
			t.Logf("%d chunk barriers; out.sample rel L2 %.3g", barriers, rel)
			require.Less(t, rel, parityTol, "out.sample")
		})
	}
}

// TestGradChunkedAttention compares, on every unet fixture case, the output, the loss and the
// gradients w.r.t. every weight and float input of the chunked attention — alone and with
// gradient checkpointing — with the math attention's: relative L2 ≤ chunkedGradTol.
func TestGradChunkedAttention(t *testing.T) {
	for _, dir := range fixtures.Cases(t, "unet") {
		want, _ := attentionModesRun(t, dir, nn.MemoryOptions{Attention: nn.AttentionMath}, true)
		for name, o := range map[string]nn.MemoryOptions{
			"chunked":               chunkedAttention,
			"chunked+checkpointing": {Attention: nn.AttentionChunked, AttentionChunk: 40, GradientCheckpointing: true},
		} {
			t.Run(filepath.Base(dir)+"/"+name, func(t *testing.T) {
				got, barriers := attentionModesRun(t, dir, o, true)
				require.Positive(t, barriers, "attention is chunked")
				require.Len(t, got, len(want))
				var worst float64
				for i := range want {
					rel := testutil.RelErr(flat32(t, got[i]), flat32(t, want[i]))
					require.LessOrEqualf(t, rel, chunkedGradTol, "output #%d %s", i, want[i].Shape())
					worst = max(worst, rel)
				}
				t.Logf("%d outputs (out, loss, %d gradients): worst rel L2 %.3g", len(want), len(want)-2, worst)
			})
		}
	}
}
