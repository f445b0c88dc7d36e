package sd

// Sampling: ports the denoising loop of diffusers' StableDiffusionPipeline /
// StableDiffusionXLPipeline __call__ (prepare_latents, classifier-free guidance by batching
// [uncond, cond], scheduler.step, vae.decode) with a slider adapter at per-image strengths and the
// delayed start of the Concept Sliders notebooks (adapter at 0 while t > start_noise).

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/schedulers"
	"github.com/loba-dev/loba/models/toyworld"
	"github.com/loba-dev/loba/models/unet"
)

// Defaults of SampleRequest.
const (
	DefaultSampleSteps   = 30
	DefaultGuidanceScale = 7.5
)

// SampleRequest describes a grid of images: one row per prompt, one column per strength.
type SampleRequest struct {
	// Prompts are encoded with Encode, together with NegativePrompt (one call, so long prompts get
	// the same window count). With a text adapter (SetTextAdapter), each image's prompt and negative
	// prompt are encoded at the image's strength. Ignored when Cond is set.
	Prompts []string
	// NegativePrompt is the unconditional prompt of classifier-free guidance ("" by default,
	// encoded as a prompt, not zeros).
	NegativePrompt string
	// Cond and NegativeCond are precomputed conditionings (e.g. after FreeTextEncoders): one row per
	// prompt, and one row. NegativeCond is needed when guidance is on. They are the frozen
	// encodings: with a text adapter set, Strengths must then all be 0 (they cannot be re-encoded).
	Cond, NegativeCond *Conditioning
	// Encode tunes the prompt encoding.
	Encode EncodeOptions

	// Width and Height are the image size in pixels (multiples of the VAE factor times the UNet's
	// downsampling); 0 takes the UNet's sample_size times the VAE factor.
	Width, Height int
	// Steps is the number of denoising steps (default DefaultSampleSteps).
	Steps int
	// GuidanceScale is the CFG scale (0: DefaultGuidanceScale); ≤ 1 runs no unconditional pass,
	// as diffusers.
	GuidanceScale float64
	// Seed seeds the initial latents: prompt i draws its noise from PCG(Seed, i), the same for every
	// strength of its row.
	Seed uint64
	// Sampler is "ddim" or "euler" ("" = Pipeline.Sampler).
	Sampler string

	// Strengths are the adapter multipliers of the columns, given to the UNet adapter (SetAdapter)
	// and the text adapter (SetTextAdapter); one of them is required. Empty gives one column
	// without adapter.
	Strengths []float64
	// StartNoise delays the adapters: they are held at 0 while the timestep t > StartNoise (Concept
	// Sliders: 800 for SD1, 700 for SDXL), the UNet then getting the frozen text encoding. 0 applies
	// them at every step.
	StartNoise float64
	// BatchSize is the number of images per UNet call (0: all at once). The last batch is padded so
	// every call has the same shape.
	BatchSize int
}

// stepKey identifies one compiled denoising-step graph (besides the input shapes).
type stepKey struct {
	sampler    string
	steps      int
	cfg        bool
	adapterGen int
}

// stepEntry is a compiled step graph with the scheduler whose tables it holds.
type stepEntry struct {
	exec  *model.Exec
	sched schedulers.Scheduler
}

// sampleItem is one image of the grid.
type sampleItem struct {
	prompt   int
	strength float64
}

// Sample generates one image per (prompt, strength), prompt-major: image i·len(Strengths)+j is
// prompt i at strength j. Every denoising step of a call runs the same compiled graph (UNet + CFG +
// scheduler step, with the timestep and the strengths as inputs), and the graph is reused by later
// calls with the same sampler, step count, guidance on/off and shapes; the VAE decode is another.
// With a text adapter (SetTextAdapter), the prompts and the negative prompt are also encoded at
// every distinct non-zero strength, in one batch through one more encoding graph (reused per shape).
func (p *Pipeline) Sample(req SampleRequest) ([]image.Image, error) {
	imgs, _, err := p.sample(req)
	return imgs, err
}

// SampleRows is Sample arranged as rows (prompts) of columns (strengths).
func (p *Pipeline) SampleRows(req SampleRequest) ([][]image.Image, error) {
	imgs, cols, err := p.sample(req)
	if err != nil {
		return nil, err
	}
	var rows [][]image.Image
	for i := 0; i < len(imgs); i += cols {
		rows = append(rows, imgs[i:i+cols])
	}
	return rows, nil
}

// SaveGrid samples req and writes the grid (rows = prompts, columns = strengths) as a PNG at path.
func (p *Pipeline) SaveGrid(path string, req SampleRequest) error {
	rows, err := p.SampleRows(req)
	if err != nil {
		return err
	}
	return SaveGrid(path, rows)
}

// sampleDims resolves the request's defaults and checks sizes: latent height and width.
func (p *Pipeline) sampleDims(req *SampleRequest) (h, w int, err error) {
	if p.VAE == nil && !p.ToyLatents() {
		return 0, 0, fmt.Errorf("sd.Sample: the pipeline was loaded without its VAE")
	}
	f := p.LatentScale()
	if req.Width == 0 || req.Height == 0 {
		ss := p.UNet.Config.SampleSize
		sh, sw := ss.At(0), ss.At(0)
		if ss.IsList && len(ss.Values) > 1 {
			sw = ss.Values[1]
		}
		if req.Height == 0 {
			req.Height = sh * f
		}
		if req.Width == 0 {
			req.Width = sw * f
		}
	}
	unetF := p.UNet.Config.DownsampleFactor()
	if req.Width <= 0 || req.Height <= 0 || req.Width%(f*unetF) != 0 || req.Height%(f*unetF) != 0 {
		return 0, 0, fmt.Errorf("sd.Sample: image size %dx%d must be positive multiples of %d (vae factor %d × unet downsampling %d)",
			req.Width, req.Height, f*unetF, f, unetF)
	}
	if req.Steps == 0 {
		req.Steps = DefaultSampleSteps
	}
	if req.Steps < 0 {
		return 0, 0, fmt.Errorf("sd.Sample: Steps %d must be positive", req.Steps)
	}
	if req.GuidanceScale == 0 {
		req.GuidanceScale = DefaultGuidanceScale
	}
	if req.Sampler == "" {
		req.Sampler = p.Sampler
	}
	if req.BatchSize < 0 {
		return 0, 0, fmt.Errorf("sd.Sample: BatchSize %d must be ≥ 0", req.BatchSize)
	}
	return req.Height / f, req.Width / f, nil
}

// sampleConds are a request's conditioning rows, in blocks: block 0 is the frozen encoding (or the
// given conditioning), block b > 0 the encoding with the text adapter at the b-th distinct non-zero
// strength. Block b holds the prompts' rows b·prompts … (b+1)·prompts−1 of cond and the negative
// prompt's row b of neg.
type sampleConds struct {
	cond, neg *Conditioning
	prompts   int
	// block maps a strength to its block; a strength absent (0, no text adapter) is block 0.
	block map[float64]int
}

// rows returns the conditioning of one batch of images: the negative rows (with guidance) then the
// prompt rows, each at its image's strength, or all frozen (block 0) when held.
func (c *sampleConds) rows(group []sampleItem, cfg, held bool) (*Conditioning, error) {
	idx, negIdx := make([]int, len(group)), make([]int, len(group))
	for k, it := range group {
		b := 0
		if !held {
			b = c.block[it.strength]
		}
		idx[k], negIdx[k] = b*c.prompts+it.prompt, b
	}
	rows, err := ConditioningRows(c.cond, idx...) // [B, …]
	if err != nil || !cfg {
		return rows, err
	}
	negRows, err := ConditioningRows(c.neg, negIdx...) // [B, …]
	if err != nil {
		return nil, err
	}
	return ConcatConditionings(negRows, rows) // [2B, …]: uncond first
}

// sampleConditioning returns the conditioning rows of the request at strengths: the frozen
// encoding of the negative prompt and the prompts (or the given conditioning) and, with a text
// adapter, their encodings at each distinct non-zero strength.
func (p *Pipeline) sampleConditioning(req *SampleRequest, cfg bool, strengths []float64) (*sampleConds, error) {
	var adapted []float64 // the distinct non-zero strengths, in order
	if p.graphs.textAdapter != nil {
		for _, s := range strengths {
			if s != 0 && !slices.Contains(adapted, s) {
				adapted = append(adapted, s)
			}
		}
	}
	if req.Cond != nil {
		if len(adapted) > 0 {
			return nil, fmt.Errorf("sd.Sample: a text-encoder adapter is set (SetTextAdapter, UseLoRA) and Strengths has "+
				"non-zero values %v, but the request passes a precomputed Cond, which cannot be re-encoded at those strengths: "+
				"pass Prompts instead, or remove the text adapter (SetTextAdapter(nil))", adapted)
		}
		if cfg && req.NegativeCond == nil {
			return nil, fmt.Errorf("sd.Sample: guidance scale %g needs NegativeCond with Cond", req.GuidanceScale)
		}
		return &sampleConds{cond: req.Cond, neg: req.NegativeCond, prompts: req.Cond.Len()}, nil
	}
	if len(req.Prompts) == 0 {
		return nil, fmt.Errorf("sd.Sample: no prompts")
	}
	texts := append([]string{req.NegativePrompt}, req.Prompts...)
	all, err := p.encode(texts, req.Encode) // [T, …], T = 1 + prompts
	if err != nil {
		return nil, err
	}
	if len(adapted) > 0 {
		// Every text at every non-zero strength, strength-major, in one batch: [len(adapted)·T, …].
		var batch []string
		var mult []float32
		for _, s := range adapted {
			batch = append(batch, texts...)
			for range texts {
				mult = append(mult, float32(s))
			}
		}
		enc, err := p.encodeAt(batch, mult, req.Encode)
		if err != nil {
			return nil, err
		}
		if all, err = ConcatConditionings(all, enc); err != nil { // [(1+len(adapted))·T, …]
			return nil, fmt.Errorf("sd.Sample: %w", err)
		}
	}
	c := &sampleConds{prompts: len(req.Prompts), block: map[float64]int{}}
	var idx, negIdx []int
	for b := range 1 + len(adapted) {
		negIdx = append(negIdx, b*len(texts))
		for i := range req.Prompts {
			idx = append(idx, b*len(texts)+1+i)
		}
		if b > 0 {
			c.block[adapted[b-1]] = b
		}
	}
	if c.cond, err = ConditioningRows(all, idx...); err != nil {
		return nil, err
	}
	if c.neg, err = ConditioningRows(all, negIdx...); err != nil {
		return nil, err
	}
	return c, nil
}

// sample runs the request; it returns the images prompt-major and the number of columns.
func (p *Pipeline) sample(req SampleRequest) ([]image.Image, int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, w, err := p.sampleDims(&req)
	if err != nil {
		return nil, 0, err
	}
	cfg := req.GuidanceScale > 1
	strengths := req.Strengths
	if len(strengths) > 0 && p.graphs.adapter == nil && p.graphs.textAdapter == nil {
		return nil, 0, fmt.Errorf("sd.Sample: Strengths given but no adapter is set (SetAdapter, SetTextAdapter or UseLoRA)")
	}
	for j, s := range strengths {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return nil, 0, fmt.Errorf("sd.Sample: Strengths[%d] is %g, want a finite value", j, s)
		}
	}
	if len(strengths) == 0 {
		strengths = []float64{0}
	}
	conds, err := p.sampleConditioning(&req, cfg, strengths)
	if err != nil {
		return nil, 0, err
	}
	if err := p.checkConditioning(conds.cond, conds.neg, cfg); err != nil {
		return nil, 0, err
	}
	var items []sampleItem
	for i := range conds.prompts {
		for _, s := range strengths {
			items = append(items, sampleItem{prompt: i, strength: s})
		}
	}
	entry, err := p.stepEntry(stepKey{sampler: req.Sampler, steps: req.Steps, cfg: cfg, adapterGen: p.graphs.adapterGen})
	if err != nil {
		return nil, 0, err
	}
	c := p.UNet.Config.InChannels
	noise := make([][]float32, conds.prompts)
	sigma := entry.sched.InitNoiseSigma()
	for i := range noise {
		rng := rand.New(rand.NewPCG(req.Seed, uint64(i)))
		noise[i] = make([]float32, c*h*w)
		for k := range noise[i] {
			noise[i][k] = float32(rng.NormFloat64()) * sigma // randn · init_noise_sigma
		}
	}
	batch := req.BatchSize
	if batch == 0 || batch > len(items) {
		batch = len(items)
	}
	var images []image.Image
	for start := 0; start < len(items); start += batch {
		group := make([]sampleItem, batch)
		for k := range group {
			group[k] = items[min(start+k, len(items)-1)] // the last batch repeats its last image
		}
		imgs, err := p.sampleGroup(entry, &req, group, noise, conds, cfg, [2]int{h, w})
		if err != nil {
			return nil, 0, err
		}
		images = append(images, imgs[:min(batch, len(items)-start)]...)
	}
	return images, len(strengths), nil
}

// checkConditioning verifies the conditionings against the UNet.
func (p *Pipeline) checkConditioning(cond, neg *Conditioning, cfg bool) error {
	check := func(name string, c *Conditioning) error {
		hs := c.Hidden.Shape()
		if hs.DType != dtypes.Float32 || hs.Rank() != 3 || hs.Dim(2) != p.UNet.Config.CrossAttentionDim.At(0) {
			return fmt.Errorf("sd.Sample: %s hidden states %s: want float32 [N, S, %d]", name, hs, p.UNet.Config.CrossAttentionDim.At(0))
		}
		if (c.TextEmbeds != nil) != (p.Kind == KindSDXL) {
			return fmt.Errorf("sd.Sample: %s: TextEmbeds must be set for SDXL and only for SDXL (pipeline kind %s)", name, p.Kind)
		}
		return nil
	}
	if err := check("Cond", cond); err != nil {
		return err
	}
	if cfg {
		if err := check("NegativeCond", neg); err != nil {
			return err
		}
		if neg.Hidden.Shape().Dim(1) != cond.Hidden.Shape().Dim(1) {
			return fmt.Errorf("sd.Sample: NegativeCond has sequence length %d and Cond %d (encode them in one call)",
				neg.Hidden.Shape().Dim(1), cond.Hidden.Shape().Dim(1))
		}
	}
	return nil
}

// stepEntry returns the compiled step graph for key, building it on first use.
func (p *Pipeline) stepEntry(key stepKey) (*stepEntry, error) {
	if e := p.graphs.step[key]; e != nil {
		return e, nil
	}
	sched, err := p.NewScheduler(key.sampler)
	if err != nil {
		return nil, fmt.Errorf("sd.Sample: %w", err)
	}
	if err := sched.SetTimesteps(key.steps); err != nil {
		return nil, fmt.Errorf("sd.Sample: %w", err)
	}
	exec, err := model.NewExec(p.Backend, p.Ctx.Store(), p.stepGraphFn(sched, key.cfg, p.graphs.adapter))
	if err != nil {
		return nil, fmt.Errorf("sd.Sample: %w", err)
	}
	e := &stepEntry{exec: exec, sched: sched}
	p.graphs.step[key] = e
	return e, nil
}

// stepGraphFn builds one denoising step. Inputs: x [B, C, h, w] float32, t [] float32, multiplier
// [B] float32, guidance [] float32, hidden [B', S, D] float32 (B' = 2B with guidance: uncond rows
// first), and for SDXL pooled [B', P] and time ids [B', 6]. Output: the next x.
func (p *Pipeline) stepGraphFn(sched schedulers.Scheduler, cfg bool, adapter AdapterFactory) func(*model.Scope, []*Node) *Node {
	return func(ctx *model.Scope, in []*Node) *Node {
		p.graphs.stats.StepGraphs++
		x, t, mult, guidance, hidden := in[0], in[1], in[2], in[3], in[4]
		g := x.Graph()
		n := x.Shape().Dim(0)
		xin := x
		if cfg {
			xin = Concatenate([]*Node{x, x}, 0) // [2B, C, h, w]
			mult = Concatenate([]*Node{mult, mult}, 0)
		}
		xin = sched.ScaleModelInputGraph(xin, t)
		cond := unet.Conditioning[*Node]{Hidden: ConvertDType(hidden, p.DType)}
		if p.Kind == KindSDXL {
			cond.TextEmbeds, cond.TimeIDs = ConvertDType(in[5], p.DType), in[6]
		}
		if adapter != nil {
			prev := nn.UseAdapter(g, adapter(mult))
			defer nn.UseAdapter(g, prev)
		}
		eps := p.UNet.Forward(ctx.At("%s", ScopeUNet), ConvertDType(xin, p.DType), t, cond)
		eps = ConvertDType(eps, dtypes.Float32) // [B', C, h, w]
		if cfg {
			u := SliceAxis(eps, 0, AxisRange(0, n))
			c := SliceAxis(eps, 0, AxisRange(n, 2*n))
			eps = Add(u, Mul(guidance, Sub(c, u))) // ε_u + g·(ε_c − ε_u)
		}
		next, _ := sched.StepGraph(eps, t, x, nil, schedulers.StepOptions{})
		return next
	}
}

// sampleGroup denoises and decodes one batch of images.
func (p *Pipeline) sampleGroup(entry *stepEntry, req *SampleRequest, group []sampleItem, noise [][]float32,
	conds *sampleConds, cfg bool, hw [2]int) ([]image.Image, error) {
	b := len(group)
	var x0 []float32
	for _, it := range group {
		x0 = append(x0, noise[it.prompt]...)
	}
	c := p.UNet.Config.InChannels
	x := tensors.FromFlatDataAndDimensions(x0, b, c, hw[0], hw[1])
	rows, err := conds.rows(group, cfg, false) // [B', …]
	if err != nil {
		return nil, err
	}
	heldRows := rows // the conditioning while the adapters are held off (StartNoise)
	if len(conds.block) > 0 && req.StartNoise > 0 {
		if heldRows, err = conds.rows(group, cfg, true); err != nil {
			return nil, err
		}
	}
	args := []any{nil, nil, nil, float32(req.GuidanceScale), nil}
	if p.Kind == KindSDXL {
		args = append(args, nil, TimeIDsTensor(TimeIDs(req.Height, req.Width, 0, 0, req.Height, req.Width), rows.Len()))
	}
	mult := make([]float32, b)
	err = exceptions.TryCatch[error](func() {
		for _, t := range entry.sched.Timesteps() {
			held := req.StartNoise > 0 && t > req.StartNoise
			for k, it := range group {
				mult[k] = float32(it.strength)
				if held {
					mult[k] = 0
				}
			}
			r := rows
			if held {
				r = heldRows
			}
			args[4] = r.Hidden
			if p.Kind == KindSDXL {
				args[5] = r.TextEmbeds
			}
			args[0], args[1], args[2] = x, float32(t), tensors.FromFlatDataAndDimensions(append([]float32(nil), mult...), b)
			outs, err := entry.exec.Exec(args...)
			if err != nil {
				panic(err)
			}
			p.graphs.stats.StepRuns++
			_ = x.FinalizeAll() // free the previous latents' buffers now, not at GC
			x = outs[0]
		}
	})
	if err != nil {
		return nil, fmt.Errorf("sd.Sample: denoising: %w", err)
	}
	defer func() { _ = x.FinalizeAll() }()
	decoded, err := p.decode(x)
	if err != nil {
		return nil, err
	}
	defer func() { _ = decoded.FinalizeAll() }()
	return ToImages(decoded)
}

// decode runs the VAE decoder on latents [B, C, h, w]: latents / scaling_factor + shift_factor
// (or latents · latents_std / scaling_factor + latents_mean when the config has them), then
// vae.decode → [B, 3, H, W] float32 in about [-1, 1].
func (p *Pipeline) decode(latents *tensors.Tensor) (*tensors.Tensor, error) {
	var out *tensors.Tensor
	err := exceptions.TryCatch[error](func() {
		if p.graphs.decode == nil {
			var err error
			p.graphs.decode, err = model.NewExec(p.Backend, p.Ctx.Store(), p.decodeGraph)
			if err != nil {
				panic(err)
			}
		}
		outs, err := p.graphs.decode.Exec(latents)
		if err != nil {
			panic(err)
		}
		p.graphs.stats.DecodeRuns++
		out = outs[0]
	})
	if err != nil {
		return nil, fmt.Errorf("sd.Sample: decoding: %w", err)
	}
	return out, nil
}

// decodeGraph is the VAE decode of latents [B, C, h, w] → images [B, 3, H, W] float32.
func (p *Pipeline) decodeGraph(ctx *model.Scope, latents *Node) *Node {
	p.graphs.stats.DecodeGraphs++
	if p.ToyLatents() {
		return toyworld.DecodeGraph(ConvertDType(latents, dtypes.Float32)) // [B, 3, H, W]
	}
	cfg := p.VAE.Config
	z := ConvertDType(latents, dtypes.Float32)
	c := cfg.LatentChannels
	if len(cfg.LatentsMean) == c && len(cfg.LatentsStd) == c {
		g := z.Graph()
		mean := Reshape(Const(g, toFloat32s(cfg.LatentsMean)), 1, c, 1, 1)
		std := Reshape(Const(g, toFloat32s(cfg.LatentsStd)), 1, c, 1, 1)
		z = Add(DivScalar(Mul(z, std), cfg.ScalingFactor), mean)
	} else {
		z = AddScalar(DivScalar(z, cfg.ScalingFactor), cfg.Shift())
	}
	img := p.VAE.Decode(ctx.At("%s", ScopeVAE), ConvertDType(z, p.VAEDType())) // [B, 3, H, W]
	return ConvertDType(img, dtypes.Float32)
}

func toFloat32s(xs []float64) []float32 {
	out := make([]float32, len(xs))
	for i, x := range xs {
		out[i] = float32(x)
	}
	return out
}
