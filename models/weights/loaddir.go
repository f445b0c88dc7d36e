package weights

import (
	"fmt"
	"path/filepath"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/ml/model"
)

// WeightLoader is a model that sets its weights in a context from weight files.
type WeightLoader interface {
	LoadWeights(ctx *model.Scope, files []string, dtype dtypes.DType) error
}

// LoadDir is the Load of a model package for one component folder: dir/config.json through
// loadConfig, the model through newModel, the weight files FindWeightFiles picks for variant, and
// the weights into a fresh context (converted to dtype), returned in Reuse mode. name prefixes the
// errors ("vae.Load").
func LoadDir[C any, M WeightLoader](name, dir, variant string, dtype dtypes.DType,
	loadConfig func(path string) (C, error), newModel func(C) (M, error)) (M, *model.Scope, error) {
	var zero M
	cfg, err := loadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return zero, nil, err
	}
	m, err := newModel(cfg)
	if err != nil {
		return zero, nil, err
	}
	files, err := FindWeightFiles(dir, variant)
	if err != nil {
		return zero, nil, fmt.Errorf("%s: %w", name, err)
	}
	ctx := model.NewStore().RootScope()
	if err := m.LoadWeights(ctx, files, dtype); err != nil {
		return zero, nil, err
	}
	return m, ctx, nil
}
