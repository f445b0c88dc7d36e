package weights

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/safetensors"
)

// LoadOptions tunes LoadFiles.
type LoadOptions struct {
	// DType is the compute dtype floating-point weights are converted to (default Float32).
	DType dtypes.DType
	// Ignore skips file keys the model does not use on purpose (e.g. CLIP's position_ids buffer).
	Ignore func(key string) bool
	// Rename maps a file key to the model key before matching (e.g. the SD1.5 VAE's legacy attention
	// names); nil keeps keys as they are.
	Rename func(key string) string
	// Trainable marks the loaded variables trainable; by default base weights are frozen.
	Trainable bool
}

// Problems is a list of everything wrong between a model and its weight files, reported together.
type Problems struct {
	Files    []string
	Missing  []string // model keys no file has, with the wanted shape
	Extra    []string // file keys the model does not declare
	Mismatch []string // keys whose shape or dtype differ
	Other    []string
}

func (p *Problems) empty() bool {
	return len(p.Missing)+len(p.Extra)+len(p.Mismatch)+len(p.Other) == 0
}

func (p *Problems) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "weights in %s do not fit the model:", strings.Join(p.Files, ", "))
	list := func(title string, items []string) {
		if len(items) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n  %s (%d):", title, len(items))
		for _, it := range items {
			b.WriteString("\n    ")
			b.WriteString(it)
		}
	}
	list("missing keys", p.Missing)
	list("unexpected keys", p.Extra)
	list("wrong shape or dtype", p.Mismatch)
	list("other problems", p.Other)
	return b.String()
}

type fileTensor struct {
	file *safetensors.File
	name string // key in the file
}

// openAll opens the files and indexes their tensors by model key (after opts.Ignore/Rename). The
// caller closes the returned files.
func openAll(files []string, opts LoadOptions, probs *Problems) ([]*safetensors.File, map[string]fileTensor, error) {
	if len(files) == 0 {
		return nil, nil, errors.New("weights: no weight files given")
	}
	var opened []*safetensors.File
	byKey := make(map[string]fileTensor)
	for _, path := range files {
		if err := RefusePickle(path); err != nil {
			closeAll(opened)
			return nil, nil, err
		}
		f, err := safetensors.Open(path)
		if err != nil {
			closeAll(opened)
			return nil, nil, err
		}
		opened = append(opened, f)
		for _, name := range f.Names() {
			if opts.Ignore != nil && opts.Ignore(name) {
				continue
			}
			key := name
			if opts.Rename != nil {
				key = opts.Rename(name)
			}
			if prev, dup := byKey[key]; dup {
				probs.Other = append(probs.Other, fmt.Sprintf("%s: key %q also in %s", path, name, prev.file.Path()))
				continue
			}
			byKey[key] = fileTensor{file: f, name: name}
		}
	}
	return opened, byKey, nil
}

func closeAll(files []*safetensors.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// match compares the declared keys with the files' tensors and records every difference in probs.
func match(declared map[string]shapes.Shape, byKey map[string]fileTensor, probs *Problems) {
	for _, key := range SortedKeys(declared) {
		want := declared[key]
		ft, ok := byKey[key]
		if !ok {
			probs.Missing = append(probs.Missing, fmt.Sprintf("%s %v", key, want.Dimensions))
			continue
		}
		info, _ := ft.file.Info(ft.name)
		if !equalDims(info.Shape, want.Dimensions) {
			probs.Mismatch = append(probs.Mismatch, fmt.Sprintf("%s: %s has shape %v, the model wants %v",
				key, filepath.Base(ft.file.Path()), info.Shape, want.Dimensions))
			continue
		}
		if !isFloat(info.DType) && want.DType.IsFloat() {
			probs.Mismatch = append(probs.Mismatch, fmt.Sprintf("%s: %s has dtype %s, the model wants a floating-point tensor",
				key, filepath.Base(ft.file.Path()), info.DType))
		}
	}
	for key, ft := range byKey {
		if _, ok := declared[key]; !ok {
			probs.Extra = append(probs.Extra, fmt.Sprintf("%s (in %s)", ft.name, filepath.Base(ft.file.Path())))
		}
	}
	sort.Strings(probs.Extra)
}

// Check validates weight files against a model's declared keys without reading any tensor data:
// every header is validated (safetensors.Open), then keys, shapes and dtypes are matched. It returns
// nil when the files fit, a *Problems listing every difference, or the first file-level error.
func Check(declared map[string]shapes.Shape, files []string, opts LoadOptions) error {
	probs := &Problems{Files: files}
	opened, byKey, err := openAll(files, opts, probs)
	if err != nil {
		return err
	}
	defer closeAll(opened)
	match(declared, byKey, probs)
	if !probs.empty() {
		return probs
	}
	return nil
}

// LoadFiles reads the safetensors files and sets, in ctx (already scoped to the component root),
// one variable per declared key, converted to opts.DType. Missing, unexpected and mis-shaped keys
// are all reported together in one *Problems error naming the files; nothing is set then. A tensor
// holding NaN or ±Inf (stored, or after the conversion) fails the load with a
// *safetensors.NonFiniteError naming the file and the key (wrapping safetensors.ErrNonFinite).
func LoadFiles(ctx *model.Scope, declared map[string]shapes.Shape, files []string, opts LoadOptions) error {
	if opts.DType == dtypes.InvalidDType {
		opts.DType = dtypes.Float32
	}
	probs := &Problems{Files: files}
	opened, byKey, err := openAll(files, opts, probs)
	if err != nil {
		return err
	}
	defer closeAll(opened)
	match(declared, byKey, probs)
	if !probs.empty() {
		return probs
	}
	for _, key := range SortedKeys(declared) {
		ft := byKey[key]
		dtype := opts.DType
		if !declared[key].DType.IsFloat() {
			dtype = declared[key].DType
		}
		t, err := ft.file.FiniteTensor(ft.name, dtype)
		if err != nil {
			return err
		}
		if err := setVariable(ctx, key, t, opts.Trainable); err != nil {
			return fmt.Errorf("weights.LoadFiles: %w", err)
		}
	}
	return nil
}

func equalDims(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func isFloat(d safetensors.DType) bool {
	switch d {
	case "F16", "BF16", "F32", "F64":
		return true
	}
	return false
}

// pickleExts are PyTorch pickle formats, which can run arbitrary code when loaded.
var pickleExts = []string{".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle"}

// RefusePickle returns an error for a pickle checkpoint (.ckpt, .pt, .pth, .bin, .pkl): LOBA never
// unpickles, since a pickle can run arbitrary code. It points the user to safetensors.
func RefusePickle(path string) error {
	ext := strings.ToLower(filepath.Ext(path))
	for _, p := range pickleExts {
		if ext == p {
			return fmt.Errorf("%s: %s is a PyTorch pickle checkpoint, which LOBA never loads (unpickling can run arbitrary code); "+
				"use the .safetensors version of the model (most hub repos ship one), or convert it once with a trusted tool "+
				"(e.g. `safetensors.torch.save_file(torch.load(path, weights_only=True), \"model.safetensors\")`)", path, ext)
		}
	}
	return nil
}

// weightStems are the file stems diffusers and transformers use for a component's weights.
var weightStems = []string{"diffusion_pytorch_model", "model"}

// FindWeightFiles lists the safetensors weight files of one component folder: the stems
// diffusion_pytorch_model / model, with the `.variant` (e.g. "fp16") when given and present,
// sharded files through their index: `<stem>.safetensors.index.json`, and for a variant
// `<stem>.safetensors.index.<variant>.json` (diffusers/transformers `_add_variant` puts the variant
// before the last extension), the legacy diffusers `<stem>.safetensors.<variant>.index.json`, or
// `<stem>.<variant>.safetensors.index.json`. A folder holding only pickle weights gives the
// RefusePickle error; a folder holding none gives an error naming the folder.
func FindWeightFiles(dir, variant string) ([]string, error) {
	var tried []string
	for _, stem := range weightStems {
		type candidate struct {
			name  string
			index bool
		}
		var names []candidate
		if variant != "" {
			names = append(names,
				candidate{stem + "." + variant + ".safetensors", false},
				candidate{stem + ".safetensors.index." + variant + ".json", true},
				candidate{stem + ".safetensors." + variant + ".index.json", true},
				candidate{stem + "." + variant + ".safetensors.index.json", true})
		}
		names = append(names, candidate{stem + ".safetensors", false}, candidate{stem + ".safetensors.index.json", true})
		for _, c := range names {
			p := filepath.Join(dir, c.name)
			tried = append(tried, c.name)
			st, err := os.Stat(p)
			if err != nil || st.IsDir() {
				continue
			}
			if c.index {
				return shardsFromIndex(p)
			}
			return []string{p}, nil
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if err := RefusePickle(filepath.Join(dir, e.Name())); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%s: no weight file found (looked for %s)", dir, strings.Join(tried, ", "))
}
