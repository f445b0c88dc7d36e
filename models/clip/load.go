package clip

import (
	"fmt"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/exceptions"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/weights"
)

// Load reads a transformers text-encoder folder (diffusers' text_encoder/ or text_encoder_2/):
// dir/config.json and the weights found by weights.FindWeightFiles (model.safetensors, or a
// sharded index), as float32. It returns the model and a context holding the weights at its root
// in Reuse mode: build graphs with model.Forward(ctx, ids).
func Load(dir string) (*TextModel, *model.Scope, error) {
	return LoadVariant(dir, "", dtypes.Float32)
}

// LoadVariant is Load with a weight-file variant ("fp16" picks model.fp16.safetensors when
// present) and the dtype floating-point weights are converted to.
func LoadVariant(dir, variant string, dtype dtypes.DType) (*TextModel, *model.Scope, error) {
	return weights.LoadDir("clip.Load", dir, variant, dtype, LoadConfig, New)
}

// Declared lists the model's weights as transformers key → shape, from a shape-only build.
func (m *TextModel) Declared() (map[string]shapes.Shape, error) {
	return weights.Declared(func(ctx *model.Scope, g *graph.Graph) { m.Declare(ctx, g) })
}

// IgnoredKey reports file keys the model does not use on purpose: the position_ids buffer that
// older transformers versions saved (text_model.embeddings.position_ids).
func IgnoredKey(key string) bool { return strings.HasSuffix(key, "embeddings.position_ids") }

// LoadWeights sets the model's weights in ctx (the model root) from transformers-named safetensors
// files, converted to dtype (which also becomes m.DType). Missing, unexpected and mis-shaped keys
// are reported together.
func (m *TextModel) LoadWeights(ctx *model.Scope, files []string, dtype dtypes.DType) error {
	if dtype == dtypes.InvalidDType {
		dtype = dtypes.Float32
	}
	m.DType = dtype
	decl, err := m.Declared()
	if err != nil {
		return fmt.Errorf("clip: listing the model's weights: %w", err)
	}
	if err := weights.LoadFiles(ctx, decl, files, weights.LoadOptions{DType: dtype, Ignore: IgnoredKey}); err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	return nil
}

// Outputs holds the host tensors of one Exec run (see TextOutput for the layouts).
type Outputs struct {
	LastHiddenState *tensors.Tensor
	HiddenStates    []*tensors.Tensor
	PoolIndex       *tensors.Tensor // [B] int32
	PooledOutput    *tensors.Tensor
	TextEmbeds      *tensors.Tensor // nil without text_projection
}

// Exec runs the model once on inputIDs ([B, S], an integer tensor) with the weights in ctx
// (the model root, e.g. from Load) and returns every output. Ids outside [0, vocab_size) are an
// error.
func (m *TextModel) Exec(backend compute.Backend, ctx *model.Scope, inputIDs *tensors.Tensor) (*Outputs, error) {
	if err := m.checkIDs(inputIDs); err != nil {
		return nil, err
	}
	nHidden := m.Config.NumHiddenLayers + 1
	var results []*tensors.Tensor
	err := exceptions.TryCatch[error](func() {
		exec, err := model.NewExec(backend, ctx.Store(), func(_ *model.Scope, ids *graph.Node) []*graph.Node {
			o := m.Forward(ctx, ids)
			outs := append([]*graph.Node{o.LastHiddenState, o.PoolIndex, o.PooledOutput}, o.HiddenStates...)
			if o.TextEmbeds != nil {
				outs = append(outs, o.TextEmbeds)
			}
			return outs
		})
		if err != nil {
			panic(err)
		}
		defer exec.Finalize()
		if results, err = exec.Exec(inputIDs); err != nil {
			panic(err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("clip.TextModel.Exec: %w", err)
	}
	out := &Outputs{LastHiddenState: results[0], PoolIndex: results[1], PooledOutput: results[2],
		HiddenStates: results[3 : 3+nHidden]}
	if len(results) > 3+nHidden {
		out.TextEmbeds = results[3+nHidden]
	}
	return out, nil
}

// checkIDs verifies the ids tensor is [B, S] integers within the vocabulary and the positions.
func (m *TextModel) checkIDs(ids *tensors.Tensor) error {
	s := ids.Shape()
	if s.Rank() != 2 || !s.DType.IsInt() {
		return fmt.Errorf("clip: input_ids must be [batch, seq] integers, got %s", s)
	}
	if s.Dim(1) > m.Config.MaxPositionEmbeddings {
		return fmt.Errorf("clip: sequence length %d exceeds max_position_embeddings %d", s.Dim(1), m.Config.MaxPositionEmbeddings)
	}
	var bad error
	err := ids.ConstFlatData(func(flat any) {
		for i := range s.Size() {
			var v int64
			switch f := flat.(type) {
			case []int64:
				v = f[i]
			case []int32:
				v = int64(f[i])
			case []int:
				v = int64(f[i])
			default:
				bad = fmt.Errorf("clip: input_ids dtype %s not supported (use int32 or int64)", s.DType)
				return
			}
			if v < 0 || v >= int64(m.Config.VocabSize) {
				bad = fmt.Errorf("clip: input_ids[%d] = %d is outside the vocabulary [0, %d)", i, v, m.Config.VocabSize)
				return
			}
		}
	})
	if err != nil {
		return fmt.Errorf("clip: reading input_ids: %w", err)
	}
	return bad
}
