package singlefile

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/vae"
	"github.com/loba-dev/loba/models/weights"
)

// Save writes diffusers-named components (component → diffusers key → tensor) as one
// LDM/SGM single file of layout: the inverse of Load (rename to the single-file key,
// unsqueeze 1×1 kernels, transpose the OpenCLIP projection, fuse q/k/v into in_proj). Tensors are
// written in their own dtype. Only the components present in comps are written (a UNet-only file
// holds just "unet"); each of them must have exactly the keys of the layout's table, or nothing is
// written and every difference is reported together.
func Save(path string, layout *Layout, comps map[string]map[string]*tensors.Tensor, metadata map[string]string) error {
	if layout == nil {
		return fmt.Errorf("singlefile.Save %s: no layout given", path)
	}
	table, err := layout.Table()
	if err != nil {
		return fmt.Errorf("singlefile.Save %s: %w", path, err)
	}
	probs := &weights.Problems{Files: []string{path}}
	for _, comp := range weights.SortedKeys(comps) {
		if !slices.Contains(table.Components(), comp) {
			probs.Other = append(probs.Other, noComponent(layout.Kind, comp, table.Components()))
			continue
		}
		for _, key := range weights.SortedKeys(comps[comp]) {
			if _, ok := table.Target(comp, key); !ok {
				probs.Extra = append(probs.Extra, comp+"/"+key)
			}
		}
	}
	var entries entryList
	for _, row := range table.Keys {
		ts, asked := comps[row.Component]
		if !asked {
			continue
		}
		if t := ts[row.To]; t == nil {
			probs.Missing = append(probs.Missing, row.Component+"/"+row.To)
		} else if err := entries.add(row, t); err != nil {
			probs.Mismatch = append(probs.Mismatch, fmt.Sprintf("%s/%s: %v", row.Component, row.To, err))
		}
	}
	if !noProblems(probs) {
		return probs
	}
	list := make([]safetensors.Entry, 0, len(entries.order))
	for _, name := range entries.order {
		list = append(list, *entries.byName[name])
	}
	return safetensors.WriteEntries(path, list, metadata)
}

// SaveDir writes the diffusers pipeline folder dir as one single file of kind at path: the
// layout comes from the folder's configs (LayoutFromDir), the tensors from the safetensors weight
// files of its unet/, vae/ and text encoder folders (weights.FindWeightFiles, plain files), in their
// stored dtype (VAE keys of the legacy attention naming renamed, as the VAE loader does); the
// text encoders' position_ids buffers are left out.
func SaveDir(path, kind, dir string, metadata map[string]string) error {
	layout, err := LayoutFromDir(kind, dir)
	if err != nil {
		return fmt.Errorf("singlefile.SaveDir %s: %w", path, err)
	}
	comps := map[string]map[string]*tensors.Tensor{}
	for _, comp := range components(kind) {
		files, err := weights.FindWeightFiles(filepath.Join(dir, comp), "")
		if err != nil {
			return fmt.Errorf("singlefile.SaveDir %s: %w", path, err)
		}
		comps[comp] = map[string]*tensors.Tensor{}
		for _, f := range files {
			ts, err := safetensors.ReadTensors(f, dtypes.InvalidDType)
			if err != nil {
				return fmt.Errorf("singlefile.SaveDir %s: %w", path, err)
			}
			for key, t := range ts {
				switch {
				case comp == "vae":
					key, _ = vae.RenameLegacyKey(key)
				case comp != "unet" && clip.IgnoredKey(key):
					continue
				}
				comps[comp][key] = t
			}
		}
	}
	return Save(path, layout, comps, metadata)
}

// entryList collects the single-file tensors Save writes, in table order.
type entryList struct {
	byName map[string]*safetensors.Entry
	order  []string
}

// add stores the single-file form of one row's diffusers tensor t: the whole entry, or for
// OpSplitQKV one part of the fused tensor (the rows come in part order 0, 1, 2 and stack along
// axis 0).
func (l *entryList) add(row Key, t *tensors.Tensor) error {
	dt, err := safetensors.FromGoMLX(t.DType())
	if err != nil {
		return err
	}
	data, shape, err := inverseRow(row, t)
	if err != nil {
		return err
	}
	e, ok := l.byName[row.From]
	if !ok {
		if l.byName == nil {
			l.byName = map[string]*safetensors.Entry{}
		}
		e = &safetensors.Entry{Name: row.From, DType: dt, Shape: shape}
		l.byName[row.From] = e
		l.order = append(l.order, row.From)
	}
	if row.Op != OpSplitQKV || row.Part == 0 {
		e.Data = data
		return nil
	}
	if e.DType != dt || !slices.Equal(e.Shape[1:], shape[1:]) || len(e.Data) != row.Part*len(data) {
		return fmt.Errorf("%s %v cannot be fused with the other parts of %s (%s %v)", dt, shape, row.From, e.DType, e.Shape)
	}
	e.Shape[0] += shape[0]
	e.Data = append(e.Data, data...)
	return nil
}

// inverseRow returns the single-file bytes and shape of one row's diffusers tensor (for
// OpSplitQKV, this part's rows of the fused tensor).
func inverseRow(row Key, t *tensors.Tensor) ([]byte, []int, error) {
	dims := append([]int(nil), t.Shape().Dimensions...)
	src := t
	switch row.Op {
	case OpSqueeze1x1:
		if len(dims) != 2 {
			return nil, nil, fmt.Errorf("want a [O, I] matrix to store as a 1×1 kernel, got %v", dims)
		}
		dims = append(dims, 1, 1)
	case OpTranspose:
		if len(dims) != 2 {
			return nil, nil, fmt.Errorf("want a matrix to transpose, got %v", dims)
		}
		var err error
		if src, err = rearrange(Key{From: row.From, Op: OpTranspose}, t); err != nil {
			return nil, nil, err
		}
		dims = []int{dims[1], dims[0]}
	case OpSplitQKV:
		if len(dims) < 1 {
			return nil, nil, fmt.Errorf("want a [n, …] q/k/v part, got a scalar")
		}
	}
	var data []byte
	err := src.ConstBytes(func(b []byte) { data = append([]byte(nil), b...) })
	if err != nil {
		return nil, nil, err
	}
	return data, dims, nil
}
