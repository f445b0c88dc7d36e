package sd

// Text conditioning: ports encode_prompt of diffusers' StableDiffusionPipeline (clip_skip included)
// and StableDiffusionXLPipeline (both encoders' penultimate hidden states, pooled text_embeds of
// text_encoder_2, _get_add_time_ids), plus A1111-style long prompts (75-token windows).

import (
	"fmt"
	"slices"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/unet"
)

// numTimeIDs is the number of SDXL micro-conditioning values per image (TimeIDs).
const numTimeIDs = 6

// Conditioning is the text conditioning E[p] of a batch of prompts on the host (float32), the UNet's
// one conditioning type: Hidden [N, S, D] and, for SDXL, TextEmbeds [N, P]. Prompt encodings leave
// TimeIDs nil (they belong to the image size).
type Conditioning = unet.Conditioning[*tensors.Tensor]

// EncodeOptions tunes EncodePrompts. The zero value is what diffusers and LECO compute.
type EncodeOptions struct {
	// ClipSkip is diffusers' clip_skip (A1111's "Clip skip" minus one): 0 takes the usual layer;
	// k > 0 takes k layers earlier — SD1.x: final_layer_norm(hidden_states[-(k+1)]) instead of
	// last_hidden_state; SDXL: hidden_states[-(k+2)] of both encoders (no final LayerNorm).
	ClipSkip int
	// LongPrompts encodes prompts longer than 75 tokens in 75-token windows, each [BOS] + window +
	// [EOS] + padding, and concatenates the windows' hidden states along the sequence axis
	// (A1111 / ComfyUI); every prompt of the call gets the largest window count, the shorter ones
	// padded with empty windows (the encoding of ""). SDXL's pooled output is the first window's.
	// false truncates to one window, as diffusers and LECO do.
	LongPrompts bool
}

// encodeKey identifies one compiled encoding graph (besides the input shapes).
type encodeKey struct {
	clipSkip, chunks int
}

// EncodePrompts computes the conditioning of prompts exactly as diffusers/LECO feed the UNet:
// SD1.x: text_encoder last_hidden_state (input padded with <|endoftext|>); SDXL: the concatenation
// on the last axis of both encoders' penultimate hidden states (text_encoder padded with
// <|endoftext|>, text_encoder_2 with "!"), and text_encoder_2's text_embeds as TextEmbeds. The
// unconditional prompt of LECO and of classifier-free guidance is the encoding of "" (not zeros).
// One graph is compiled per (options, batch, sequence length) and reused.
func (p *Pipeline) EncodePrompts(prompts []string, opts EncodeOptions) (*Conditioning, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.encode(prompts, opts)
}

// encode is EncodePrompts with p.mu held.
func (p *Pipeline) encode(prompts []string, opts EncodeOptions) (*Conditioning, error) {
	return p.encodeAt(prompts, nil, opts)
}

// encodeAt encodes prompts as EncodePrompts does; with mult non-nil (one multiplier per prompt) the
// text encoders run with the text adapter (SetTextAdapter) at those multipliers, in a graph of its
// own (one per encodeKey and batch, dropped by SetTextAdapter). p.mu is held.
func (p *Pipeline) encodeAt(prompts []string, mult []float32, opts EncodeOptions) (*Conditioning, error) {
	if len(p.TextEncoders) == 0 {
		return nil, fmt.Errorf("sd.EncodePrompts: the text encoders were freed (FreeTextEncoders) or not loaded (SkipTextEncoders)")
	}
	if len(prompts) == 0 {
		return nil, fmt.Errorf("sd.EncodePrompts: no prompts")
	}
	if err := p.checkClipSkip(opts.ClipSkip); err != nil {
		return nil, err
	}
	seq := p.seqLen()
	ids, chunks, err := p.tokenize(prompts, seq, opts.LongPrompts)
	if err != nil {
		return nil, err
	}
	key := encodeKey{clipSkip: opts.ClipSkip, chunks: chunks}
	graphs, fn := p.graphs.encode, p.encodeGraphFn(key)
	if mult != nil {
		if p.graphs.textAdapter == nil {
			return nil, fmt.Errorf("sd.EncodePrompts: multipliers given but no text adapter is set (SetTextAdapter)")
		}
		if len(mult) != len(prompts) {
			return nil, fmt.Errorf("sd.EncodePrompts: %d multipliers for %d prompts", len(mult), len(prompts))
		}
		graphs, fn = p.graphs.encodeText, p.encodeTextGraphFn(key, p.graphs.textAdapter)
	}
	exec := graphs[key]
	if exec == nil {
		exec, err = model.NewExec(p.Backend, p.Ctx.Store(), fn)
		if err != nil {
			return nil, fmt.Errorf("sd.EncodePrompts: %w", err)
		}
		graphs[key] = exec
	}
	args := make([]any, len(ids), len(ids)+1)
	for i, x := range ids {
		args[i] = x
	}
	if mult != nil {
		args = append(args, tensors.FromFlatDataAndDimensions(slices.Clone(mult), len(mult))) // [N]
	}
	var outs []*tensors.Tensor
	err = exceptions.TryCatch[error](func() {
		var err error
		if outs, err = exec.Exec(args...); err != nil {
			panic(err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("sd.EncodePrompts: %w", err)
	}
	p.graphs.stats.EncodeRuns++
	c := &Conditioning{Hidden: outs[0]}
	if p.Kind == KindSDXL {
		c.TextEmbeds = outs[1]
	}
	return c, nil
}

// checkClipSkip verifies that ClipSkip leaves a layer to take in every encoder.
func (p *Pipeline) checkClipSkip(k int) error {
	for i, te := range p.TextEncoders {
		maxSkip := te.Config.NumHiddenLayers // SD1.x: hidden_states[-(k+1)], k ≤ layers
		if p.Kind == KindSDXL {
			maxSkip-- // hidden_states[-(k+2)]
		}
		if k < 0 || k > maxSkip {
			return fmt.Errorf("sd.EncodePrompts: ClipSkip %d is out of range for %s (num_hidden_layers %d): valid 0..%d",
				k, textEncoderScopes[i], te.Config.NumHiddenLayers, maxSkip)
		}
	}
	return nil
}

// seqLen is the fixed token length: the tokenizers' model_max_length, at most the encoders'
// max_position_embeddings.
func (p *Pipeline) seqLen() int {
	seq := 0
	for i, te := range p.TextEncoders {
		s := min(p.Tokenizers[i].MaxLength, te.Config.MaxPositionEmbeddings)
		if i == 0 || s < seq {
			seq = s
		}
	}
	return seq
}

// tokenize builds one [N·chunks, seq] int32 id tensor per text encoder (prompt-major chunks).
func (p *Pipeline) tokenize(prompts []string, seq int, long bool) ([]*tensors.Tensor, int, error) {
	n := len(p.TextEncoders)
	perEncoder := make([][][][]int, n) // encoder → prompt → chunk → ids
	chunks := 1
	for i := range n {
		tok, pad := p.Tokenizers[i], p.PadIDs[i]
		for _, prompt := range prompts {
			var cs [][]int
			var err error
			if long {
				cs, err = tok.EncodeChunks(prompt, seq, pad)
			} else {
				var ids []int
				ids, err = tok.EncodeFixed(prompt, seq, pad)
				cs = [][]int{ids}
			}
			if err != nil {
				return nil, 0, fmt.Errorf("sd.EncodePrompts: tokenizing %q: %w", prompt, err)
			}
			chunks = max(chunks, len(cs))
			perEncoder[i] = append(perEncoder[i], cs)
		}
	}
	out := make([]*tensors.Tensor, n)
	for i := range n {
		empty, err := p.Tokenizers[i].EncodeFixed("", seq, p.PadIDs[i])
		if err != nil {
			return nil, 0, err
		}
		vocab := p.TextEncoders[i].Config.VocabSize
		flat := make([]int32, 0, len(prompts)*chunks*seq)
		for j, cs := range perEncoder[i] {
			for c := range chunks {
				ids := empty
				if c < len(cs) {
					ids = cs[c]
				}
				for _, id := range ids {
					if id < 0 || id >= vocab {
						return nil, 0, fmt.Errorf("sd.EncodePrompts: prompt %q gives token id %d, outside %s's vocab_size %d",
							prompts[j], id, textEncoderScopes[i], vocab)
					}
					flat = append(flat, int32(id))
				}
			}
		}
		out[i] = tensors.FromFlatDataAndDimensions(flat, len(prompts)*chunks, seq)
	}
	return out, chunks, nil
}

// encodeGraphFn builds the encoding graph: ids (one [N·chunks, S] tensor per encoder) →
// hidden [N, chunks·S, D] (float32) [, pooled [N, P]].
func (p *Pipeline) encodeGraphFn(key encodeKey) func(ctx *model.Scope, ids []*Node) []*Node {
	return func(ctx *model.Scope, ids []*Node) []*Node {
		p.graphs.stats.EncodeGraphs++
		h, pooled := p.EncodeGraph(ctx, ids, key.clipSkip, key.chunks)
		if pooled == nil {
			return []*Node{h}
		}
		return []*Node{h, pooled}
	}
}

// encodeTextGraphFn builds the encoding graph with the text adapter: inputs are the ids (one
// [N·chunks, S] tensor per encoder) followed by the multipliers [N] float32, one per prompt, given
// to every window of the prompt; outputs as encodeGraphFn's.
func (p *Pipeline) encodeTextGraphFn(key encodeKey, adapter AdapterFactory) func(ctx *model.Scope, in []*Node) []*Node {
	return func(ctx *model.Scope, in []*Node) []*Node {
		p.graphs.stats.EncodeGraphs++
		ids, mult := in[:len(in)-1], in[len(in)-1]
		n := mult.Shape().Dim(0)
		if key.chunks > 1 {
			mult = Reshape(BroadcastToDims(Reshape(mult, n, 1), n, key.chunks), n*key.chunks) // [N·chunks], prompt-major
		}
		g := mult.Graph()
		prev := nn.UseAdapter(g, adapter(mult))
		defer nn.UseAdapter(g, prev)
		h, pooled := p.EncodeGraph(ctx, ids, key.clipSkip, key.chunks)
		if pooled == nil {
			return []*Node{h}
		}
		return []*Node{h, pooled}
	}
}

// EncodeGraph is the text conditioning in a graph (EncodePrompts' computation): ids are one
// [N·chunks, S] int32 tensor per text encoder (TokenIDs), ctx the pipeline's root scope. It returns
// hidden [N, chunks·S, D] float32 and, for SDXL, pooled [N, P] (nil for SD1.x). The text encoders'
// Linear layers consult the adapter installed for the graph (nn.UseAdapter), so a text-encoder LoRA
// scoped at "/text_encoder" or "/text_encoder_2" applies.
func (p *Pipeline) EncodeGraph(ctx *model.Scope, ids []*Node, clipSkip, chunks int) (hidden, pooled *Node) {
	if p.Kind == KindSD15 {
		te := p.TextEncoders[0]
		tctx := ctx.At("%s", ScopeTextEncoder)
		o := te.Forward(tctx, ids[0])
		h := o.LastHiddenState // [N·chunks, S, D]
		if clipSkip > 0 {
			h = o.HiddenStates[len(o.HiddenStates)-1-clipSkip]
			h = nn.LayerNorm(tctx.At("text_model").At("final_layer_norm"), h, te.Config.LayerNormEps)
		}
		return clip.JoinChunks(ConvertDType(h, dtypes.Float32), chunks), nil // [N, chunks·S, D]
	}
	var hs []*Node
	for i, te := range p.TextEncoders {
		o := te.Forward(ctx.At("%s", textEncoderScopes[i]), ids[i])
		hs = append(hs, ConvertDType(o.HiddenStates[len(o.HiddenStates)-2-clipSkip], dtypes.Float32)) // [N·chunks, S, D_i]
		if i == 1 {
			pooled = clip.FirstChunk(ConvertDType(o.TextEmbeds, dtypes.Float32), chunks) // [N, P]
		}
	}
	return clip.JoinChunks(Concatenate(hs, -1), chunks), pooled // [N, chunks·S, D_1 + D_2]
}

// TokenIDs tokenizes prompts as EncodePrompts does without LongPrompts: one [N, S] int32 tensor per
// text encoder, each prompt truncated or padded to S tokens (the graph input of EncodeGraph with
// chunks 1).
func (p *Pipeline) TokenIDs(prompts []string) ([]*tensors.Tensor, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.TextEncoders) == 0 {
		return nil, fmt.Errorf("sd.TokenIDs: the text encoders were freed (FreeTextEncoders) or not loaded (SkipTextEncoders)")
	}
	ids, _, err := p.tokenize(prompts, p.seqLen(), false)
	return ids, err
}

// TimeIDs is SDXL's add_time_ids (diffusers _get_add_time_ids): original_size + crops_coords_top_left
// + target_size = [origH, origW, cropTop, cropLeft, targetH, targetW], in pixels.
func TimeIDs(origH, origW, cropTop, cropLeft, targetH, targetW int) []float32 {
	return []float32{float32(origH), float32(origW), float32(cropTop), float32(cropLeft), float32(targetH), float32(targetW)}
}

// TimeIDsTensor repeats one TimeIDs row n times: [n, 6] float32.
func TimeIDsTensor(ids []float32, n int) *tensors.Tensor {
	flat := make([]float32, 0, n*len(ids))
	for range n {
		flat = append(flat, ids...)
	}
	return tensors.FromFlatDataAndDimensions(flat, n, len(ids))
}

// ConditioningRows returns the conditioning of the prompts at idx of c (repeats allowed), in that
// order.
func ConditioningRows(c *Conditioning, idx ...int) (*Conditioning, error) {
	out := &Conditioning{}
	for _, f := range conditioningFields {
		if t := *f.of(c); t != nil {
			var err error
			if *f.of(out), err = gatherRows(t, idx); err != nil {
				return nil, fmt.Errorf("sd.ConditioningRows: %s: %w", f.name, err)
			}
		}
	}
	return out, nil
}

// ConcatConditionings stacks conditionings along the prompt axis; their sequence lengths and
// widths must agree (encode prompts that go in one batch with one EncodePrompts call, so long
// prompts get the same window count), and each field must be set in all of them or in none.
func ConcatConditionings(cs ...*Conditioning) (*Conditioning, error) {
	if len(cs) == 0 {
		return nil, fmt.Errorf("sd.ConcatConditionings: nothing to concatenate")
	}
	out := &Conditioning{}
	for _, f := range conditioningFields {
		var parts []*tensors.Tensor
		for _, c := range cs {
			if t := *f.of(c); t != nil {
				parts = append(parts, t)
			}
		}
		if len(parts) == 0 {
			continue
		} else if len(parts) != len(cs) {
			return nil, fmt.Errorf("sd.ConcatConditionings: some conditionings have %s and others not", f.name)
		}
		var err error
		if *f.of(out), err = ConcatRows[float32](parts); err != nil {
			return nil, fmt.Errorf("sd.ConcatConditionings: %s: %w", f.name, err)
		}
	}
	return out, nil
}

// conditioningFields names the fields of a Conditioning, each with its address in one.
var conditioningFields = []struct {
	name string
	of   func(*Conditioning) **tensors.Tensor
}{
	{"Hidden", func(c *Conditioning) **tensors.Tensor { return &c.Hidden }},
	{"TextEmbeds", func(c *Conditioning) **tensors.Tensor { return &c.TextEmbeds }},
	{"TimeIDs", func(c *Conditioning) **tensors.Tensor { return &c.TimeIDs }},
}

// gatherRows picks rows idx of a float32 tensor [N, ...].
func gatherRows(t *tensors.Tensor, idx []int) (*tensors.Tensor, error) {
	flat, err := tensors.CopyFlatData[float32](t)
	if err != nil {
		return nil, err
	}
	dims := t.Shape().Dimensions
	n := dims[0]
	row := len(flat) / max(n, 1)
	out := make([]float32, 0, len(idx)*row)
	for _, i := range idx {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("row %d out of range [0, %d)", i, n)
		}
		out = append(out, flat[i*row:(i+1)*row]...)
	}
	newDims := append([]int{len(idx)}, dims[1:]...)
	return tensors.FromFlatDataAndDimensions(out, newDims...), nil
}

// ConcatRows stacks tensors [N_i, ...] of element type T (conditionings: float32; token ids: int32)
// with equal trailing dimensions into one [ΣN_i, ...].
func ConcatRows[T float32 | int32](ts []*tensors.Tensor) (*tensors.Tensor, error) {
	inner := ts[0].Shape().Dimensions[1:]
	var out []T
	n := 0
	for _, t := range ts {
		d := t.Shape().Dimensions
		if len(d) != len(inner)+1 || fmt.Sprint(d[1:]) != fmt.Sprint(inner) {
			return nil, fmt.Errorf("shapes %s and %s differ beyond the first axis", ts[0].Shape(), t.Shape())
		}
		flat, err := tensors.CopyFlatData[T](t)
		if err != nil {
			return nil, err
		}
		out = append(out, flat...)
		n += d[0]
	}
	return tensors.FromFlatDataAndDimensions(out, append([]int{n}, inner...)...), nil
}
