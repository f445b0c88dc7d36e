package singlefile

import (
	"fmt"

	"github.com/loba-dev/loba/models/unet"
	"github.com/loba-dev/loba/models/vae"
)

// LDM/SGM single-file → diffusers key tables. They port the renames of diffusers'
// loaders/single_file_utils.py (convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint,
// convert_ldm_clip_checkpoint, convert_open_clip_checkpoint), but are generated in loops from the
// layout's configs, so every key is known before a file is opened:
//
//	input_blocks.{i}.0 = down_blocks.b.resnets.l, input_blocks.{i}.1 = down_blocks.b.attentions.l,
//	    with i = 1 + Σ_{b'<b} (layers_per_block[b']+1) + l; input_blocks.{i}.0.op = downsamplers.0.conv
//	middle_block.{k}: even k = mid_block.resnets.{max(k-1, 0)}, odd k = mid_block.attentions.{k-1}
//	    (UNetMidBlock2DCrossAttn: middle_block.{0,1,2}; UNetMidBlock2D: middle_block.0; none: no keys)
//	output_blocks.{j}.0 = up_blocks.b.resnets.l, output_blocks.{j}.1 = up_blocks.b.attentions.l,
//	    output_blocks.{j of the last l}.{2 with attentions, else 1}.conv = up_blocks.b.upsamplers.0.conv
//	resnets: in_layers.0/2 = norm1/conv1, emb_layers.1 = time_emb_proj, out_layers.0/3 = norm2/conv2,
//	    skip_connection = conv_shortcut; attentions keep their names.

// rowFunc receives one row: single-file key, diffusers key and operation.
type rowFunc = func(from, to string, op Op)

// UNetRows emits the UNet's rows alone (LDM/SAI key under prefix → diffusers key, with its op) for
// the UNet of cfg, for callers that map only UNet names (e.g. kohya's SAI-layout LoRA keys). cfg
// must pass cfg.ValidateStructure.
func UNetRows(cfg *unet.Config, prefix string, emit func(from, to string, op Op)) error {
	if cfg == nil {
		return fmt.Errorf("singlefile.UNetRows: no UNet config")
	}
	if err := cfg.ValidateStructure(); err != nil {
		return fmt.Errorf("singlefile.UNetRows: %w", err)
	}
	unetRows(cfg, prefix, emit)
	return nil
}

// wb adds the .weight and .bias rows of a module.
func wb(add rowFunc, from, to string) {
	add(from+".weight", to+".weight", OpCopy)
	add(from+".bias", to+".bias", OpCopy)
}

// unetRows generates the UNet rows (diffusers UNet2DConditionModel ← LDM openaimodel.UNetModel).
func unetRows(c *unet.Config, prefix string, add rowFunc) {
	a := func(from, to string, op Op) { add(prefix+from, to, op) }
	wb(a, "time_embed.0", "time_embedding.linear_1")
	wb(a, "time_embed.2", "time_embedding.linear_2")
	if c.IsSDXL() { // addition_embed_type "text_time"
		wb(a, "label_emb.0.0", "add_embedding.linear_1")
		wb(a, "label_emb.0.2", "add_embedding.linear_2")
	}
	wb(a, "input_blocks.0.0", "conv_in")
	unetDownRows(c, a)
	unetMidRows(c, a)
	unetUpRows(c, a)
	wb(a, "out.0", "conv_norm_out")
	wb(a, "out.2", "conv_out")
}

// unetDownRows generates input_blocks.1… → down_blocks.
func unetDownRows(c *unet.Config, a rowFunc) {
	n := c.Levels()
	in, ch := 1, c.BlockOutChannels[0] // next input block, channels entering it
	for b := range n {
		out := c.BlockOutChannels[b]
		for l := range c.LayersPerBlock.At(b) {
			unetResnetRows(a, fmt.Sprintf("input_blocks.%d.0", in), fmt.Sprintf("down_blocks.%d.resnets.%d", b, l), ch != out)
			if c.DownAttention(b) {
				transformerRows(a, fmt.Sprintf("input_blocks.%d.1", in), fmt.Sprintf("down_blocks.%d.attentions.%d", b, l),
					c.DownDepths(b)[l])
			}
			ch = out
			in++
		}
		if b < n-1 {
			wb(a, fmt.Sprintf("input_blocks.%d.0.op", in), fmt.Sprintf("down_blocks.%d.downsamplers.0.conv", b))
			in++
		}
	}
}

// unetMidRows generates middle_block → mid_block as diffusers' converter numbers it: even
// middle_block.k are resnets, odd ones attentions (none without a mid block).
func unetMidRows(c *unet.Config, a rowFunc) {
	if !c.HasMidBlock() {
		return
	}
	unetResnetRows(a, "middle_block.0", "mid_block.resnets.0", false)
	if c.MidAttention() {
		transformerRows(a, "middle_block.1", "mid_block.attentions.0", c.MidDepth())
		unetResnetRows(a, "middle_block.2", "mid_block.resnets.1", false)
	}
}

// unetUpRows generates output_blocks → up_blocks, sized as diffusers UNet2DConditionModel/UpBlock2D
// size them: resnet j of up block i takes (j == 0 ? prev_output : output) + (j == last ? input :
// output) channels.
func unetUpRows(c *unet.Config, a rowFunc) {
	n := c.Levels()
	rev := func(i int) int { return n - 1 - i }
	outIdx := 0
	for i := range n {
		output := c.BlockOutChannels[rev(i)]
		prevOutput := c.BlockOutChannels[rev(max(i-1, 0))]
		input := c.BlockOutChannels[rev(min(i+1, n-1))]
		layers := c.LayersPerBlock.At(rev(i)) + 1
		attn := c.UpAttention(i)
		for j := range layers {
			resIn, skip := output, output
			if j == 0 {
				resIn = prevOutput
			}
			if j == layers-1 {
				skip = input
			}
			unetResnetRows(a, fmt.Sprintf("output_blocks.%d.0", outIdx), fmt.Sprintf("up_blocks.%d.resnets.%d", i, j), resIn+skip != output)
			if attn {
				transformerRows(a, fmt.Sprintf("output_blocks.%d.1", outIdx), fmt.Sprintf("up_blocks.%d.attentions.%d", i, j),
					c.UpDepths(i)[j])
			}
			if j == layers-1 && i < n-1 {
				sub := 1
				if attn {
					sub = 2
				}
				wb(a, fmt.Sprintf("output_blocks.%d.%d.conv", outIdx, sub), fmt.Sprintf("up_blocks.%d.upsamplers.0.conv", i))
			}
			outIdx++
		}
	}
}

// unetResnetRows adds the rows of an LDM ResBlock → diffusers ResnetBlock2D.
func unetResnetRows(a rowFunc, from, to string, shortcut bool) {
	wb(a, from+".in_layers.0", to+".norm1")
	wb(a, from+".in_layers.2", to+".conv1")
	wb(a, from+".emb_layers.1", to+".time_emb_proj")
	wb(a, from+".out_layers.0", to+".norm2")
	wb(a, from+".out_layers.3", to+".conv2")
	if shortcut {
		wb(a, from+".skip_connection", to+".conv_shortcut")
	}
}

// transformerRows adds the rows of an LDM SpatialTransformer → diffusers Transformer2DModel (same
// names inside; proj_in/proj_out are 1×1 convs or Linears on both sides alike).
func transformerRows(a rowFunc, from, to string, depth int) {
	same := func(name string) { wb(a, from+"."+name, to+"."+name) }
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

// vaeRows generates the VAE rows (diffusers AutoencoderKL ← LDM AutoencoderKL).
func vaeRows(c *vae.Config, prefix string, add rowFunc) {
	a := func(from, to string, op Op) { add(prefix+from, to, op) }
	n := c.Levels()
	wb(a, "encoder.conv_in", "encoder.conv_in")
	ch := c.BlockOutChannels[0]
	for i := range n {
		out := c.BlockOutChannels[i]
		for j := range c.LayersPerBlock {
			vaeResnetRows(a, fmt.Sprintf("encoder.down.%d.block.%d", i, j), fmt.Sprintf("encoder.down_blocks.%d.resnets.%d", i, j), ch != out)
			ch = out
		}
		if i < n-1 {
			wb(a, fmt.Sprintf("encoder.down.%d.downsample.conv", i), fmt.Sprintf("encoder.down_blocks.%d.downsamplers.0.conv", i))
		}
	}
	vaeMidRows(c, a, "encoder")
	wb(a, "encoder.norm_out", "encoder.conv_norm_out")
	wb(a, "encoder.conv_out", "encoder.conv_out")
	if c.UseQuantConv {
		wb(a, "quant_conv", "quant_conv")
	}
	if c.UsePostQuantConv {
		wb(a, "post_quant_conv", "post_quant_conv")
	}
	vaeDecoderRows(c, a)
}

// vaeDecoderRows generates the decoder rows. The LDM decoder numbers its up levels from the bottom
// (up.{n-1} runs first); diffusers' up_blocks.0 runs first.
func vaeDecoderRows(c *vae.Config, a rowFunc) {
	n := c.Levels()
	wb(a, "decoder.conv_in", "decoder.conv_in")
	vaeMidRows(c, a, "decoder")
	ch := c.BlockOutChannels[n-1]
	for i := range n {
		out := c.BlockOutChannels[n-1-i]
		for j := range c.LayersPerBlock + 1 {
			vaeResnetRows(a, fmt.Sprintf("decoder.up.%d.block.%d", n-1-i, j), fmt.Sprintf("decoder.up_blocks.%d.resnets.%d", i, j), ch != out)
			ch = out
		}
		if i < n-1 {
			wb(a, fmt.Sprintf("decoder.up.%d.upsample.conv", n-1-i), fmt.Sprintf("decoder.up_blocks.%d.upsamplers.0.conv", i))
		}
	}
	wb(a, "decoder.norm_out", "decoder.conv_norm_out")
	wb(a, "decoder.conv_out", "decoder.conv_out")
}

// vaeMidRows generates the mid block of the encoder or decoder (side); its attention's q/k/v/proj_out
// are 1×1 convs in LDM and Linears in diffusers.
func vaeMidRows(c *vae.Config, a rowFunc, side string) {
	vaeResnetRows(a, side+".mid.block_1", side+".mid_block.resnets.0", false)
	if c.MidBlockAddAttention {
		f, t := side+".mid.attn_1", side+".mid_block.attentions.0"
		wb(a, f+".norm", t+".group_norm")
		for _, p := range [][2]string{{"q", "to_q"}, {"k", "to_k"}, {"v", "to_v"}, {"proj_out", "to_out.0"}} {
			a(f+"."+p[0]+".weight", t+"."+p[1]+".weight", OpSqueeze1x1)
			a(f+"."+p[0]+".bias", t+"."+p[1]+".bias", OpCopy)
		}
	}
	vaeResnetRows(a, side+".mid.block_2", side+".mid_block.resnets.1", false)
}

// vaeResnetRows adds the rows of an LDM VAE ResnetBlock → diffusers ResnetBlock2D (no time embedding).
func vaeResnetRows(a rowFunc, from, to string, shortcut bool) {
	for _, m := range []string{"norm1", "conv1", "norm2", "conv2"} {
		wb(a, from+"."+m, to+"."+m)
	}
	if shortcut {
		wb(a, from+".nin_shortcut", to+".conv_shortcut")
	}
}

// rows generates the rows of one text encoder (transformers CLIPTextModel[WithProjection] keys).
func (te *TextEncoder) rows(add func(from, to string, op Op, part int)) {
	if te.OpenCLIP {
		te.openCLIPRows(add)
		return
	}
	// transformers naming inside the prefix (convert_ldm_clip_checkpoint strips the prefix).
	same := func(key string) { add(te.Prefix+key, key, OpCopy, 0) }
	sameWB := func(mod string) { same(mod + ".weight"); same(mod + ".bias") }
	same("text_model.embeddings.token_embedding.weight")
	same("text_model.embeddings.position_embedding.weight")
	for i := range te.Config.NumHiddenLayers {
		l := fmt.Sprintf("text_model.encoder.layers.%d.", i)
		for _, m := range []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
			"layer_norm1", "mlp.fc1", "mlp.fc2", "layer_norm2"} {
			sameWB(l + m)
		}
	}
	sameWB("text_model.final_layer_norm")
	if te.Config.WithProjection() {
		same("text_projection.weight")
	}
}

// openCLIPRows generates the rows of a text encoder stored with open_clip naming
// (convert_open_clip_checkpoint): fused q/k/v in_proj, transposed text_projection.
func (te *TextEncoder) openCLIPRows(add func(from, to string, op Op, part int)) {
	p := te.Prefix
	wbT := func(from, to string) {
		add(p+from+".weight", to+".weight", OpCopy, 0)
		add(p+from+".bias", to+".bias", OpCopy, 0)
	}
	add(p+"token_embedding.weight", "text_model.embeddings.token_embedding.weight", OpCopy, 0)
	add(p+"positional_embedding", "text_model.embeddings.position_embedding.weight", OpCopy, 0)
	for i := range te.Config.NumHiddenLayers {
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
	if te.Config.WithProjection() {
		add(p+"text_projection", "text_projection.weight", OpTranspose, 0)
	}
}
