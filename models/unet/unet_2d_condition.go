// Package unet ports diffusers' UNet2DConditionModel (models/unets/unet_2d_condition.py and the
// modules it builds, @ 58eb52c0): the denoiser of Stable Diffusion 1.x, 2.x and SDXL, which differ
// only by config.json (see SD15, SD2, SDXLBase).
//
// Each diffusers module is a struct holding static hyperparameters; its Forward takes a context scoped
// to the module's path and declares the weights under their checkpoint names, so the scope path of a
// weight is its diffusers key with "." read as "/" ("down_blocks.0.resnets.1.conv1.weight" ⇄ scope
// down_blocks/0/resnets/1/conv1, variable "weight"). Layouts are PyTorch's: NCHW activations, OIHW
// convs, [out, in] linears.
package unet

import (
	"fmt"
	"path/filepath"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/weights"
)

// UNet2DConditionModel ports diffusers UNet2DConditionModel: conv_in, time_proj + time_embedding
// (+ SDXL add_time_proj + add_embedding), down_blocks, mid_block, up_blocks, conv_norm_out, conv_act,
// conv_out. It holds only the resolved config; the weights live in the context given to Forward.
type UNet2DConditionModel struct {
	Config *Config

	TimeProj      Timesteps
	TimeEmbedding TimestepEmbedding
	AddTimeProj   *Timesteps         // SDXL only
	AddEmbedding  *TimestepEmbedding // SDXL only
	TimeEmbedAct  string             // "" for none

	DownBlocks []DownBlock
	MidBlock   MidBlock // nil when mid_block_type is null
	UpBlocks   []UpBlock
}

// New validates cfg and resolves every block's sizes, as diffusers' constructor does.
func New(cfg *Config) (*UNet2DConditionModel, error) {
	if cfg == nil {
		return nil, fmt.Errorf("unet.New: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	boc := cfg.BlockOutChannels
	m := &UNet2DConditionModel{
		Config:        cfg,
		TimeProj:      Timesteps{NumChannels: boc[0], FlipSinToCos: cfg.FlipSinToCos, DownscaleFreqShift: cfg.FreqShift},
		TimeEmbedding: TimestepEmbedding{TimeEmbedDim: cfg.TimeEmbedDim(), Act: cfg.ActFn, PostAct: deref(cfg.TimestepPostAct)},
		TimeEmbedAct:  deref(cfg.TimeEmbeddingActFn),
		MidBlock:      getMidBlock(cfg),
	}
	if cfg.IsSDXL() {
		m.AddTimeProj = &Timesteps{NumChannels: *cfg.AdditionTimeEmbedDim, FlipSinToCos: cfg.FlipSinToCos, DownscaleFreqShift: cfg.FreqShift}
		m.AddEmbedding = &TimestepEmbedding{TimeEmbedDim: cfg.TimeEmbedDim(), Act: "silu"} // diffusers' default act, not act_fn
	}
	for i := range cfg.DownBlockTypes {
		m.DownBlocks = append(m.DownBlocks, getDownBlock(cfg, i))
	}
	for i := range cfg.UpBlockTypes {
		m.UpBlocks = append(m.UpBlocks, getUpBlock(cfg, i))
	}
	return m, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Forward ports UNet2DConditionModel.forward (eval mode, no masks, no ControlNet residuals) and
// returns the predicted noise (or v). ctx is the UNet's root scope, holding the weights (use the
// ctx returned by Load, which is already Reuse()).
//
// sample: [B, in_channels, H, W]; timestep: [], [1] or [B], any numeric dtype (int64 or float);
// cond: encoder_hidden_states [B, seq, cross_attention_dim] and, for SDXL only, text_embeds and
// time_ids → [B, out_channels, H, W].
//
// Every attn2 goes through nn.CrossAttention with its level's grid, and the sample's H×W is
// reported to nn.CaptureLatentGrid: a caller captures the cross-attention maps of some tokens by
// building Forward between nn.CaptureCrossAttention and its stop.
func (m *UNet2DConditionModel) Forward(ctx *model.Scope, sample, timestep *Node, cond Conditioning[*Node]) *Node {
	return m.forward(ctx, sample, timestep, cond, func(string, *Node) {})
}

// ForwardDebug is Forward that also returns the intermediate activations the fixtures record as
// dbg.*: "time_proj", "time_embedding", "add_time_proj" and "add_embedding" (SDXL), "conv_in",
// "down_blocks.{i}", "mid_block", "up_blocks.{i}".
func (m *UNet2DConditionModel) ForwardDebug(ctx *model.Scope, sample, timestep *Node, cond Conditioning[*Node]) (*Node, map[string]*Node) {
	dbg := map[string]*Node{}
	out := m.forward(ctx, sample, timestep, cond, func(name string, x *Node) { dbg[name] = x })
	return out, dbg
}

func (m *UNet2DConditionModel) forward(ctx *model.Scope, sample, timestep *Node, cond Conditioning[*Node], capture func(string, *Node)) *Node {
	cfg, encoder := m.Config, cond.Hidden
	if sample.Rank() != 4 || sample.Shape().Dim(1) != cfg.InChannels {
		exceptions.Panicf("unet: want sample [B, %d, H, W], got %s", cfg.InChannels, sample.Shape())
	}
	b, dtype := sample.Shape().Dim(0), sample.DType()
	if encoder == nil || encoder.Rank() != 3 || encoder.Shape().Dim(0) != b {
		exceptions.Panicf("unet: want encoder_hidden_states [%d, seq, %d], got %v", b, cfg.CrossAttentionDim.At(0), shapeOf(encoder))
	}
	// An active nn.CaptureCrossAttention reports its maps at the latent resolution.
	nn.CaptureLatentGrid(sample.Graph(), sample.Shape().Dim(2), sample.Shape().Dim(3))
	if cfg.CenterInputSample {
		sample = AddScalar(MulScalar(sample, 2), -1)
	}

	// 1. time
	tEmb := m.TimeProj.Forward(broadcastTimesteps(timestep, b)) // [B, C0] float32
	capture("time_proj", tEmb)
	emb := m.TimeEmbedding.Forward(ctx.At("time_embedding"), ConvertDType(tEmb, dtype)) // [B, T]
	capture("time_embedding", emb)
	if cfg.IsSDXL() {
		emb = Add(emb, m.addEmbedding(ctx, cond, dtype, capture)) // [B, T]
	}
	if m.TimeEmbedAct != "" {
		emb = nn.Activation(m.TimeEmbedAct, emb)
	}

	// 2. pre-process
	k := cfg.ConvInKernel
	x := nn.Conv2D(ctx.At("conv_in"), sample, cfg.BlockOutChannels[0], k, 1, (k-1)/2) // [B, C0, H, W]
	capture("conv_in", x)

	// 3. down
	skips := []*Node{x}
	for i, blk := range m.DownBlocks {
		var res []*Node
		x, res = blk.Forward(ctx.At("down_blocks").At("%d", i), x, emb, encoder) // [B, C_i, H/2^i', W/2^i']
		capture(fmt.Sprintf("down_blocks.%d", i), x)
		skips = append(skips, res...)
	}

	// 4. mid
	if m.MidBlock != nil {
		x = m.MidBlock.Forward(ctx.At("mid_block"), x, emb, encoder) // [B, C_last, h, w]
		capture("mid_block", x)
	}

	// 5. up: each block pops its skips; the upsampler matches the next skip's size (diffusers
	// forwards upsample_size when H, W are not multiples of 2^num_upsamplers; otherwise it is 2x).
	for i, blk := range m.UpBlocks {
		nr := blk.NumResnets()
		if nr > len(skips) {
			exceptions.Panicf("unet: up_blocks.%d needs %d skip states, %d left", i, nr, len(skips))
		}
		res := skips[len(skips)-nr:]
		skips = skips[:len(skips)-nr]
		upH, upW := 2*x.Shape().Dim(2), 2*x.Shape().Dim(3)
		if len(skips) > 0 {
			upH, upW = skips[len(skips)-1].Shape().Dim(2), skips[len(skips)-1].Shape().Dim(3)
		}
		x = blk.Forward(ctx.At("up_blocks").At("%d", i), x, res, emb, encoder, upH, upW)
		capture(fmt.Sprintf("up_blocks.%d", i), x)
	}

	// 6. post-process
	x = nn.GroupNorm(ctx.At("conv_norm_out"), x, cfg.Groups(), cfg.NormEps)
	x = nn.Activation(cfg.ActFn, x) // conv_act
	k = cfg.ConvOutKernel
	return nn.Conv2D(ctx.At("conv_out"), x, cfg.OutChannels, k, 1, (k-1)/2) // [B, out, H, W]
}

// DummyInputs builds the smallest inputs Forward accepts (batch 1, spatial size 2^(levels-1), a
// one-token context and, for SDXL, a split of projection_class_embeddings_input_dim into pooled
// embeds and up to 6 time ids), all float32 zeros.
func (m *UNet2DConditionModel) DummyInputs(g *Graph) (sample, timestep *Node, cond Conditioning[*Node]) {
	cfg := m.Config
	f := cfg.DownsampleFactor()
	sample = Zeros(g, shapes.Make(dtypes.Float32, 1, cfg.InChannels, f, f))                // [1, in, f, f]
	timestep = Zeros(g, shapes.Make(dtypes.Float32, 1))                                    // [1]
	cond.Hidden = Zeros(g, shapes.Make(dtypes.Float32, 1, 1, cfg.CrossAttentionDim.At(0))) // [1, 1, cross]
	if cfg.IsSDXL() {
		p, d := *cfg.ProjectionClassEmbeddingsInputDim, *cfg.AdditionTimeEmbedDim
		k := 6
		for k > 1 && p-k*d < 1 {
			k--
		}
		cond.TextEmbeds = Zeros(g, shapes.Make(dtypes.Float32, 1, p-k*d)) // [1, pooled]
		cond.TimeIDs = Zeros(g, shapes.Make(dtypes.Float32, 1, k))        // [1, k]
	}
	return
}

// Declare builds a minimal forward pass (see DummyInputs) so that weights.Declared lists every weight
// of the model. ctx is the UNet's root scope.
func (m *UNet2DConditionModel) Declare(ctx *model.Scope, g *Graph) {
	sample, t, cond := m.DummyInputs(g)
	m.Forward(ctx, sample, t, cond)
}

// Load reads a diffusers UNet folder (config.json + diffusion_pytorch_model.safetensors,
// model.safetensors, or a sharded index) into a new context, as float32, and returns the model with
// that context in Reuse mode (pass it to Forward). Errors name the files; weights that do not fit
// the config are all listed together. The loading contract is vae's and clip's: Load, LoadVariant,
// Declared, LoadWeights.
func Load(dir string) (*UNet2DConditionModel, *model.Scope, error) {
	return LoadVariant(dir, "", dtypes.Float32)
}

// LoadVariant is Load with a weight-file variant ("fp16" picks diffusion_pytorch_model.fp16.safetensors
// when present) and the dtype floating-point weights are converted to.
func LoadVariant(dir, variant string, dtype dtypes.DType) (*UNet2DConditionModel, *model.Scope, error) {
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, nil, err
	}
	m, err := New(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("unet.Load %s: %w", dir, err)
	}
	files, err := WeightFiles(dir, variant)
	if err != nil {
		return nil, nil, err
	}
	ctx := model.NewStore().RootScope()
	if err := m.LoadWeights(ctx, files, dtype); err != nil {
		return nil, nil, err
	}
	return m, ctx, nil
}

// WeightFiles picks a UNet folder's weight files (weights.FindWeightFiles): variant's when given,
// else the plain files, else the fp16 ones — a UNet is often published in one of them only.
func WeightFiles(dir, variant string) ([]string, error) {
	files, err := weights.FindWeightFiles(dir, variant)
	if err != nil && variant == "" {
		files, err = weights.FindWeightFiles(dir, "fp16")
	}
	if err != nil {
		return nil, fmt.Errorf("unet.Load: %w", err)
	}
	return files, nil
}

// Declared lists the model's weights as diffusers key → shape (float32), from a shape-only build.
func (m *UNet2DConditionModel) Declared() (map[string]shapes.Shape, error) {
	return weights.Declared(m.Declare)
}

// LoadWeights sets the model's weights in ctx (the UNet's root scope) from diffusers-named
// safetensors files, converted to dtype. The variables are frozen (not trainable). Missing,
// unexpected and mis-shaped keys are reported together.
func (m *UNet2DConditionModel) LoadWeights(ctx *model.Scope, files []string, dtype dtypes.DType) error {
	decl, err := m.Declared()
	if err != nil {
		return fmt.Errorf("unet: listing the model's weights: %w", err)
	}
	if err := weights.LoadFiles(ctx, decl, files, weights.LoadOptions{DType: dtype}); err != nil {
		return fmt.Errorf("unet.Load: %w", err)
	}
	return nil
}

// Predict builds and runs one forward pass on backend: the model prediction for sample
// [B, in, H, W], timestep [B] (or scalar) and cond (encoder_hidden_states [B, seq, cross]; text_embeds
// and time_ids for SDXL only). ctx holds the weights (as returned by Load). Graph-building failures come back as
// errors.
func (m *UNet2DConditionModel) Predict(backend compute.Backend, ctx *model.Scope,
	sample, timestep *tensors.Tensor, cond Conditioning[*tensors.Tensor]) (out *tensors.Tensor, err error) {
	inputs := []any{sample, timestep, cond.Hidden}
	if cond.TextEmbeds != nil {
		inputs = append(inputs, cond.TextEmbeds, cond.TimeIDs)
	}
	err = exceptions.TryCatch[error](func() {
		exec := model.MustNewExec(backend, ctx.Store(), func(_ *model.Scope, in []*Node) *Node {
			c := Conditioning[*Node]{Hidden: in[2]}
			if len(in) == 5 {
				c.TextEmbeds, c.TimeIDs = in[3], in[4]
			}
			return m.Forward(ctx, in[0], in[1], c)
		})
		out = exec.MustExec(inputs...)[0]
	})
	if err != nil {
		return nil, fmt.Errorf("unet.Predict: %w", err)
	}
	return out, nil
}
