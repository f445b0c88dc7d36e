package weights

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// InitFromScratch creates, in ctx (a component root), one trainable variable per declared key with
// PyTorch's default initialisation of the module it belongs to — what a freshly constructed
// diffusers/transformers model holds before training:
//
//   - nn.Linear / nn.Conv2d weight: kaiming_uniform(a=√5) = U(±1/√fan_in); bias: U(±1/√fan_in);
//   - GroupNorm / LayerNorm (1-D weight and bias of a "norm*" module): 1 and 0;
//   - nn.Embedding (2-D "*embedding.weight"): N(0, 1) scaled by embedStd (transformers' CLIP uses
//     N(0, 0.02); pass 0.02).
//
// Keys are visited in sorted order and each draws from a PCG stream seeded by (seed, key), so the
// values depend only on the seed and the key. Variables are float32 (training precision).
func InitFromScratch(ctx *model.Scope, declared map[string]shapes.Shape, seed uint64, embedStd float64) error {
	for _, key := range SortedKeys(declared) {
		shape := declared[key]
		scope, name := KeyToScope(key)
		module := ""
		if len(scope) > 0 {
			module = scope[len(scope)-1]
		}
		vals := make([]float32, shape.Size())
		rng := rand.New(rand.NewPCG(seed, hashKey(key)))
		switch {
		case strings.Contains(module, "norm") && shape.Rank() == 1:
			if name == "weight" {
				for i := range vals {
					vals[i] = 1
				}
			} // bias: 0
		case strings.HasSuffix(module, "embedding") && name == "weight" && shape.Rank() == 2:
			for i := range vals {
				vals[i] = float32(rng.NormFloat64() * embedStd)
			}
		case name == "weight" && shape.Rank() >= 2:
			fanIn := shape.Size() / shape.Dim(0)
			bound := 1 / math.Sqrt(float64(fanIn))
			for i := range vals {
				vals[i] = float32((rng.Float64()*2 - 1) * bound)
			}
		case name == "bias" && shape.Rank() == 1:
			w, ok := declared[strings.TrimSuffix(key, "bias")+"weight"]
			if !ok || w.Rank() < 2 {
				return fmt.Errorf("weights.InitFromScratch: %s has no matching weight to take fan_in from", key)
			}
			bound := 1 / math.Sqrt(float64(w.Size()/w.Dim(0)))
			for i := range vals {
				vals[i] = float32((rng.Float64()*2 - 1) * bound)
			}
		default:
			return fmt.Errorf("weights.InitFromScratch: no default initialisation for %s %v", key, shape.Dimensions)
		}
		t := tensors.FromFlatDataAndDimensions(vals, shape.Dimensions...)
		if err := setVariable(ctx, key, t, true); err != nil {
			return fmt.Errorf("weights.InitFromScratch: %w", err)
		}
	}
	return nil
}

// hashKey is FNV-1a of a key: a per-variable stream id.
func hashKey(key string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return h
}
