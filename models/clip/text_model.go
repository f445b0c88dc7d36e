package clip

// Ports the text half of transformers models/clip/modeling_clip.py (@ 000f1ffd, eager attention):
// CLIPTextEmbeddings, CLIPAttention, CLIPMLP, CLIPEncoderLayer, CLIPTextTransformer, CLIPTextModel
// and CLIPTextModelWithProjection.

import (
	"errors"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
)

// LegacyEOSTokenID is the <|endoftext|> id of the real CLIP vocabulary. When every row's largest
// id is this one, transformers pools at argmax(input_ids) (see PoolIndex).
const LegacyEOSTokenID = 49407

// TextModel ports transformers CLIPTextModel, and CLIPTextModelWithProjection when the config's
// architectures say so. Weights live under the keys text_model.embeddings.*,
// text_model.encoder.layers.{i}.*, text_model.final_layer_norm.* and text_projection.weight.
type TextModel struct {
	Config *Config
	// DType is the dtype of the floating-point weights and activations (Float32 by default).
	DType dtypes.DType
}

// New builds a text model for a validated config.
func New(cfg *Config) (*TextModel, error) {
	if cfg == nil {
		return nil, errors.New("clip.New: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &TextModel{Config: cfg, DType: dtypes.Float32}, nil
}

// TextOutput holds the graph outputs of Forward.
type TextOutput struct {
	// LastHiddenState is the last encoder layer's output after final_layer_norm: [B, S, hidden].
	LastHiddenState *Node
	// HiddenStates has num_hidden_layers+1 entries: 0 = embeddings, i = output of encoder layer i
	// (no final LayerNorm). SDXL uses HiddenStates[len-2] ("penultimate"); clip skip k uses
	// HiddenStates[len-1-k].
	HiddenStates []*Node
	// PoolIndex is the pooled position of each row: [B] int32 (see PoolIndex).
	PoolIndex *Node
	// PooledOutput is LastHiddenState at PoolIndex: [B, hidden].
	PooledOutput *Node
	// TextEmbeds is text_projection(PooledOutput) for CLIPTextModelWithProjection: [B, projection_dim];
	// nil otherwise.
	TextEmbeds *Node
}

// Penultimate is HiddenStates[-2], the layer SDXL feeds the UNet from both text encoders.
func (o *TextOutput) Penultimate() *Node { return o.HiddenStates[len(o.HiddenStates)-2] }

// Forward ports CLIPTextModel(WithProjection).forward(input_ids, output_hidden_states=True) with no
// attention mask (as SD pipelines call it): causal self-attention only, padding included.
// ctx is the model root (the scope holding "text_model" and "text_projection").
// inputIDs: [B, S] integer ids, S ≤ max_position_embeddings.
func (m *TextModel) Forward(ctx *model.Scope, inputIDs *Node) *TextOutput {
	cfg := m.Config
	if inputIDs.Rank() != 2 || !inputIDs.DType().IsInt() {
		exceptions.Panicf("clip.TextModel: want input_ids [batch, seq] of an integer dtype, got %s", inputIDs.Shape())
	}
	tm := ctx.At("text_model")
	h := m.embeddings(tm.At("embeddings"), inputIDs) // [B, S, hidden]
	out := &TextOutput{HiddenStates: []*Node{h}}
	layers := tm.At("encoder").At("layers")
	for i := range cfg.NumHiddenLayers {
		h = m.encoderLayer(layers.At("%d", i), h) // [B, S, hidden]
		out.HiddenStates = append(out.HiddenStates, h)
	}
	out.LastHiddenState = nn.LayerNorm(tm.At("final_layer_norm"), h, cfg.LayerNormEps) // [B, S, hidden]
	out.PoolIndex = PoolIndex(inputIDs, cfg.EosTokenID)                                // [B]
	out.PooledOutput = gatherRows(out.LastHiddenState, out.PoolIndex)                  // [B, hidden]
	if cfg.WithProjection() {
		out.TextEmbeds = nn.Linear(ctx.At("text_projection"), out.PooledOutput, cfg.ProjectionDim, false) // [B, proj]
	}
	return out
}

// embeddings ports CLIPTextEmbeddings: token_embedding(input_ids) + position_embedding(0..S-1).
func (m *TextModel) embeddings(ctx *model.Scope, inputIDs *Node) *Node {
	cfg := m.Config
	g := inputIDs.Graph()
	seq := inputIDs.Shape().Dim(1)
	if seq > cfg.MaxPositionEmbeddings {
		exceptions.Panicf("clip.TextModel: sequence length %d exceeds max_position_embeddings %d", seq, cfg.MaxPositionEmbeddings)
	}
	tokens := ctx.At("token_embedding").VariableWithShape("weight", shapes.Make(m.DType, cfg.VocabSize, cfg.HiddenSize)).NodeValue(g)
	positions := ctx.At("position_embedding").VariableWithShape("weight", shapes.Make(m.DType, cfg.MaxPositionEmbeddings, cfg.HiddenSize)).NodeValue(g)
	h := Gather(tokens, InsertAxes(inputIDs, -1))     // [B, S, hidden]
	pos := SliceAxis(positions, 0, AxisRange(0, seq)) // [S, hidden]
	return Add(h, InsertAxes(pos, 0))                 // [B, S, hidden]
}

// encoderLayer ports CLIPEncoderLayer (pre-LN): h += attn(LN1(h)); h += mlp(LN2(h)).
func (m *TextModel) encoderLayer(ctx *model.Scope, h *Node) *Node {
	cfg := m.Config
	x := nn.LayerNorm(ctx.At("layer_norm1"), h, cfg.LayerNormEps)
	h = Add(h, m.attention(ctx.At("self_attn"), x)) // [B, S, hidden]
	x = nn.LayerNorm(ctx.At("layer_norm2"), h, cfg.LayerNormEps)
	mlp := ctx.At("mlp")
	x = nn.Linear(mlp.At("fc1"), x, cfg.IntermediateSize, true) // [B, S, intermediate]
	x = nn.Activation(cfg.HiddenAct, x)
	x = nn.Linear(mlp.At("fc2"), x, cfg.HiddenSize, true) // [B, S, hidden]
	return Add(h, x)
}

// attention ports CLIPAttention with the causal mask: softmax(q kᵀ · head_dim^-0.5 + mask) v,
// then out_proj.
func (m *TextModel) attention(ctx *model.Scope, x *Node) *Node {
	cfg := m.Config
	q := nn.Linear(ctx.At("q_proj"), x, cfg.HiddenSize, true) // [B, S, hidden]
	k := nn.Linear(ctx.At("k_proj"), x, cfg.HiddenSize, true)
	v := nn.Linear(ctx.At("v_proj"), x, cfg.HiddenSize, true)
	a := nn.ScaledDotProductAttention(q, k, v, cfg.NumAttentionHeads, true) // [B, S, hidden]
	return nn.Linear(ctx.At("out_proj"), a, cfg.HiddenSize, true)
}

// PoolIndex is the token CLIPTextTransformer pools for each row of inputIDs [B, S] → [B] int32,
// with the rule of transformers' modeling_clip.py @ 000f1ffd: when every row's largest id is
// LegacyEOSTokenID (49407, real CLIP ids), the first position of the row's maximum
// (argmax(input_ids)); otherwise the first position whose id is eosTokenID (config.eos_token_id),
// or 0 when the row has none (torch's argmax of an all-zero row). With real CLIP ids both branches
// give the first <|endoftext|>.
func PoolIndex(inputIDs *Node, eosTokenID int) *Node {
	g := inputIDs.Graph()
	ids := ConvertDType(inputIDs, dtypes.Int64)
	rowMax := ReduceMax(ids, -1)                                                                   // [B]
	legacy := ConvertDType(Equal(rowMax, Scalar(g, dtypes.Int64, LegacyEOSTokenID)), dtypes.Int32) // [B]
	allLegacy := Equal(ReduceAllMin(legacy), Scalar(g, dtypes.Int32, 1))                           // []
	argmax := ArgMax(ids, -1, dtypes.Int32)                                                        // [B]
	isEOS := ConvertDType(Equal(ids, Scalar(g, dtypes.Int64, eosTokenID)), dtypes.Int32)           // [B, S]
	firstEOS := ArgMax(isEOS, -1, dtypes.Int32)                                                    // [B]
	return Where(BroadcastToDims(allLegacy, argmax.Shape().Dimensions...), argmax, firstEOS)
}

// gatherRows picks x[b, idx[b], :] for each b: x [B, S, D], idx [B] → [B, D].
func gatherRows(x, idx *Node) *Node {
	g := x.Graph()
	b := x.Shape().Dim(0)
	rows := Iota(g, shapes.Make(idx.DType(), b), 0) // [B]
	indices := Stack([]*Node{rows, idx}, -1)        // [B, 2]
	return Gather(x, indices)                       // [B, D]
}

// Declare builds a minimal forward pass (one sequence of two tokens) so weights.Declared can list
// the model's weights.
func (m *TextModel) Declare(ctx *model.Scope, g *Graph) {
	seq := min(2, m.Config.MaxPositionEmbeddings)
	m.Forward(ctx, Zeros(g, shapes.Make(dtypes.Int64, 1, seq)))
}
