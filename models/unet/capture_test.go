package unet

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/gradfix/gradcheck"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/nn"
)

// captureModeTol bounds the difference between the maps of two attention modes (float32
// softmax, other summation orders).
const captureModeTol = 1e-6

// tokenMaskOf is a [2, seq] mask: tokens 1 and 2 of sample 0, token 4 of sample 1 (or every token
// set to fill when fill ≥ 0).
func tokenMaskOf(seq int, fill float32) *tensors.Tensor {
	m := make([]float32, 2*seq)
	for i := range m {
		if fill >= 0 {
			m[i] = fill
		}
	}
	if fill < 0 {
		m[1], m[2], m[seq+4] = 1, 1, 1
	}
	return tensors.FromFlatDataAndDimensions(m, 2, seq)
}

// captureRun runs a unet fixture case under o inside a capture of tokenMask: [maps, out] and, with
// grads, the loss mean(maps·out²) and its gradients w.r.t. every weight and float input (the maps
// weight the loss, as U-LOBA's concept mask does).
func captureRun(t *testing.T, dir string, o nn.MemoryOptions, tokenMask *tensors.Tensor, grads bool) []*tensors.Tensor {
	t.Helper()
	m, ctx, err := Load(dir)
	require.NoError(t, err)
	exec, err := model.NewExec(testBackend(t), ctx.Store(), func(_ *model.Scope, in []*Node) []*Node {
		g := in[0].Graph()
		nn.UseMemoryOptions(g, o)
		stop := nn.CaptureCrossAttention(g, Const(g, tokenMask))
		out := ForwardInputs(m, ctx, in)
		maps := stop() // [B, H, W]
		outs := []*Node{maps, out}
		if grads {
			b, h, w := maps.Shape().Dim(0), maps.Shape().Dim(1), maps.Shape().Dim(2)
			loss := ReduceAllMean(Mul(Reshape(maps, b, 1, h, w), Square(out)))
			var wrt []*Node
			for v := range ctx.IterVariables() {
				wrt = append(wrt, v.NodeValue(g))
			}
			outs = append(outs, loss)
			outs = append(outs, Gradient(loss, wrt...)...)
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
	return outs
}

// TestCaptureCrossAttentionModes captures, on every unet fixture case, the maps of some tokens
// with math attention, chunked attention and chunked attention with gradient checkpointing: the
// maps are [B, H, W] at the sample's resolution, in [0, 1], equal across the modes, and so are the
// UNet's output and the gradients of a loss weighted by the maps; the capture leaves the output
// bit-identical. An all-zero mask gives zeros, an all-ones mask ones, and the maps of a mask and of
// its complement sum to one.
func TestCaptureCrossAttentionModes(t *testing.T) {
	for _, dir := range fixtures.Cases(t, "unet") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			sample := readIO(t, dir)["in.sample"].Shape().Dimensions
			seq := readIO(t, dir)["in.encoder_hidden_states"].Shape().Dim(1)
			mask := tokenMaskOf(seq, -1)
			want := captureRun(t, dir, nn.MemoryOptions{Attention: nn.AttentionMath}, mask, true)
			require.Equal(t, []int{sample[0], sample[2], sample[3]}, want[0].Shape().Dimensions, "maps at the latent resolution")
			maps := flat32(t, want[0])
			for i, v := range maps {
				require.True(t, v >= 0 && v <= 1, "map[%d] = %g", i, v)
			}
			plain, _ := attentionModesRun(t, dir, nn.MemoryOptions{Attention: nn.AttentionMath}, false)
			require.Equal(t, flat32(t, plain[0]), flat32(t, want[1]), "the capture does not change the output")
			for name, o := range map[string]nn.MemoryOptions{
				"chunked":               chunkedAttention,
				"chunked+checkpointing": {Attention: nn.AttentionChunked, AttentionChunk: 40, GradientCheckpointing: true},
			} {
				got := captureRun(t, dir, o, mask, true)
				require.Len(t, got, len(want))
				for i, m := range flat32(t, got[0]) {
					require.InDelta(t, maps[i], m, captureModeTol, "%s: map[%d]", name, i)
				}
				for i := 1; i < len(want); i++ {
					require.LessOrEqualf(t, testutil.RelErr(flat32(t, got[i]), flat32(t, want[i])), chunkedGradTol, "%s: output #%d", name, i)
				}
			}
			complement := captureRun(t, dir, nn.MemoryOptions{}, tensors.FromFlatDataAndDimensions(invert(flat32(t, mask)), 2, seq), false)
			for i, m := range flat32(t, complement[0]) {
				require.InDelta(t, 1, maps[i]+m, captureModeTol, "mask + complement: map[%d]", i)
			}
			for _, fill := range []float32{0, 1} {
				got := captureRun(t, dir, nn.MemoryOptions{}, tokenMaskOf(seq, fill), false)
				for i, m := range flat32(t, got[0]) {
					require.InDelta(t, fill, m, captureModeTol, "mask all %g: map[%d]", fill, i)
				}
			}
		})
	}
}

func invert(m []float32) []float32 {
	out := make([]float32, len(m))
	for i, v := range m {
		out[i] = 1 - v
	}
	return out
}

// firstAttn2 is the attn2 of the first transformer block of the fixture's first cross-attention
// down block, and its module path.
func firstAttn2(t *testing.T, m *UNet2DConditionModel) (*Attention, string) {
	t.Helper()
	for i, blk := range m.DownBlocks {
		if ca, ok := blk.(*CrossAttnDownBlock2D); ok {
			return &ca.Attentions[0].Blocks[0].Attn2, fmt.Sprintf("/down_blocks/%d/attentions/0/transformer_blocks/0/attn2", i)
		}
	}
	t.Fatal("no CrossAttnDownBlock2D")
	return nil, ""
}

// TestCaptureMatchesDirect builds, on every unet fixture case, the first attn2 layer alone on a
// 3×5 grid of random hidden states and the case's encoder_hidden_states, captures its map and
// compares it with the attention probabilities computed here from the layer's to_q and to_k
// weights: mean over heads of Σ_{masked j} softmax_j(q·k_j/√Dh).
func TestCaptureMatchesDirect(t *testing.T) {
	for _, dir := range fixtures.Cases(t, "unet") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m, ctx, err := Load(dir)
			require.NoError(t, err)
			attn, scope := firstAttn2(t, m)
			enc := readIO(t, dir)["in.encoder_hidden_states"]
			seq := enc.Shape().Dim(1)
			const gh, gw = 3, 5
			hidden := gradcheck.Random(7, 2, gh*gw, attn.QueryDim)
			mask := tokenMaskOf(seq, -1)
			exec, err := model.NewExec(testBackend(t), ctx.Store(), func(_ *model.Scope, x, e, tm *Node) *Node {
				g := x.Graph()
				stop := nn.CaptureCrossAttention(g, tm)
				layer := ctx
				for _, seg := range strings.Split(scope[1:], "/") {
					layer = layer.At("%s", seg)
				}
				attn.ForwardGrid(layer, ConvertDType(x, e.DType()), e, gh, gw)
				return stop()
			})
			require.NoError(t, err)
			got, err := exec.Exec(hidden, enc, mask)
			require.NoError(t, err)
			require.Equal(t, []int{2, gh, gw}, got[0].Shape().Dimensions)

			weight := func(name string) []float32 {
				v := ctx.Store().GetVariable(model.JoinPath(scope+"/"+name, "weight"))
				require.NotNil(t, v, name)
				val, err := v.Value()
				require.NoError(t, err)
				return flat32(t, val)
			}
			inner := attn.InnerDim()
			q := linearRows(tensors.MustCopyFlatData[float64](hidden), weight("to_q"), attn.QueryDim, inner)
			k := linearRows(float64s(flat32(t, enc)), weight("to_k"), attn.CrossAttentionDim, inner)
			want := attentionMass(q, k, flat32(t, mask), 2, gh*gw, seq, inner, attn.Heads)
			for i, g := range flat32(t, got[0]) {
				require.InDelta(t, want[i], g, 1e-5, "map[%d]", i)
			}
		})
	}
}

func float64s(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// linearRows is x·wᵀ for rows x [n, in] (flattened) and w [out, in] → [n, out].
func linearRows(x []float64, w []float32, in, out int) []float64 {
	n := len(x) / in
	y := make([]float64, n*out)
	for r := range n {
		for o := range out {
			var s float64
			for i := range in {
				s += x[r*in+i] * float64(w[o*in+i])
			}
			y[r*out+o] = s
		}
	}
	return y
}

// attentionMass is mean over heads of Σ_j softmax_j(q·k_j/√Dh)·mask_j for q [B, S, C], k [B, Sk, C]
// (flattened) → [B·S].
func attentionMass(q, k []float64, mask []float32, b, s, sk, c, heads int) []float64 {
	dh := c / heads
	out := make([]float64, b*s)
	for bi := range b {
		for i := range s {
			for h := range heads {
				scores := make([]float64, sk)
				peak := math.Inf(-1)
				for j := range sk {
					var dot float64
					for d := range dh {
						dot += q[(bi*s+i)*c+h*dh+d] * k[(bi*sk+j)*c+h*dh+d]
					}
					scores[j] = dot / math.Sqrt(float64(dh))
					peak = max(peak, scores[j])
				}
				var den, num float64
				for j := range sk {
					e := math.Exp(scores[j] - peak)
					den += e
					num += e * float64(mask[bi*sk+j])
				}
				out[bi*s+i] += num / den / float64(heads)
			}
		}
	}
	return out
}
