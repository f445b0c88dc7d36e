package train

// The memory plan: what one training run needs, from the model's configs alone. The run's own
// graphs (the train step, the partial denoise, a sampling step, the VAE decode) are built
// shape-only — no weight is read or allocated — and measured by graphcost.go; the weights, the
// adapter and the optimizer state are counted from the declared shapes.

import (
	"fmt"
	"path/filepath"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/nn/gemm"
	"github.com/loba-dev/loba/models/schedulers"
	"github.com/loba-dev/loba/models/sd"
	"github.com/loba-dev/loba/models/unet"
	"github.com/loba-dev/loba/models/vae"
	"github.com/loba-dev/loba/models/weights"
)

// modelShapes is what the memory plan reads of a model folder: its configs and parameter counts.
type modelShapes struct {
	kind       string
	unetCfg    *unet.Config
	vaeCfg     *vae.Config // nil for the toy world's latent map
	latentDown int         // pixels per latent
	params     map[string]int64
	textWidth  int // encoder_hidden_states width (cross_attention_dim)
	pooled     int // SDXL's text_embeds width (0 for SD1.x)
	unet       *unet.UNet2DConditionModel
	decl       map[string]shapes.Shape // the UNet's weights
	// textDecl are the text encoders' weights (text_encoder, text_encoder_2), float32 shapes.
	textDecl []map[string]shapes.Shape
}

// readModelShapes builds every component of the folder shape-only (sd.Inspect) and reads the UNet
// and VAE configs.
func readModelShapes(dir string) (*modelShapes, error) {
	rep, err := sd.Inspect(dir, sd.InspectOptions{HeadersOnly: true}) // shapes only: no value is read
	if err != nil {
		return nil, err
	}
	m := &modelShapes{params: map[string]int64{}, latentDown: 8}
	for _, c := range rep.Components {
		m.params[c.Name] = c.Params
	}
	for _, name := range []string{lora.TextEncoder, lora.TextEncoder2} {
		for _, c := range rep.Components {
			if c.Name != name {
				continue
			}
			decl := map[string]shapes.Shape{}
			for key, te := range c.Tensors {
				decl[key] = shapes.Make(dtypes.Float32, te.Shape...)
			}
			m.textDecl = append(m.textDecl, decl)
		}
	}
	if err := m.readConfigs(dir); err != nil {
		return nil, err
	}
	if m.unetCfg == nil {
		return nil, fmt.Errorf("%s: model_index.json has no unet", dir)
	}
	if m.unet, err = unet.New(m.unetCfg); err != nil {
		return nil, err
	}
	if m.decl, err = m.unet.Declared(); err != nil {
		return nil, err
	}
	m.kind, m.textWidth = sd.KindSD15, m.unetCfg.CrossAttentionDim.At(0)
	if m.unetCfg.IsSDXL() {
		m.kind = sd.KindSDXL
		m.pooled = *m.unetCfg.ProjectionClassEmbeddingsInputDim - 6*(*m.unetCfg.AdditionTimeEmbedDim)
	}
	return m, nil
}

// readConfigs reads the UNet and VAE configs: a single file's (from its config folder or the
// built-in configs of its kind), else the folder's.
func (m *modelShapes) readConfigs(dir string) error {
	if sd.IsSingleFile(dir) {
		src, err := sd.ResolveSingleFile(dir, sd.SingleFileOptions{})
		if err != nil {
			return err
		}
		m.unetCfg, m.vaeCfg = src.Layout.UNet, src.Layout.VAE
		m.latentDown = m.vaeCfg.DownsampleFactor()
		return nil
	}
	comps, err := sd.ReadComponents(dir)
	if err != nil {
		return err
	}
	for _, c := range comps {
		switch {
		case c.Name == "unet":
			if m.unetCfg, err = unet.LoadConfig(filepath.Join(c.Dir, "config.json")); err != nil {
				return err
			}
		case c.Name == "vae" && c.Class == sd.ToyLatentMapClass:
			m.latentDown = 4
		case c.Name == "vae":
			if m.vaeCfg, err = vae.LoadConfig(filepath.Join(c.Dir, "config.json")); err != nil {
				return err
			}
			m.latentDown = m.vaeCfg.DownsampleFactor()
		}
	}
	return nil
}

// graphCosts are the measured graphs of one device profile.
type graphCosts struct {
	step    [2]graphCost // the train step without and with gradient checkpointing
	denoise graphCost    // one partial-denoise step (batch 2B: CFG)
	sample  graphCost    // one sampling step with CFG at the sample resolution
	decode  graphCost    // the VAE decode of one sample
}

// shapeGraph builds fn on the shape-only backend with parameters of the given shapes and returns
// its cost. A panic while building (a shape that does not fit) comes back as an error.
func shapeGraph(name string, fn func(*model.Scope, []*Node) []*Node, ctx *model.Scope, in []shapes.Shape) (c graphCost, err error) {
	return shapeGraphFor(false, name, fn, ctx, in)
}

// shapeGraphFor is shapeGraph, laid out as for an accelerator when accelerator is set
// (gemm.BuildAsAccelerator: the GPU profile has no im2col or Go-backend transposes).
func shapeGraphFor(accelerator bool, name string, fn func(*model.Scope, []*Node) []*Node, ctx *model.Scope, in []shapes.Shape) (c graphCost, err error) {
	backend, err := weights.ShapeBackend()
	if err != nil {
		return c, err
	}
	err = exceptions.TryCatch[error](func() {
		g := NewGraph(backend, name)
		if accelerator {
			gemm.BuildAsAccelerator(g)
		}
		params := make([]*Node, len(in))
		for i, s := range in {
			params[i] = Parameter(g, fmt.Sprintf("in%d", i), s)
		}
		alloc := goAlloc
		if accelerator {
			alloc = nil
		}
		c = costOf(fn(ctx, params), alloc)
	})
	if err != nil {
		return c, fmt.Errorf("train: planning %s: %w", name, err)
	}
	return c, nil
}

// condShapes are the graph inputs of one conditioning of batch b (takeCond's order).
func (m *modelShapes) condShapes(b int) []shapes.Shape {
	out := []shapes.Shape{shapes.Make(dtypes.Float32, b, 77, m.textWidth)}
	if m.kind == sd.KindSDXL {
		out = append(out, shapes.Make(dtypes.Float32, b, m.pooled), shapes.Make(dtypes.Float32, b, 6))
	}
	return out
}

// stepShapes are the train step's inputs for b samples at h×w latents (stepGraph.Run's order).
func (m *modelShapes) stepShapes(b, h, w int) []shapes.Shape {
	f32 := func(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }
	in := []shapes.Shape{f32(b, m.unetCfg.InChannels, h, w), shapes.Make(dtypes.Int64, b)}
	for range 4 {
		in = append(in, m.condShapes(b)...)
	}
	return append(in, f32(b), f32(b), f32(b), f32(), shapes.Make(dtypes.Int32), f32())
}

// regionShapes are the §5 inputs r compiles into the train step (regionTensors' shapes, in
// regionInputs' order): W [b, 1, h, w], λ_keep [b], the style flag [b], the concept tokens [b, 77].
func (m *modelShapes) regionShapes(r regionTerms, b, h, w int) []shapes.Shape {
	var in []shapes.Shape
	if r.Masked {
		in = append(in, shapes.Make(dtypes.Float32, b, 1, h, w))
	}
	if r.Preserve {
		in = append(in, shapes.Make(dtypes.Float32, b))
	}
	if r.Style {
		in = append(in, shapes.Make(dtypes.Float32, b))
	}
	if r.Concept {
		in = append(in, shapes.Make(dtypes.Float32, b, 77))
	}
	return in
}

// denoiseShapes are a denoise step's inputs for b samples (denoiseGraph.Run's order, no noise).
func (m *modelShapes) denoiseShapes(b, h, w int) []shapes.Shape {
	in := []shapes.Shape{shapes.Make(dtypes.Float32, b, m.unetCfg.InChannels, h, w), shapes.Make(dtypes.Int64)}
	in = append(in, m.condShapes(b)...)
	in = append(in, m.condShapes(b)...)
	return append(in, shapes.Make(dtypes.Float32, b))
}

// planEnv is a shape-only copy of the run's graph environment: the UNet in dtype, the plan's
// adapter, the memory options; its variables are declared, never allocated (the adapter's and the
// optimizer's are, being small).
func planEnv(p *slider.Preset, m *modelShapes, dtype dtypes.DType, mem nn.MemoryOptions) (graphEnv, []Param, error) {
	q := p
	if p.Network.Targets == lora.PresetNone { // a text-encoder adapter backpropagates through the whole
		c := *p // UNet as a UNet adapter does: its graph is sized with the default UNet targets
		c.Network.Targets = lora.PresetLierLa
		q = &c
	}
	net, err := resolveUNet(q, m.decl)
	if err != nil {
		return graphEnv{}, nil, err
	}
	ctx := model.NewStore().RootScope()
	if err := net.Init(ctx, lora.InitOptions{Seed: 1}); err != nil {
		return graphEnv{}, nil, err
	}
	vars, err := net.Variables(ctx)
	if err != nil {
		return graphEnv{}, nil, err
	}
	var params []Param
	for _, v := range vars {
		if v.Trainable {
			params = append(params, Param{Var: v, LRScale: 1})
		}
	}
	env := graphEnv{ctx: ctx, sdxl: m.kind == sd.KindSDXL, mem: mem,
		d:        &denoiser{UNet: m.unet, Ctx: ctx.At("unet"), DType: dtype},
		adapters: func(mult *Node) nn.Adapter { return net.Adapter(ctx, "/unet", mult) }}
	return env, params, nil
}

// measureGraphs builds the run's graphs shape-only for one device profile (dtype, attention, laid
// out for an accelerator or the Go backend).
func measureGraphs(plan *Plan, m *modelShapes, dtype dtypes.DType, attention string, accel bool) (graphCosts, error) {
	p := plan.Preset
	var gc graphCosts
	e := plan.Groups[0][0]
	b := stepBatchSize(plan)
	h, w := e.Resolution[0]/m.latentDown, e.Resolution[1]/m.latentDown
	sched, err := schedulers.New(mustDDIM())
	if err == nil {
		err = sched.SetTimesteps(p.MaxDenoisingSteps)
	}
	if err != nil {
		return gc, err
	}
	region := regionTermsFor(p, plan.Groups)
	lossCfg := lossConfig{LossType: p.Train.LossType, HuberC: p.Train.HuberC, TargetNorm: p.TargetNorm, Region: region}
	stepIn := append(m.stepShapes(b, h, w), m.regionShapes(region, b, h, w)...)
	for i, ckpt := range []bool{false, true} {
		env, params, err := planEnv(p, m, dtype, nn.MemoryOptions{GradientCheckpointing: ckpt, Attention: attention})
		if err != nil {
			return gc, err
		}
		opt, err := NewOptimizer(plan.Optimizer)
		if err != nil {
			return gc, err
		}
		fn := env.stepFn(lossCfg, params, opt, p.Train.MaxGradNorm)
		if gc.step[i], err = shapeGraphFor(accel, "plan-step", fn, env.ctx, stepIn); err != nil {
			return gc, err
		}
		if !ckpt {
			dfn := env.denoiseFn(sched, 1, false)
			if gc.denoise, err = shapeGraphFor(accel, "plan-denoise", dfn, env.ctx, m.denoiseShapes(b, h, w)); err != nil {
				return gc, err
			}
			if gc.sample, err = shapeGraphFor(accel, "plan-sample", dfn, env.ctx, m.denoiseShapes(1, h, w)); err != nil {
				return gc, err
			}
		}
	}
	if m.vaeCfg != nil {
		if gc.decode, err = decodeCost(m, h, w, accel); err != nil {
			return gc, err
		}
	}
	return gc, nil
}

// decodeCost measures the VAE decode of one h×w latent (float32, as force_upcast keeps it).
func decodeCost(m *modelShapes, h, w int, accel bool) (graphCost, error) {
	v, err := vae.New(m.vaeCfg)
	if err != nil {
		return graphCost{}, err
	}
	ctx := model.NewStore().RootScope()
	fn := func(ctx *model.Scope, in []*Node) []*Node { return []*Node{v.Decode(ctx, in[0])} }
	return shapeGraphFor(accel, "plan-decode", fn, ctx, []shapes.Shape{shapes.Make(dtypes.Float32, 1, m.vaeCfg.LatentChannels, h, w)})
}

// mustDDIM is a DDIM scheduler config (the partial denoise's step costs the same for every class).
func mustDDIM() *schedulers.Config {
	cfg, err := schedulers.DefaultConfig(schedulers.ClassDDIM)
	if err != nil {
		panic(err)
	}
	return cfg
}

// adapterParams counts the preset's adapter's parameters on the model's UNet.
func adapterParams(p *slider.Preset, m *modelShapes) (int64, error) {
	net, err := resolveUNet(p, m.decl)
	if err != nil {
		return 0, err
	}
	nets := []*lora.Network{net}
	if te := p.Network.TextEncoder; te.Enabled() {
		for i, decl := range m.textDecl {
			tn, err := lora.Resolve(sd.TextEncoderScope(i), decl, te.LoRATargets())
			if err != nil {
				return 0, fmt.Errorf("preset %s: network.text_encoder: %w", p.File(), err)
			}
			nets = append(nets, tn)
		}
	}
	var n int64
	for _, net := range nets {
		for _, m := range net.Modules {
			for _, dims := range [][]int{m.DownShape(), m.UpShape()} {
				n += int64(shapes.Make(dtypes.Float32, dims...).Size())
			}
		}
	}
	return n, nil
}

// weightBytes is the memory of the UNet's weights in dtype, each allocated by alloc (nil: exactly).
func (m *modelShapes) weightBytes(dtype dtypes.DType, alloc func(int64) int64) int64 {
	var n int64
	for _, s := range m.decl {
		b := int64(s.Size()) * int64(dtype.Size())
		if alloc != nil {
			b = alloc(b)
		}
		n += b
	}
	return n
}
