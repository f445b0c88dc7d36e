// Package lora holds LOBA's low-rank adapters: LoRA on Linear layers and LoCon on Conv2D layers, as
// kohya's sd-scripts networks/lora.py and LECO's lora.py build them, for the UNet and the CLIP text
// encoders of Stable Diffusion 1.x/2.x and SDXL.
//
// # Modules and targeting
//
// A Network is the set of adapted modules (Module) of one component ("unet", "text_encoder",
// "text_encoder_2"). Resolve picks them from the weights the component's model declares
// (weights.Declared): every module path with a ".weight" of rank 2 (Linear [out, in]) or rank 4
// (Conv2d [out, in, k, k]) is a candidate, and a preset plus composable selectors (Targets,
// Selector) choose among them:
//
//	lierla   every Linear/Conv2d inside a Transformer2DModel (…attentions.N.*): proj_in, proj_out,
//	         attn1/attn2 to_q/to_k/to_v/to_out.0, ff.net.0.proj, ff.net.2   (SD1.5: 192, SDXL: 722)
//	c3lier   lierla + ResnetBlock2D conv1/conv2/time_emb_proj/conv_shortcut and the Downsample2D /
//	         Upsample2D convs                                                  (SD1.5: 278, SDXL: 788)
//	noxattn  lierla without attn2 (cross-attention)
//	xattn    attn2 only
//	full     every Linear/Conv2d of the component (also conv_in, conv_out, time/add embeddings)
//	none     nothing: the selectors alone build the set
//
// For the text encoders lierla, c3lier and noxattn all select kohya's CLIPAttention and CLIPMLP
// children (q_proj, k_proj, v_proj, out_proj, mlp.fc1, mlp.fc2), xattn selects nothing and full
// adds text_projection; the embeddings are never candidates.
//
// # Forward
//
// y = W·x + m·(α/r)·up(down(x)) (LECO lora.py:102-106). Linear: down [r, in], up [out, r]. Conv
// (LoCon): down [r, in, k, k] with the layer's stride and padding, up [out, r, 1, 1]. The
// Adapter (an nn.Adapter) adds the update to the layers it targets; the multiplier m is a scalar
// or one value per sample.
//
// # Layer multipliers
//
// Network.SetLayerMultipliers gives modules their own multiplier m_l (selector → value, the
// selector syntax of targeting; the product of every matching selector's value), U-LOBA's per-layer
// schedule: y = W·x + m·m_l·(α/r)·up(down(x)) in training and in Merge. Files carry it so that any
// loader reproduces it: SaveKohya writes each module's alpha as α·m_l (W' = W + s·(α·m_l/r)·up@down
// in every consumer's merge rule), except m_l = 0, written with α unchanged and a zero lora_up
// (kohya's sd-scripts reads an alpha of 0 as alpha = rank); SavePEFT folds α·m_l/r into lora_B.
// Both record the multipliers in the metadata (MetaLayerMultipliers, informative: loaders must not
// apply them again). Without multipliers, graphs and files are exactly as before.
//
// # Variables
//
// The weights of module p (a diffusers path) of component c live at
// ctx.In("lora").In(c).In(<p split at ".">...).In("lora_down" | "lora_up"), variable "weight".
//
// # Files
//
// SaveKohya/LoadKohya read and write kohya's format (lora_unet_* / lora_te_* / lora_te1_* /
// lora_te2_* names, .lora_down.weight, .lora_up.weight and a 0-d .alpha per module), in the
// diffusers layout or, for the UNet, the SAI/LDM layout (lora_unet_input_blocks_…). Names are
// never split at "_": the loader builds the forward map of every known module and looks keys up
// exactly. SavePEFT writes the diffusers/PEFT layout. Merge folds a LoRA into frozen base weights.
package lora
