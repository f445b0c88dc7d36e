package weights

import (
	"fmt"
	"sort"
	"strings"
)

// LDM/SGM single-file → diffusers key tables. They port the renames of diffusers'
// loaders/single_file_utils.py (convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint,
// convert_ldm_clip_checkpoint, convert_open_clip_checkpoint), but are generated in loops from the
// layout's config values, so every key is known before a file is opened:
//
//	input_blocks.{i}.0 = down_blocks.b.resnets.l, input_blocks.{i}.1 = down_blocks.b.attentions.l,
//	    with i = 1 + Σ_{b'<b} (layers_per_block[b']+1) + l; input_blocks.{i}.0.op = downsamplers.0.conv
//	middle_block.{0,1,2} = mid_block.{resnets.0, attentions.0, resnets.1}
//	output_blocks.{j}.0 = up_blocks.b.resnets.l, output_blocks.{j}.1 = up_blocks.b.attentions.l,
//	    output_blocks.{j of the last l}.{2 with attentions, else 1}.conv = up_blocks.b.upsamplers.0.conv
//	resnets: in_layers.0/2 = norm1/conv1, emb_layers.1 = time_emb_proj, out_layers.0/3 = norm2/conv2,
//	    skip_connection = conv_shortcut; attentions keep their names.

// SingleFileOp is the tensor operation from a single-file tensor to its diffusers tensor.
type SingleFileOp int

const (
	// OpCopy: same tensor, renamed.
	OpCopy SingleFileOp = iota
	// OpSqueeze1x1: a 1×1 conv kernel [O, I, 1, 1] used as a Linear weight [O, I] (VAE mid-block
	// attention q/k/v/proj_out). The data is unchanged; only the shape drops the two 1s.
	OpSqueeze1x1
	// OpTranspose: a 2-D matrix transposed (OpenCLIP text_projection [width, proj] is used as
	// x @ P; the Linear text_projection.weight is [proj, width] = Pᵀ).
	OpTranspose
	// OpSplitQKV: rows [Part·n/3, (Part+1)·n/3) of a fused OpenCLIP attn.in_proj_weight [3n, n] or
	// in_proj_bias [3n]; Part 0 = q_proj, 1 = k_proj, 2 = v_proj.
	OpSplitQKV
)

func (o SingleFileOp) String() string {
	switch o {
	case OpCopy:
		return "copy"
	case OpSqueeze1x1:
		return "squeeze_1x1"
	case OpTranspose:
		return "transpose"
	case OpSplitQKV:
		return "split_qkv"
	}
	return fmt.Sprintf("SingleFileOp(%d)", int(o))
}

// SingleFileKey is one row of a single-file table: the single-file tensor From becomes, after Op,
// the tensor To of the diffusers component Component. A fused tensor has several rows (one per
// OpSplitQKV part).
type SingleFileKey struct {
	From      string // key in the single file, e.g. "model.diffusion_model.input_blocks.1.0.in_layers.0.weight"
	Component string // "unet", "vae", "text_encoder" or "text_encoder_2"
	To        string // diffusers/transformers key inside the component, e.g. "down_blocks.0.resnets.0.norm1.weight"
	Op        SingleFileOp
	Part      int // OpSplitQKV only: 0 = q, 1 = k, 2 = v
}

func (k SingleFileKey) String() string {
	op := k.Op.String()
	if k.Op == OpSplitQKV {
		op = fmt.Sprintf("%s:%d", op, k.Part)
	}
	return fmt.Sprintf("%s -> %s/%s [%s]", k.From, k.Component, k.To, op)
}

// ConvertShape returns the diffusers shape of a single-file tensor of shape from, or an error when
// the shape does not fit the operation.
func (k SingleFileKey) ConvertShape(from []int) ([]int, error) {
	switch k.Op {
	case OpCopy:
		return append([]int(nil), from...), nil
	case OpSqueeze1x1:
		if len(from) != 4 || from[2] != 1 || from[3] != 1 {
			return nil, fmt.Errorf("weights: %s: want a [O, I, 1, 1] kernel, got %v", k.From, from)
		}
		return []int{from[0], from[1]}, nil
	case OpTranspose:
		if len(from) != 2 {
			return nil, fmt.Errorf("weights: %s: want a matrix to transpose, got %v", k.From, from)
		}
		return []int{from[1], from[0]}, nil
	case OpSplitQKV:
		if len(from) < 1 || from[0]%3 != 0 || k.Part < 0 || k.Part > 2 {
			return nil, fmt.Errorf("weights: %s: want a fused [3n, …] q/k/v tensor, got %v (part %d)", k.From, from, k.Part)
		}
		out := append([]int(nil), from...)
		out[0] /= 3
		return out, nil
	}
	return nil, fmt.Errorf("weights: %s: unknown operation %v", k.From, k.Op)
}

// ConvertSingleFileTensor applies k.Op to a row-major tensor (any element type: float32, raw F16
// bits, …) and returns the diffusers data and shape. OpCopy/OpSqueeze1x1 return data itself; the
// other operations return a new slice.
func ConvertSingleFileTensor[T any](k SingleFileKey, data []T, shape []int) ([]T, []int, error) {
	out, err := k.ConvertShape(shape)
	if err != nil {
		return nil, nil, err
	}
	size := 1
	for _, d := range shape {
		size *= d
	}
	if len(data) != size {
		return nil, nil, fmt.Errorf("weights: %s: %d values for shape %v", k.From, len(data), shape)
	}
	switch k.Op {
	case OpTranspose:
		rows, cols := shape[0], shape[1]
		res := make([]T, len(data))
		for r := range rows {
			for c := range cols {
				res[c*rows+r] = data[r*cols+c]
			}
		}
		return res, out, nil
	case OpSplitQKV:
		part := size / 3
		return append([]T(nil), data[k.Part*part:(k.Part+1)*part]...), out, nil
	}
	return data, out, nil
}

// SingleFileIgnore is a single-file key (or key prefix) that is not loaded on purpose.
type SingleFileIgnore struct {
	Key    string
	Prefix bool // Key is a prefix
	Reason string
}

// singleFileSchedule are the 12 DDPM schedule buffers CompVis' LatentDiffusion registers.
var singleFileSchedule = []string{"betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
	"sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
	"sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
	"posterior_mean_coef1", "posterior_mean_coef2"}

// SingleFileTable is the generated key table of one layout.
type SingleFileTable struct {
	Kind   string
	Keys   []SingleFileKey    // in generation order
	Ignore []SingleFileIgnore // keys a file may hold that are skipped, with the reason
	byFrom map[string][]int
	byTo   map[string]int // Component + "/" + To
}

// Lookup returns the rows of a single-file key (nil when the table has none).
func (t *SingleFileTable) Lookup(from string) []SingleFileKey {
	var out []SingleFileKey
	for _, i := range t.byFrom[from] {
		out = append(out, t.Keys[i])
	}
	return out
}

// Target returns the row producing the diffusers key to of component.
func (t *SingleFileTable) Target(component, to string) (SingleFileKey, bool) {
	i, ok := t.byTo[component+"/"+to]
	if !ok {
		return SingleFileKey{}, false
	}
	return t.Keys[i], true
}

// Component returns the rows of one component ("unet", "vae", "text_encoder", "text_encoder_2").
func (t *SingleFileTable) Component(component string) []SingleFileKey {
	var out []SingleFileKey
	for _, k := range t.Keys {
		if k.Component == component {
			out = append(out, k)
		}
	}
	return out
}

// Components lists the components of the table, sorted.
func (t *SingleFileTable) Components() []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range t.Keys {
		if !seen[k.Component] {
			seen[k.Component] = true
			out = append(out, k.Component)
		}
	}
	sort.Strings(out)
	return out
}

// Ignored returns the reason a single-file key is skipped, if it is.
func (t *SingleFileTable) Ignored(key string) (reason string, ok bool) {
	for _, ig := range t.Ignore {
		if key == ig.Key || (ig.Prefix && strings.HasPrefix(key, ig.Key)) {
			return ig.Reason, true
		}
	}
	return "", false
}

// Match compares the keys of a single file with the table: missing lists the table's single-file
// keys the file lacks; unexpected lists the file keys that are neither in the table nor ignored.
// Both are sorted.
func (t *SingleFileTable) Match(fileKeys []string) (missing, unexpected []string) {
	have := make(map[string]bool, len(fileKeys))
	for _, k := range fileKeys {
		have[k] = true
		if _, ok := t.byFrom[k]; !ok {
			if _, ign := t.Ignored(k); !ign {
				unexpected = append(unexpected, k)
			}
		}
	}
	for from := range t.byFrom {
		if !have[from] {
			missing = append(missing, from)
		}
	}
	sort.Strings(missing)
	sort.Strings(unexpected)
	return missing, unexpected
}

// Rows emits the UNet's rows alone (LDM/SAI key under prefix → diffusers key, with its op), for
// callers that map only UNet names (e.g. kohya's SAI-layout LoRA keys).
func (u SingleFileUNet) Rows(prefix string, emit func(from, to string, op SingleFileOp)) error {
	return u.table(prefix, emit)
}

// Table generates the key table of the layout. Every diffusers key is produced exactly once.
func (l *SingleFileLayout) Table() (*SingleFileTable, error) {
	t := &SingleFileTable{Kind: l.Kind, byFrom: map[string][]int{}, byTo: map[string]int{}}
	var dup []string
	add := func(from, comp, to string, op SingleFileOp, part int) {
		if _, ok := t.byTo[comp+"/"+to]; ok {
			dup = append(dup, comp+"/"+to)
			return
		}
		t.byTo[comp+"/"+to] = len(t.Keys)
		t.byFrom[from] = append(t.byFrom[from], len(t.Keys))
		t.Keys = append(t.Keys, SingleFileKey{From: from, Component: comp, To: to, Op: op, Part: part})
	}
	if err := l.UNet.table(l.UNetPrefix, func(from, to string, op SingleFileOp) { add(from, "unet", to, op, 0) }); err != nil {
		return nil, err
	}
	l.VAE.table(l.VAEPrefix, func(from, to string, op SingleFileOp) { add(from, "vae", to, op, 0) })
	for _, te := range l.Text {
		te.table(func(from, to string, op SingleFileOp, part int) { add(from, te.Component, to, op, part) })
	}
	if len(dup) > 0 {
		return nil, fmt.Errorf("weights: single-file table %q produces keys twice: %s", l.Kind, strings.Join(dup, ", "))
	}
	t.Ignore = l.ignored()
	return t, nil
}

// ignored lists the keys of the layout's files that are skipped on purpose.
func (l *SingleFileLayout) ignored() []SingleFileIgnore {
	var out []SingleFileIgnore
	for _, k := range singleFileSchedule {
		out = append(out, SingleFileIgnore{Key: k,
			Reason: "CompVis DDPM schedule buffer [1000]; the scheduler recomputes it from scheduler_config.json"})
	}
	out = append(out,
		SingleFileIgnore{Key: "model_ema.decay", Reason: "EMA bookkeeping scalar, not a weight"},
		SingleFileIgnore{Key: "model_ema.num_updates", Reason: "EMA bookkeeping scalar, not a weight"},
		SingleFileIgnore{Key: "model_ema.", Prefix: true, Reason: "EMA copies of the UNet (v1-5-pruned.safetensors, dots " +
			"removed from the names); the model.diffusion_model.* weights are loaded, as diffusers does without extract_ema"},
		SingleFileIgnore{Key: "denoiser.sigmas", Reason: "SGM DiscreteDenoiser buffer [1000]; the scheduler recomputes the sigmas"},
	)
	for _, te := range l.Text {
		if te.OpenCLIP {
			out = append(out, SingleFileIgnore{Key: te.Prefix + "logit_scale",
				Reason: "open_clip contrastive temperature (scalar), unused for text conditioning"})
			if !te.WithProjection {
				out = append(out, SingleFileIgnore{Key: te.Prefix + "text_projection",
					Reason: "projection unused by a CLIPTextModel without projection"})
			}
		} else {
			out = append(out, SingleFileIgnore{Key: te.Prefix + "text_model.embeddings.position_ids",
				Reason: "int64 arange buffer, persistent only in transformers < 4.31; current CLIP text models do not have it"})
		}
	}
	return out
}

// sfWB adds the .weight and .bias rows of a module.
func sfWB(add func(from, to string, op SingleFileOp), from, to string) {
	add(from+".weight", to+".weight", OpCopy)
	add(from+".bias", to+".bias", OpCopy)
}

// table generates the UNet rows (diffusers UNet2DConditionModel ← LDM openaimodel.UNetModel).
func (u *SingleFileUNet) table(prefix string, add func(from, to string, op SingleFileOp)) error {
	n := len(u.BlockOutChannels)
	if n == 0 || len(u.LayersPerBlock) != n || len(u.TransformerLayersPerBlock) != n ||
		len(u.DownBlockTypes) != n || len(u.UpBlockTypes) != n {
		return fmt.Errorf("weights: single-file UNet layout needs one block_out_channels, layers_per_block, " +
			"transformer_layers_per_block, down and up block type per level")
	}
	a := func(from, to string, op SingleFileOp) { add(prefix+from, to, op) }
	sfWB(a, "time_embed.0", "time_embedding.linear_1")
	sfWB(a, "time_embed.2", "time_embedding.linear_2")
	if u.TextTimeEmbedding {
		sfWB(a, "label_emb.0.0", "add_embedding.linear_1")
		sfWB(a, "label_emb.0.2", "add_embedding.linear_2")
	}
	sfWB(a, "input_blocks.0.0", "conv_in")

	in, ch := 1, u.BlockOutChannels[0] // next input block, channels entering it
	for b := range n {
		out := u.BlockOutChannels[b]
		for l := range u.LayersPerBlock[b] {
			sfUNetResnet(a, fmt.Sprintf("input_blocks.%d.0", in), fmt.Sprintf("down_blocks.%d.resnets.%d", b, l), ch != out)
			if u.DownBlockTypes[b] == "CrossAttnDownBlock2D" {
				sfUNetTransformer(a, fmt.Sprintf("input_blocks.%d.1", in), fmt.Sprintf("down_blocks.%d.attentions.%d", b, l),
					u.TransformerLayersPerBlock[b])
			}
			ch = out
			in++
		}
		if b < n-1 {
			sfWB(a, fmt.Sprintf("input_blocks.%d.0.op", in), fmt.Sprintf("down_blocks.%d.downsamplers.0.conv", b))
			in++
		}
	}

	sfUNetResnet(a, "middle_block.0", "mid_block.resnets.0", false)
	sfUNetTransformer(a, "middle_block.1", "mid_block.attentions.0", u.TransformerLayersPerBlock[n-1])
	sfUNetResnet(a, "middle_block.2", "mid_block.resnets.1", false)

	// Up blocks, as diffusers UNet2DConditionModel/UpBlock2D size them: resnet j of up block i
	// takes (j == 0 ? prev_output : output) + (j == last ? input : output) channels.
	rev := func(i int) int { return n - 1 - i }
	outIdx := 0
	for i := range n {
		output := u.BlockOutChannels[rev(i)]
		prevOutput := u.BlockOutChannels[rev(max(i-1, 0))]
		input := u.BlockOutChannels[rev(min(i+1, n-1))]
		layers := u.LayersPerBlock[rev(i)] + 1
		attn := u.UpBlockTypes[i] == "CrossAttnUpBlock2D"
		for j := range layers {
			resIn, skip := output, output
			if j == 0 {
				resIn = prevOutput
			}
			if j == layers-1 {
				skip = input
			}
			sfUNetResnet(a, fmt.Sprintf("output_blocks.%d.0", outIdx), fmt.Sprintf("up_blocks.%d.resnets.%d", i, j), resIn+skip != output)
			if attn {
				sfUNetTransformer(a, fmt.Sprintf("output_blocks.%d.1", outIdx), fmt.Sprintf("up_blocks.%d.attentions.%d", i, j),
					u.TransformerLayersPerBlock[rev(i)])
			}
			if j == layers-1 && i < n-1 {
				sub := 1
				if attn {
					sub = 2
				}
				sfWB(a, fmt.Sprintf("output_blocks.%d.%d.conv", outIdx, sub), fmt.Sprintf("up_blocks.%d.upsamplers.0.conv", i))
			}
			outIdx++
		}
	}
	sfWB(a, "out.0", "conv_norm_out")
	sfWB(a, "out.2", "conv_out")
	return nil
}

// sfUNetResnet adds the rows of an LDM ResBlock → diffusers ResnetBlock2D.
func sfUNetResnet(a func(from, to string, op SingleFileOp), from, to string, shortcut bool) {
	sfWB(a, from+".in_layers.0", to+".norm1")
	sfWB(a, from+".in_layers.2", to+".conv1")
	sfWB(a, from+".emb_layers.1", to+".time_emb_proj")
	sfWB(a, from+".out_layers.0", to+".norm2")
	sfWB(a, from+".out_layers.3", to+".conv2")
	if shortcut {
		sfWB(a, from+".skip_connection", to+".conv_shortcut")
	}
}

// sfUNetTransformer adds the rows of an LDM SpatialTransformer → diffusers Transformer2DModel (same
// names inside; proj_in/proj_out are 1×1 convs or Linears on both sides alike).
func sfUNetTransformer(a func(from, to string, op SingleFileOp), from, to string, depth int) {
	same := func(name string) { sfWB(a, from+"."+name, to+"."+name) }
	same("norm")
	same("proj_in")
	for d := range depth {
		blk := fmt.Sprintf("transformer_blocks.%d.", d)
		for _, attn := range []string{"attn1", "attn2"} {
			for _, p := range []string{"to_q", "to_k", "to_v"} {
				a(from+"."+blk+attn+"."+p+".weight", to+"."+blk+attn+"."+p+".weight", OpCopy)
			}
			same(blk + attn + ".to_out.0")
		}
		same(blk + "norm1")
		same(blk + "norm2")
		same(blk + "norm3")
		same(blk + "ff.net.0.proj")
		same(blk + "ff.net.2")
	}
	same("proj_out")
}

// table generates the VAE rows (diffusers AutoencoderKL ← LDM AutoencoderKL).
func (v *SingleFileVAE) table(prefix string, add func(from, to string, op SingleFileOp)) {
	a := func(from, to string, op SingleFileOp) { add(prefix+from, to, op) }
	n := len(v.BlockOutChannels)
	mid := func(side string) {
		sfVAEResnet(a, side+".mid.block_1", side+".mid_block.resnets.0", false)
		if v.MidBlockAddAttention {
			f, t := side+".mid.attn_1", side+".mid_block.attentions.0"
			sfWB(a, f+".norm", t+".group_norm")
			for _, p := range [][2]string{{"q", "to_q"}, {"k", "to_k"}, {"v", "to_v"}, {"proj_out", "to_out.0"}} {
				a(f+"."+p[0]+".weight", t+"."+p[1]+".weight", OpSqueeze1x1)
				a(f+"."+p[0]+".bias", t+"."+p[1]+".bias", OpCopy)
			}
		}
		sfVAEResnet(a, side+".mid.block_2", side+".mid_block.resnets.1", false)
	}

	sfWB(a, "encoder.conv_in", "encoder.conv_in")
	ch := v.BlockOutChannels[0]
	for i := range n {
		out := v.BlockOutChannels[i]
		for j := range v.LayersPerBlock {
			sfVAEResnet(a, fmt.Sprintf("encoder.down.%d.block.%d", i, j), fmt.Sprintf("encoder.down_blocks.%d.resnets.%d", i, j), ch != out)
			ch = out
		}
		if i < n-1 {
			sfWB(a, fmt.Sprintf("encoder.down.%d.downsample.conv", i), fmt.Sprintf("encoder.down_blocks.%d.downsamplers.0.conv", i))
		}
	}
	mid("encoder")
	sfWB(a, "encoder.norm_out", "encoder.conv_norm_out")
	sfWB(a, "encoder.conv_out", "encoder.conv_out")
	if v.UseQuantConv {
		sfWB(a, "quant_conv", "quant_conv")
	}
	if v.UsePostQuantConv {
		sfWB(a, "post_quant_conv", "post_quant_conv")
	}

	// The LDM decoder numbers its up levels from the bottom (up.{n-1} runs first); diffusers'
	// up_blocks.0 runs first.
	sfWB(a, "decoder.conv_in", "decoder.conv_in")
	mid("decoder")
	ch = v.BlockOutChannels[n-1]
	for i := range n {
		out := v.BlockOutChannels[n-1-i]
		for j := range v.LayersPerBlock + 1 {
			sfVAEResnet(a, fmt.Sprintf("decoder.up.%d.block.%d", n-1-i, j), fmt.Sprintf("decoder.up_blocks.%d.resnets.%d", i, j), ch != out)
			ch = out
		}
		if i < n-1 {
			sfWB(a, fmt.Sprintf("decoder.up.%d.upsample.conv", n-1-i), fmt.Sprintf("decoder.up_blocks.%d.upsamplers.0.conv", i))
		}
	}
	sfWB(a, "decoder.norm_out", "decoder.conv_norm_out")
	sfWB(a, "decoder.conv_out", "decoder.conv_out")
}

// sfVAEResnet adds the rows of an LDM VAE ResnetBlock → diffusers ResnetBlock2D (no time embedding).
func sfVAEResnet(a func(from, to string, op SingleFileOp), from, to string, shortcut bool) {
	for _, m := range []string{"norm1", "conv1", "norm2", "conv2"} {
		sfWB(a, from+"."+m, to+"."+m)
	}
	if shortcut {
		sfWB(a, from+".nin_shortcut", to+".conv_shortcut")
	}
}

// table generates the rows of one text encoder (transformers CLIPTextModel[WithProjection] keys).
func (te *SingleFileText) table(add func(from, to string, op SingleFileOp, part int)) {
	p := te.Prefix
	if !te.OpenCLIP {
		// transformers naming inside the prefix (convert_ldm_clip_checkpoint strips the prefix).
		same := func(key string) { add(p+key, key, OpCopy, 0) }
		sameWB := func(mod string) { same(mod + ".weight"); same(mod + ".bias") }
		same("text_model.embeddings.token_embedding.weight")
		same("text_model.embeddings.position_embedding.weight")
		for i := range te.NumLayers {
			l := fmt.Sprintf("text_model.encoder.layers.%d.", i)
			for _, m := range []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
				"layer_norm1", "mlp.fc1", "mlp.fc2", "layer_norm2"} {
				sameWB(l + m)
			}
		}
		sameWB("text_model.final_layer_norm")
		if te.WithProjection {
			same("text_projection.weight")
		}
		return
	}
	// open_clip naming (convert_open_clip_checkpoint).
	wbT := func(from, to string) {
		add(p+from+".weight", to+".weight", OpCopy, 0)
		add(p+from+".bias", to+".bias", OpCopy, 0)
	}
	add(p+"token_embedding.weight", "text_model.embeddings.token_embedding.weight", OpCopy, 0)
	add(p+"positional_embedding", "text_model.embeddings.position_embedding.weight", OpCopy, 0)
	for i := range te.NumLayers {
		f := fmt.Sprintf("transformer.resblocks.%d.", i)
		t := fmt.Sprintf("text_model.encoder.layers.%d.", i)
		wbT(f+"ln_1", t+"layer_norm1")
		for part, proj := range []string{"q_proj", "k_proj", "v_proj"} {
			add(p+f+"attn.in_proj_weight", t+"self_attn."+proj+".weight", OpSplitQKV, part)
			add(p+f+"attn.in_proj_bias", t+"self_attn."+proj+".bias", OpSplitQKV, part)
		}
		wbT(f+"attn.out_proj", t+"self_attn.out_proj")
		wbT(f+"ln_2", t+"layer_norm2")
		wbT(f+"mlp.c_fc", t+"mlp.fc1")
		wbT(f+"mlp.c_proj", t+"mlp.fc2")
	}
	wbT("ln_final", "text_model.final_layer_norm")
	if te.WithProjection {
		add(p+"text_projection", "text_projection.weight", OpTranspose, 0)
	}
}
