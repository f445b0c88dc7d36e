package singlefile

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/dtypes/gotype"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/exceptions"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/weights"
)

// Loading of LDM/SGM single-file checkpoints (v1-5-pruned-emaonly.safetensors,
// sd_xl_base_1.0.safetensors) into diffusers-named variables, as diffusers'
// FromSingleFileMixin.from_single_file does: the file's kind is detected from its keys, the key
// table of its layout (Layout.Table) renames every tensor, and the table's operation (copy,
// squeeze 1×1, transpose, split fused q/k/v) turns it into the diffusers tensor. As with
// weights.LoadFiles, every missing, unexpected and mis-shaped key is reported together before any
// data is read.

// Load reads the weights of the components of declared (component → diffusers key → shape, e.g.
// {"unet": unetDeclared, "vae": vaeDeclared}) from the single file at path and returns them as
// component → diffusers key → tensor, floating-point tensors converted to opts.DType. Keys of
// components not in declared are skipped. Every missing, unexpected and mis-shaped key is reported
// together (*weights.Problems naming the file) before any data is read. A tensor holding NaN or
// ±Inf fails the load with a *safetensors.NonFiniteError naming the file and its key in the file.
func Load(path string, declared map[string]map[string]shapes.Shape, opts Options) (map[string]map[string]*tensors.Tensor, error) {
	out := map[string]map[string]*tensors.Tensor{}
	err := loadFile(path, declared, opts, func(comp, key string, t *tensors.Tensor) error {
		if out[comp] == nil {
			out[comp] = map[string]*tensors.Tensor{}
		}
		out[comp][key] = t
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LoadInto is Load that sets each weight as a variable of the component's context
// (ctxs[component], scoped to the component root; weights.SetVariable): the diffusers key
// "down_blocks.0.resnets.0.conv1.weight" becomes variable "weight" in scope
// down_blocks/0/resnets/0/conv1. The variables are frozen unless opts.Trainable. Nothing is set
// when the file does not fit.
func LoadInto(ctxs map[string]*model.Scope, path string, declared map[string]map[string]shapes.Shape, opts Options) error {
	var noCtx []string
	for comp := range declared {
		if ctxs[comp] == nil {
			noCtx = append(noCtx, comp)
		}
	}
	if len(noCtx) > 0 {
		sort.Strings(noCtx)
		return fmt.Errorf("singlefile.LoadInto %s: no context given for component(s) %s", path, strings.Join(noCtx, ", "))
	}
	return loadFile(path, declared, opts, func(comp, key string, t *tensors.Tensor) error {
		return weights.SetVariable(ctxs[comp], key, t, opts.Trainable)
	})
}

// loadFile checks the file, then reads every fused/plain source tensor once, converts it to
// the rows asked for and hands each diffusers tensor to sink.
func loadFile(path string, declared map[string]map[string]shapes.Shape, opts Options,
	sink func(comp, key string, t *tensors.Tensor) error) error {
	if opts.DType == dtypes.InvalidDType {
		opts.DType = dtypes.Float32
	}
	f, err := openFile(path)
	if err != nil {
		return err
	}
	defer f.Close()
	plan, err := PlanFile(path, f.Infos(), declared, opts.Layout)
	if err != nil {
		return err
	}
	if err := plan.Err(); err != nil {
		return err
	}
	// Group the rows by source tensor (a fused in_proj tensor feeds three rows), in table order.
	type target struct {
		comp string
		row  Key
	}
	bySource := map[string][]target{}
	var order []string
	for _, row := range plan.Table.Keys {
		src, ok := plan.Sources[row.Component][row.To]
		if !ok || src.Row != row {
			continue
		}
		if _, seen := bySource[row.From]; !seen {
			order = append(order, row.From)
		}
		bySource[row.From] = append(bySource[row.From], target{row.Component, row})
	}
	for _, from := range order {
		targets := bySource[from]
		dtype := opts.DType
		if want := declared[targets[0].comp][targets[0].row.To]; !want.DType.IsFloat() {
			dtype = want.DType
		}
		t, err := f.FiniteTensor(from, dtype)
		if err != nil {
			return err
		}
		for _, tg := range targets {
			converted, err := rearrange(tg.row, t)
			if err != nil {
				return fmt.Errorf("singlefile: %s: %w", path, err)
			}
			if err := sink(tg.comp, tg.row.To, converted); err != nil {
				return fmt.Errorf("singlefile: %s: %s/%s: %w", path, tg.comp, tg.row.To, err)
			}
		}
	}
	return nil
}

// rearrange applies row's operation to t (any float or integer dtype). OpCopy returns t itself.
func rearrange(row Key, t *tensors.Tensor) (out *tensors.Tensor, err error) {
	if row.Op == OpCopy {
		return t, nil
	}
	dims := t.Shape().Dimensions
	err = exceptions.TryCatch[error](func() {
		var convErr error
		accessErr := t.ConstFlatData(func(flat any) {
			switch data := flat.(type) {
			case []float32:
				out, convErr = rearrangeFlat(row, data, dims)
			case []float64:
				out, convErr = rearrangeFlat(row, data, dims)
			case []float16.Float16:
				out, convErr = rearrangeFlat(row, data, dims)
			case []bfloat16.BFloat16:
				out, convErr = rearrangeFlat(row, data, dims)
			case []int64:
				out, convErr = rearrangeFlat(row, data, dims)
			case []int32:
				out, convErr = rearrangeFlat(row, data, dims)
			default:
				convErr = fmt.Errorf("%s: cannot %s a %s tensor", row.From, opName(row), t.DType())
			}
		})
		if accessErr != nil {
			panic(accessErr)
		}
		if convErr != nil {
			panic(convErr)
		}
	})
	return out, err
}

func rearrangeFlat[T gotype.Supported](row Key, data []T, dims []int) (*tensors.Tensor, error) {
	res, shape, err := ConvertTensor(row, data, dims)
	if err != nil {
		return nil, err
	}
	return tensors.FromFlatDataAndDimensions(res, shape...), nil
}
