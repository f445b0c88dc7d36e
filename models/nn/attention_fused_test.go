package nn

import (
	"fmt"
	"os"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/gradfix/gradcheck"
	"github.com/loba-dev/loba/internal/testutil"
	lobabackend "github.com/loba-dev/loba/models/backend"
)

// fusedBackendEnv names the backend TestAttentionFusedMatchesMath runs on (e.g. "xla:cuda").
const fusedBackendEnv = "LOBA_FUSED_BACKEND"

// TestAttentionFusedMatchesMath compares, on the backend $LOBA_FUSED_BACKEND names (skipped when
// unset: the Go backend has no fused attention, see TestAttentionFusedOnGoBackend), fused attention
// with math in bfloat16 — SD1.5's first-level head layout (8 heads × 40) at 256 tokens, causal or
// not: the gradients w.r.t. q, k, v within bfloat16's precision (∂/∂v = probsᵀ·R checks the
// forward's probabilities), and a fused node in the graph. A cross-attention (Sk = 77) must take the math path without error, float32
// activations must fail with the setting's error.
//
//	LOBA_FUSED_BACKEND=xla:cuda go test ./models/nn/ -run AttentionFusedMatchesMath -v
func TestAttentionFusedMatchesMath(t *testing.T) {
	config := os.Getenv(fusedBackendEnv)
	if config == "" {
		t.Skipf("set %s (e.g. xla:cuda) to compare fused attention with math on that backend", fusedBackendEnv)
	}
	t.Setenv("GOMLX_BACKEND", config)
	backend, err := lobabackend.New()
	require.NoError(t, err)
	require.True(t, backend.Capabilities().Operations[compute.OpTypeFusedScaledDotProductAttention], "%s has no fused attention", backend.Description())
	for _, c := range []struct {
		sk        int
		causal    bool
		wantFused int
	}{{256, false, 1}, {256, true, 1}, {77, false, 0}} {
		t.Run(fmt.Sprintf("Sk=%d/causal=%v", c.sk, c.causal), func(t *testing.T) {
			qkv := []*tensors.Tensor{gradcheck.Random(90, 2, 256, 320), gradcheck.Random(91, 2, c.sk, 320), gradcheck.Random(92, 2, c.sk, 320)}
			run := func(mode string) ([][]float64, map[NodeType]int) {
				_, grads, ops := gradcheck.Gradients(backend, func(xs []*Node) *Node {
					UseMemoryOptions(xs[0].Graph(), MemoryOptions{Attention: mode})
					bf := func(x *Node) *Node { return ConvertDType(x, dtypes.BFloat16) }
					return ConvertDType(ScaledDotProductAttention(bf(xs[0]), bf(xs[1]), bf(xs[2]), 8, c.causal), dtypes.Float64)
				}, qkv, 0)
				return grads, ops
			}
			want, _ := run(AttentionMath)
			got, ops := run(AttentionFused)
			require.Equal(t, c.wantFused, ops[NodeTypeFusedScaledDotProductAttention], "fused nodes")
			for i, name := range []string{"q", "k", "v"} {
				rel := testutil.RelErr(got[i], want[i])
				t.Logf("∂/∂%s fused vs math rel. err %.2e", name, rel)
				require.Less(t, rel, 2e-2, "gradient w.r.t. %s", name)
			}
		})
	}
	err = exceptions.TryCatch[error](func() {
		MustExecOnce(backend, func(q *Node) *Node {
			UseMemoryOptions(q.Graph(), MemoryOptions{Attention: AttentionFused})
			return ScaledDotProductAttention(q, q, q, 8, false)
		}, gradcheck.Random(93, 2, 64, 320))
	})
	require.ErrorContains(t, err, "float16 or bfloat16")
}
