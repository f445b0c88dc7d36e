package unet

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
)

// benchCase loads the sd15_tiny fixture: the model, its weights and the case's inputs.
func benchCase(b *testing.B) (*UNet2DConditionModel, *model.Scope, []*tensors.Tensor) {
	dir := filepath.Join(fixtures.Root(b), "unet", "sd15_tiny")
	m, ctx, err := Load(dir)
	require.NoError(b, err)
	io := readIO(b, dir)
	return m, ctx, []*tensors.Tensor{io["in.sample"], io["in.timestep"], io["in.encoder_hidden_states"]}
}

// BenchmarkUNetForward times one forward pass of the sd15_tiny UNet (batch 2, 16x16) on simplego.
func BenchmarkUNetForward(b *testing.B) {
	backend := testBackend(b)
	m, ctx, in := benchCase(b)
	exec := model.MustNewExec(backend, ctx.Store(), func(_ *model.Scope, sample, t, enc *Node) *Node {
		return m.Forward(ctx, sample, t, Conditioning[*Node]{Hidden: enc})
	})
	exec.MustExec(in[0], in[1], in[2]) // compile
	b.ResetTimer()
	for range b.N {
		out := exec.MustExec(in[0], in[1], in[2])
		out[0].FinalizeAll()
	}
}

// BenchmarkUNetForwardBackward times the forward pass plus the gradient of mean(out²) with respect to
// every weight (304 tensors) and the input sample, on sd15_tiny with simplego.
func BenchmarkUNetForwardBackward(b *testing.B) {
	backend := testBackend(b)
	m, ctx, in := benchCase(b)
	exec := model.MustNewExec(backend, ctx.Store(), func(_ *model.Scope, sample, t, enc *Node) (*Node, *Node) {
		return forwardBackward(ctx, m, sample, t, enc)
	})
	loss, gsum := exec.MustExec2(in[0], in[1], in[2]) // compile
	b.Logf("loss %v, sum of |grad| %v", loss.Value(), gsum.Value())
	b.ResetTimer()
	for range b.N {
		loss, gsum := exec.MustExec2(in[0], in[1], in[2])
		loss.FinalizeAll()
		gsum.FinalizeAll()
	}
}

// forwardBackward returns mean(unet(sample)²) and the sum of |∂loss/∂p| over every weight and the sample.
func forwardBackward(ctx *model.Scope, m *UNet2DConditionModel, sample, t, enc *Node) (*Node, *Node) {
	g := sample.Graph()
	out := m.Forward(ctx, sample, t, Conditioning[*Node]{Hidden: enc})
	loss := ReduceAllMean(Square(out))
	wrt := []*Node{sample}
	for v := range ctx.IterVariables() {
		wrt = append(wrt, v.NodeValue(g))
	}
	grads := Gradient(loss, wrt...)
	total := ScalarZero(g, dtypes.Float32)
	for _, gr := range grads {
		total = Add(total, ReduceAllSum(Abs(gr)))
	}
	return loss, total
}

// TestGradients checks, on sd15_tiny, that the gradient of mean(out²) builds and runs on simplego,
// is finite and non-zero for every weight, and matches a central finite difference along the
// direction of the gradient itself for the input sample.
func TestGradients(t *testing.T) {
	backend := testBackend(t)
	dir := filepath.Join(fixtures.Root(t), "unet", "sd15_tiny")
	m, ctx, err := Load(dir)
	require.NoError(t, err)
	io := readIO(t, dir)
	sample, ts, enc := io["in.sample"], io["in.timestep"], io["in.encoder_hidden_states"]

	var names []string
	for v := range ctx.IterVariables() {
		names = append(names, v.Path())
	}
	exec := model.MustNewExec(backend, ctx.Store(), func(_ *model.Scope, sample, t, enc *Node) []*Node {
		g := sample.Graph()
		loss := ReduceAllMean(Square(m.Forward(ctx, sample, t, Conditioning[*Node]{Hidden: enc})))
		wrt := []*Node{sample}
		for v := range ctx.IterVariables() {
			wrt = append(wrt, v.NodeValue(g))
		}
		grads := Gradient(loss, wrt...)
		outs := []*Node{loss, grads[0]}
		for _, gr := range grads[1:] {
			outs = append(outs, ReduceAllMax(Abs(gr)))
		}
		return outs
	})
	outs := exec.MustExec(sample, ts, enc)
	for i, name := range names {
		mx := outs[2+i].Value().(float32)
		require.Truef(t, mx > 0 && mx < 1e6, "gradient of %s: max |g| = %v", name, mx)
	}

	// Directional check on the sample: (L(x+εd) - L(x-εd)) / 2ε ≈ <∇L, d>, d = ∇L/|∇L|.
	grad := tensors.MustCopyFlatData[float32](outs[1])
	x := tensors.MustCopyFlatData[float32](sample)
	var norm float64
	for _, v := range grad {
		norm += float64(v) * float64(v)
	}
	norm = math.Sqrt(norm)
	lossAt := func(eps float32) float64 {
		xs := make([]float32, len(x))
		for i := range x {
			xs[i] = x[i] + eps*grad[i]/float32(norm)
		}
		s := tensors.FromFlatDataAndDimensions(xs, sample.Shape().Dimensions...)
		return float64(exec.MustExec(s, ts, enc)[0].Value().(float32))
	}
	const eps = 1e-2
	fd := (lossAt(eps) - lossAt(-eps)) / (2 * eps)
	t.Logf("directional derivative: autodiff %.6g, finite difference %.6g", norm, fd)
	require.InEpsilon(t, norm, fd, 2e-2)
}
