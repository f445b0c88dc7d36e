package unet_test

import (
	"path/filepath"
	"regexp"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/unet"
	"github.com/loba-dev/loba/models/weights"
)

// checkpointTol is the bound on the relative L2 error between the checkpointed and the
// plain graph's gradients. Recomputation runs the same ops on the same values; what differs is the
// order of one sum: where a block's input also feeds something outside the block (a down block's
// output is the next block's input and a skip), the plain graph adds the outside consumer's
// gradient and the block's consumers' one by one, the checkpointed graph adds the block's total
// (its Checkpoint node's gradient). Float32 rounding of that sum, ~1e-7, then flows upstream.
const checkpointTol = 1e-6

// exactGradients matches the variables whose gradients the backward pass computes before it meets
// any such sum — the up blocks', the mid block's and the output layers', with their LoRA's: those
// must be bit-identical.
var exactGradients = regexp.MustCompile(`^(/lora/unet)?/(up_blocks|mid_block|conv_norm_out|conv_out)/`)

// checkpointCase is a unet fixture case with a LoRA network (preset full: every Linear and Conv,
// so LoCon on the resnets' convs too) of random weights, as the trainer differentiates.
type checkpointCase struct {
	m      *unet.UNet2DConditionModel
	ctx    *model.Scope
	net    *lora.Network
	inputs []*tensors.Tensor // sample, timestep, encoder_hidden_states[, text_embeds, time_ids]
	blocks int               // ResnetBlock2Ds and BasicTransformerBlocks
	vars   []string          // the variables' paths, in unet.LossAndGradients' order
}

func loadCheckpointCase(t *testing.T, dir string) *checkpointCase {
	m, ctx, err := unet.Load(dir)
	require.NoError(t, err)
	decl, err := weights.Declared(m.Declare)
	require.NoError(t, err)
	net, err := lora.Resolve(lora.UNet, decl, lora.Targets{Preset: lora.PresetFull, Rank: 4, Alpha: 2})
	require.NoError(t, err)
	w := map[string]lora.ModuleWeights{}
	for i, mod := range net.Modules {
		seed := 2 * uint64(i)
		w[mod.Path] = lora.ModuleWeights{
			Down: normalTensor(seed, 0.1, mod.DownShape()...),
			Up:   normalTensor(seed+1, 0.05, mod.UpShape()...),
		}
	}
	require.NoError(t, net.SetWeights(ctx, w))
	c := &checkpointCase{m: m, ctx: ctx, net: net, inputs: unet.FixtureInputs(t, dir, m.Config.IsSDXL())}
	blocks := map[string]bool{}
	block := regexp.MustCompile(`^(.*\.)?(resnets|transformer_blocks)\.[0-9]+\.`)
	for key := range decl {
		if b := block.FindString(key); b != "" {
			blocks[b] = true
		}
	}
	c.blocks = len(blocks)
	for v := range ctx.IterVariables() {
		c.vars = append(c.vars, v.Path())
	}
	return c
}

// lossAndGradients builds, with gradient checkpointing on or off, the UNet's output with the LoRA
// adapter and unet.LossAndGradients: [out, loss = mean(out²), ∂loss/∂(UNet and LoRA weights)...,
// ∂loss/∂(float inputs)...]. barriers counts the forward pass's OptimizationBarrier nodes and the
// graph's SchedulingBarrier nodes.
func (c *checkpointCase) lossAndGradients(in []*Node, checkpointing bool, barriers *[2]int) []*Node {
	g := in[0].Graph()
	nn.UseMemoryOptions(g, nn.MemoryOptions{GradientCheckpointing: checkpointing})
	nn.UseAdapter(g, c.net.Adapter(c.ctx, "/", nil))
	out := unet.ForwardInputs(c.m, c.ctx, in)
	barriers[0] = countNodes(g, NodeTypeOptimizationBarrier)
	outs := append([]*Node{out}, unet.LossAndGradients(c.ctx, out, in)...)
	barriers[1] = countNodes(g, NodeTypeSchedulingBarrier)
	return outs
}

// countNodes is the number of nodes of type t in g.
func countNodes(g *Graph, t NodeType) int {
	n := 0
	for _, node := range g.Nodes() {
		if node.Type() == t {
			n++
		}
	}
	return n
}

// run executes lossAndGradients on the case's inputs.
func (c *checkpointCase) run(t *testing.T, checkpointing bool) ([]*tensors.Tensor, [2]int) {
	var barriers [2]int
	exec, err := model.NewExec(testutil.Backend(t), c.ctx.Store(), func(_ *model.Scope, in []*Node) []*Node {
		return c.lossAndGradients(in, checkpointing, &barriers)
	})
	require.NoError(t, err)
	args := make([]any, len(c.inputs))
	for i, x := range c.inputs {
		args[i] = x
	}
	outs, err := exec.Exec(args...)
	require.NoError(t, err)
	return outs, barriers
}

// TestGradientCheckpointingParity runs every unet fixture case with a random LoRA (every Linear and
// Conv) with gradient checkpointing off and on: the output and the loss must be identical, and the
// gradients w.r.t. every UNet and LoRA weight and every float input within checkpointTol relative
// L2 (bit-identical for exactGradients). The checkpointed graph must have one Checkpoint and one
// StopCheckpoint barrier per ResnetBlock2D and BasicTransformerBlock, the plain graph none.
func TestGradientCheckpointingParity(t *testing.T) {
	for _, dir := range fixtures.Cases(t, "unet") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			c := loadCheckpointCase(t, dir)
			plain, plainBarriers := c.run(t, false)
			ckpt, ckptBarriers := c.run(t, true)
			require.Equal(t, [2]int{0, 0}, plainBarriers, "the plain graph has no barrier")
			require.Equal(t, 2*c.blocks, ckptBarriers[0], "one Checkpoint and one StopCheckpoint per block (%d blocks)", c.blocks)
			require.Positive(t, ckptBarriers[1], "the backward pass rematerialises from SchedulingBarriers")
			require.Len(t, ckpt, len(plain))
			require.Equal(t, tensors.MustCopyFlatData[float32](plain[0]), tensors.MustCopyFlatData[float32](ckpt[0]), "forward output")
			require.Equal(t, plain[1].Value(), ckpt[1].Value(), "loss")
			exact, identical, worst := c.compareGradients(t, plain[2:], ckpt[2:])
			require.Positive(t, exact, "gradients checked for bit-identity")
			t.Logf("%d blocks, %d barriers, %d scheduling barriers; %d gradients, %d bit-identical (%d required), worst rel L2 %.3g",
				c.blocks, ckptBarriers[0], ckptBarriers[1], len(plain)-2, identical, exact, worst)
		})
	}
}

// compareGradients checks the checkpointed graph's gradients against the plain graph's (variables
// first, then the float inputs): within checkpointTol, and bit-identical for exactGradients. It
// returns how many exactGradients matched, how many are bit-identical and the worst relative L2.
func (c *checkpointCase) compareGradients(t *testing.T, plain, ckpt []*tensors.Tensor) (exact, identical int, worst float64) {
	for i := range plain {
		name := "a float input"
		if i < len(c.vars) {
			name = c.vars[i]
		}
		want, got := tensors.MustCopyFlatData[float32](plain[i]), tensors.MustCopyFlatData[float32](ckpt[i])
		rel := testutil.RelErr(got, want)
		require.LessOrEqualf(t, rel, checkpointTol, "gradient of %s", name)
		if exactGradients.MatchString(name) {
			require.Equalf(t, want, got, "gradient of %s", name)
			exact++
		}
		worst = max(worst, rel)
		if rel == 0 {
			identical++
		}
	}
	return exact, identical, worst
}
