package nn

import (
	"math"
	"os"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/gradfix/gradcheck"
	"github.com/loba-dev/loba/internal/testutil"
	lobabackend "github.com/loba-dev/loba/models/backend"
)

// captureTol bounds the difference between captured maps and the float64 computation in the
// tests, and between the attention modes' maps (float32 softmax, other summation orders).
const captureTol = 1e-6

// random32 is gradcheck.Random as float32.
func random32(seed uint64, dims ...int) *tensors.Tensor {
	v := tensors.MustCopyFlatData[float64](gradcheck.Random(seed, dims...))
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return tensors.FromFlatDataAndDimensions(f, dims...)
}

// captureCase is two cross-attention layers of q [B, grid, C] (a 3×4 and a 2×2 grid of queries)
// over k, v [B, Sk, C], captured with tokenMask [B, Sk] at a 6×8 latent grid.
type captureCase struct {
	heads       int
	q1, q2      *tensors.Tensor
	k1, k2, v   *tensors.Tensor
	tokenMask   *tensors.Tensor
	latentH, lw int
}

func newCaptureCase(mask []float32) captureCase {
	return captureCase{heads: 2, q1: random32(1, 2, 12, 8), q2: random32(2, 2, 4, 8), k1: random32(3, 2, 7, 8),
		k2: random32(4, 2, 7, 8), v: random32(5, 2, 7, 8), tokenMask: tensors.FromFlatDataAndDimensions(mask, 2, 7),
		latentH: 6, lw: 8}
}

// run builds the two layers under o inside a capture and returns the layers' outputs and the maps.
func (c captureCase) run(t *testing.T, o MemoryOptions) (out1, out2, maps []float32) {
	t.Helper()
	outs := MustExecOnceN(testBackend(t), func(xs []*Node) []*Node {
		g := xs[0].Graph()
		UseMemoryOptions(g, o)
		stop := CaptureCrossAttention(g, xs[5])
		CaptureLatentGrid(g, c.latentH, c.lw)
		o1 := CrossAttention(xs[0], xs[2], xs[4], c.heads, 3, 4)
		o2 := CrossAttention(xs[1], xs[3], xs[4], c.heads, 2, 2)
		return []*Node{o1, o2, stop()}
	}, c.q1, c.q2, c.k1, c.k2, c.v, c.tokenMask)
	return flat32(outs[0]), flat32(outs[1]), flat32(outs[2])
}

func flat32(x *tensors.Tensor) []float32 { return tensors.MustCopyFlatData[float32](x) }

// directMass is the masked probability mass of one layer computed here in float64:
// mean over heads of Σ_j softmax_j(q·k_j/√Dh)·mask_j, for q [B, S, C], k [B, Sk, C] → [B][S].
func directMass(q, k, mask []float32, b, s, sk, c, heads int) [][]float64 {
	dh := c / heads
	out := make([][]float64, b)
	for bi := range b {
		out[bi] = make([]float64, s)
		for i := range s {
			for h := range heads {
				scores := make([]float64, sk)
				peak := math.Inf(-1)
				for j := range sk {
					var dot float64
					for d := range dh {
						dot += float64(q[(bi*s+i)*c+h*dh+d]) * float64(k[(bi*sk+j)*c+h*dh+d])
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
				out[bi][i] += num / den / float64(heads)
			}
		}
	}
	return out
}

// directMaps is the expected capture of captureCase: each layer's mass on its grid, upsampled to
// the latent grid by torch's nearest rule (src = ⌊dst·in/out⌋), averaged over the two layers.
func (c captureCase) directMaps() []float64 {
	mask := flat32(c.tokenMask)
	layers := []struct {
		m    [][]float64
		h, w int
	}{
		{directMass(flat32(c.q1), flat32(c.k1), mask, 2, 12, 7, 8, c.heads), 3, 4},
		{directMass(flat32(c.q2), flat32(c.k2), mask, 2, 4, 7, 8, c.heads), 2, 2},
	}
	want := make([]float64, 2*c.latentH*c.lw)
	for b := range 2 {
		for y := range c.latentH {
			for x := range c.lw {
				for _, l := range layers {
					sy, sx := y*l.h/c.latentH, x*l.w/c.lw
					want[(b*c.latentH+y)*c.lw+x] += l.m[b][sy*l.w+sx] / 2
				}
			}
		}
	}
	return want
}

// TestCaptureCrossAttention checks the captured maps of two cross-attention layers (3×4 and 2×2
// query grids, a 6×8 latent grid, a mask on some tokens of each sample) against a direct float64
// computation of the attention probabilities, for math and chunked attention and with gradient
// checkpointing; that the capture leaves the layers' outputs bit-identical to
// ScaledDotProductAttention's; and that an all-zero mask gives zeros, an all-ones mask ones.
func TestCaptureCrossAttention(t *testing.T) {
	c := newCaptureCase([]float32{1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0})
	want := c.directMaps()
	plain := MustExecOnceN(testBackend(t), func(q1, q2, k1, k2, v *Node) []*Node {
		return []*Node{ScaledDotProductAttention(q1, k1, v, c.heads, false), ScaledDotProductAttention(q2, k2, v, c.heads, false)}
	}, c.q1, c.q2, c.k1, c.k2, c.v)
	for name, o := range map[string]MemoryOptions{
		"math":          {Attention: AttentionMath},
		"chunked":       {Attention: AttentionChunked, AttentionChunk: 5},
		"checkpointing": {Attention: AttentionChunked, AttentionChunk: 5, GradientCheckpointing: true},
	} {
		t.Run(name, func(t *testing.T) {
			out1, out2, maps := c.run(t, o)
			require.Len(t, maps, len(want))
			for i := range want {
				require.InDelta(t, want[i], maps[i], captureTol, "map[%d]", i)
			}
			if o.Attention == AttentionMath {
				require.Equal(t, flat32(plain[0]), out1, "the capture does not change the output")
				require.Equal(t, flat32(plain[1]), out2)
			}
		})
	}
	for _, fill := range []float32{0, 1} {
		mask := make([]float32, 14)
		for i := range mask {
			mask[i] = fill
		}
		_, _, maps := newCaptureCase(mask).run(t, MemoryOptions{})
		for i, m := range maps {
			require.InDelta(t, fill, m, captureTol, "mask all %g: map[%d]", fill, i)
		}
	}
}

// TestCaptureRecomputedMass checks the fused path's recomputed mass (the fused kernel never
// materialises the probabilities) against the math path's, self- and cross-attention, causal or not.
func TestCaptureRecomputedMass(t *testing.T) {
	for _, c := range []struct {
		sq, sk int
		causal bool
	}{{24, 77, false}, {16, 16, true}, {16, 16, false}} {
		q, k, mask := random32(10, 2, c.sq, 16), random32(11, 2, c.sk, 16), random32(12, 2, c.sk)
		outs := MustExecOnceN(testBackend(t), func(q, k, mask *Node) []*Node {
			mask = Abs(mask)
			_, mass := mathAttention(q, k, k, 4, c.causal, mask)
			return []*Node{mass, recomputedMass(q, k, 4, c.causal, mask)}
		}, q, k, mask)
		require.Equal(t, []int{2, c.sq}, outs[0].Shape().Dimensions)
		rel := testutil.RelErr(flat32(outs[1]), flat32(outs[0]))
		require.Less(t, rel, 1e-6, "Sq=%d Sk=%d causal=%v", c.sq, c.sk, c.causal)
	}
}

// TestCaptureNoGradient checks that the maps carry no gradient and that capturing leaves the
// gradients of a loss on the layer's output unchanged: L = Σ out·R + Σ maps.
func TestCaptureNoGradient(t *testing.T) {
	c := newCaptureCase([]float32{1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0})
	inputs := []*tensors.Tensor{c.q1, c.k1, c.v}
	_, want, _ := gradcheck.Gradients(testBackend(t), func(xs []*Node) *Node {
		return ScaledDotProductAttention(xs[0], xs[1], xs[2], c.heads, false)
	}, inputs, 0)
	mask := tensors.FromFlatDataAndDimensions(flat32(c.tokenMask), 2, 7)
	_, got, _ := gradcheck.Gradients(testBackend(t), func(xs []*Node) *Node {
		g := xs[0].Graph()
		stop := CaptureCrossAttention(g, Const(g, mask))
		out := CrossAttention(xs[0], xs[1], xs[2], c.heads, 3, 4) // [B, 12, 8]
		maps := Reshape(stop(), 2, 12, 1)                         // [B, 12, 1]: the 3×4 grid itself
		return Add(out, ConvertDType(maps, out.DType()))
	}, inputs, 0)
	for i := range want {
		require.Less(t, testutil.RelErr(got[i], want[i]), 1e-12, "gradient w.r.t. input %d", i)
	}
}

// TestCaptureErrors checks the capture's graph-building errors and that CrossAttention without a
// capture is ScaledDotProductAttention, and that stop restores the capture active before.
func TestCaptureErrors(t *testing.T) {
	build := func(f func(g *Graph)) error {
		g := NewGraph(testBackend(t), "capture")
		defer g.Finalize()
		return exceptions.TryCatch[error](func() { f(g) })
	}
	param := func(g *Graph, name string, dims ...int) *Node {
		return Parameter(g, name, shapesMake(dtypes.Float32, dims...))
	}
	err := build(func(g *Graph) { CaptureCrossAttention(g, param(g, "m", 2, 7))() })
	require.ErrorContains(t, err, "no cross-attention layer")
	err = build(func(g *Graph) {
		CaptureCrossAttention(g, param(g, "m", 2, 5))
		CrossAttention(param(g, "q", 2, 12, 8), param(g, "k", 2, 7, 8), param(g, "v", 2, 7, 8), 2, 3, 4)
	})
	require.ErrorContains(t, err, "does not fit")
	err = build(func(g *Graph) {
		CaptureCrossAttention(g, param(g, "m", 2, 7))
		CrossAttention(param(g, "q", 2, 12, 8), param(g, "k", 2, 7, 8), param(g, "v", 2, 7, 8), 2, 4, 4)
	})
	require.ErrorContains(t, err, "4×4 grid")
	err = build(func(g *Graph) {
		CaptureCrossAttention(g, param(g, "m", 2, 7))
		CaptureLatentGrid(g, 8, 8)
		CaptureLatentGrid(g, 4, 4)
	})
	require.ErrorContains(t, err, "one resolution")
	err = build(func(g *Graph) {
		outer := CaptureCrossAttention(g, param(g, "m", 2, 7))
		inner := CaptureCrossAttention(g, param(g, "m2", 2, 7))
		CrossAttention(param(g, "q", 2, 12, 8), param(g, "k", 2, 7, 8), param(g, "v", 2, 7, 8), 2, 3, 4)
		require.Equal(t, []int{2, 3, 4}, inner().Shape().Dimensions, "no latent grid: the largest layer grid")
		CrossAttention(param(g, "q2", 2, 4, 8), param(g, "k2", 2, 7, 8), param(g, "v2", 2, 7, 8), 2, 2, 2)
		require.Equal(t, []int{2, 2, 2}, outer().Shape().Dimensions, "the outer capture saw only the second layer")
	})
	require.NoError(t, err)
}

// directConceptMask is ConceptMask computed here: normalise by the sample's max, 1 where > thr,
// then the mean over the (2r+1)² window clipped to the grid. maps [B][h·w] → [B·h·w].
func directConceptMask(maps []float32, b, h, w int, thr float64, r int) []float64 {
	out := make([]float64, 0, b*h*w)
	for bi := range b {
		m := maps[bi*h*w : (bi+1)*h*w]
		var peak float64
		for _, x := range m {
			peak = max(peak, float64(x))
		}
		bin := make([]float64, h*w)
		for i, x := range m {
			if peak > 0 && float64(x)/peak > thr {
				bin[i] = 1
			}
		}
		for y := range h {
			for x := range w {
				var sum, n float64
				for yy := max(0, y-r); yy <= min(h-1, y+r); yy++ {
					for xx := max(0, x-r); xx <= min(w-1, x+r); xx++ {
						sum += bin[yy*w+xx]
						n++
					}
				}
				out = append(out, sum/n)
			}
		}
	}
	return out
}

// TestConceptMask compares ConceptMask with a direct computation for several thresholds and blur
// radii, on a random map, an all-zero map and a map with one peak; and checks its argument errors.
func TestConceptMask(t *testing.T) {
	const b, h, w = 3, 5, 7
	maps := flat32(random32(20, b, h, w))
	for i := range maps {
		switch {
		case i < h*w:
			maps[i] = float32(math.Abs(float64(maps[i])))
		case i < 2*h*w:
			maps[i] = 0
		default:
			maps[i] = 0
			if i == 2*h*w+2*w+3 {
				maps[i] = 0.25
			}
		}
	}
	in := tensors.FromFlatDataAndDimensions(maps, b, h, w)
	for _, thr := range []float64{0, 0.3, 0.8} {
		for _, r := range []int{0, 1, 2, 9} {
			got := MustExecOnce(testBackend(t), func(m *Node) *Node { return ConceptMask(m, thr, r) }, in)
			require.Equal(t, []int{b, 1, h, w}, got.Shape().Dimensions)
			want := directConceptMask(maps, b, h, w, thr, r)
			for i, g := range flat32(got) {
				require.InDelta(t, want[i], g, 1e-6, "threshold %g blur %d: [%d]", thr, r, i)
			}
		}
	}
	for _, bad := range []struct {
		thr  float64
		blur int
	}{{-0.1, 0}, {1, 0}, {math.NaN(), 0}, {0.5, -1}} {
		err := exceptions.TryCatch[error](func() {
			MustExecOnce(testBackend(t), func(m *Node) *Node { return ConceptMask(m, bad.thr, bad.blur) }, in)
		})
		require.ErrorContains(t, err, "must lie in [0, 1)")
	}
}

// TestCaptureFusedMatchesMath captures, on the backend $LOBA_FUSED_BACKEND names (skipped when
// unset, as TestAttentionFusedMatchesMath), a bfloat16 cross-attention that the fused kernel
// serves (an 8×8 grid of queries over 64 keys, 8 heads of 40): the fused graph holds a fused node
// and its maps, recomputed from q and k, match the math path's.
//
//	LOBA_FUSED_BACKEND=xla:cuda go test ./models/nn/ -run CaptureFusedMatchesMath -v
func TestCaptureFusedMatchesMath(t *testing.T) {
	config := os.Getenv(fusedBackendEnv)
	if config == "" {
		t.Skipf("set %s (e.g. xla:cuda) to compare the fused attention's capture with math's", fusedBackendEnv)
	}
	t.Setenv("GOMLX_BACKEND", config)
	backend, err := lobabackend.New()
	require.NoError(t, err)
	qkv := []*tensors.Tensor{random32(30, 2, 64, 320), random32(31, 2, 64, 320), random32(32, 2, 64, 320)}
	mask := flat32(random32(33, 2, 64))
	for i, v := range mask {
		mask[i] = float32(math.Abs(float64(v)))
	}
	maskT := tensors.FromFlatDataAndDimensions(mask, 2, 64)
	run := func(mode string) ([]float32, int) {
		fused := 0
		exec := MustNewExec(backend, func(q, k, v, m *Node) *Node {
			g := q.Graph()
			UseMemoryOptions(g, MemoryOptions{Attention: mode})
			bf := func(x *Node) *Node { return ConvertDType(x, dtypes.BFloat16) }
			stop := CaptureCrossAttention(g, m)
			CrossAttention(bf(q), bf(k), bf(v), 8, 8, 8)
			maps := stop()
			for _, n := range g.Nodes() {
				if n.Type() == NodeTypeFusedScaledDotProductAttention {
					fused++
				}
			}
			return maps
		})
		return flat32(exec.MustExec(qkv[0], qkv[1], qkv[2], maskT)[0]), fused
	}
	want, _ := run(AttentionMath)
	got, fused := run(AttentionFused)
	require.Equal(t, 1, fused, "fused nodes")
	rel := testutil.RelErr(got, want)
	t.Logf("maps fused vs math rel. err %.2e", rel)
	require.Less(t, rel, 2e-2, "within bfloat16's precision, as TestAttentionFusedMatchesMath")
}
