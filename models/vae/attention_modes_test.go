package vae

import (
	"path/filepath"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/safetensors"
)

// TestParityChunkedAttention runs every vae fixture case's encoder (out.moments) and decoder
// (out.decoded) with the mid-blocks' attention chunked (40 query rows: the tiny VAE's 16×24
// latents are 10 chunks) and compares them with diffusers, as TestParity does (relative L2 < 1e-4).
func TestParityChunkedAttention(t *testing.T) {
	backend := testutil.Backend(t)
	for _, dir := range fixtures.Cases(t, "vae") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			model, ctx, err := Load(dir)
			require.NoError(t, err)
			io, err := safetensors.Open(filepath.Join(dir, "io.safetensors"))
			require.NoError(t, err)
			defer io.Close()
			read := func(name string) ([]float32, []int) {
				vals, dims, err := io.Float32s(name)
				require.NoError(t, err)
				return vals, dims
			}
			image, imageDims := read("in.image")
			latents, latentDims := read("in.latents")
			barriers := 0
			exec, err := gmodel.NewExec(backend, ctx.Store(), func(_ *gmodel.Scope, image, latents *Node) []*Node {
				nn.UseMemoryOptions(image.Graph(), nn.MemoryOptions{Attention: nn.AttentionChunked, AttentionChunk: 40})
				outs := []*Node{model.Encode(ctx, image), model.Decode(ctx, latents)}
				for _, n := range image.Graph().Nodes() {
					if n.Type() == NodeTypeSchedulingBarrier {
						barriers++
					}
				}
				return outs
			})
			require.NoError(t, err)
			got, err := exec.Exec(tensors.FromFlatDataAndDimensions(image, imageDims...), tensors.FromFlatDataAndDimensions(latents, latentDims...))
			require.NoError(t, err)
			require.Positive(t, barriers, "attention is chunked")
			for i, name := range []string{"out.moments", "out.decoded"} {
				want, wantDims := read(name)
				require.True(t, equalInts(got[i].Shape().Dimensions, wantDims), "%s: shape %v, want %v", name, got[i].Shape().Dimensions, wantDims)
				rel := testutil.RelErr(tensors.MustCopyFlatData[float32](got[i]), want)
				t.Logf("%-12s rel L2 %.3g (%d chunk barriers)", name, rel, barriers)
				require.Less(t, rel, 1e-4, name)
			}
		})
	}
}
