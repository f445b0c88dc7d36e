package sd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/compute/shapes"

	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/singlefile"
	"github.com/loba-dev/loba/models/weights"
)

// SingleFileOptions tunes InspectSingleFile.
type SingleFileOptions struct {
	// ConfigDir is a diffusers pipeline folder whose unet/, vae/, text_encoder/ (and, for SDXL,
	// text_encoder_2/) config.json describe the checkpoint's networks, like the `config` argument
	// of diffusers' from_single_file. "" uses the built-in hub configs of the detected kind
	// (runwayml/stable-diffusion-v1-5, stabilityai/stable-diffusion-xl-base-1.0).
	ConfigDir string
}

// singleFileComponents are the diffusers components of each single-file kind.
var singleFileComponents = map[string][]string{
	singlefile.KindSD15:     {"text_encoder", "unet", "vae"},
	singlefile.KindSDXLBase: {"text_encoder", "text_encoder_2", "unet", "vae"},
}

// InspectSingleFile inspects an LDM/SGM single-file checkpoint (v1-5-pruned-emaonly.safetensors,
// sd_xl_base_1.0.safetensors) as Inspect does a diffusers folder: it detects the kind from the
// keys, builds the UNet, VAE and text encoder(s) shape-only from their configs, and validates the
// file against them — header (safetensors.Open), every key through the layout's table
// (singlefile.PlanFile) and every shape after conversion. The report names the components
// unet, vae, text_encoder[, text_encoder_2] with their diffusers keys and the stored dtypes; what
// does not fit is in each component's Problem (keys under no component's prefix go to unet's). The
// error return is for files that cannot be inspected at all (pickle, unreadable, unknown kind).
func InspectSingleFile(path string, opts SingleFileOptions) (*Report, error) {
	if err := weights.RefusePickle(path); err != nil {
		return nil, err
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	infos := f.Infos()
	_ = f.Close()
	return inspectSingleFile(path, infos, opts)
}

// inspectSingleFile is InspectSingleFile on a file's tensor list (path is used in messages).
func inspectSingleFile(path string, infos []safetensors.TensorInfo, opts SingleFileOptions) (*Report, error) {
	names := make([]string, len(infos))
	for i, ti := range infos {
		names[i] = ti.Name
	}
	kind, err := singlefile.Detect(names)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	comps := singleFileComponents[kind]
	configs := map[string][]byte{}
	for _, comp := range comps {
		if opts.ConfigDir == "" {
			configs[comp], err = singlefile.BuiltinConfig(kind, comp)
		} else {
			configs[comp], err = os.ReadFile(filepath.Join(opts.ConfigDir, comp, "config.json"))
		}
		if err != nil {
			return nil, fmt.Errorf("%s (%s single file): %w", path, kind, err)
		}
	}
	layout, err := singlefile.LayoutFromConfigs(kind, configs["unet"], configs["vae"], configs["text_encoder"], configs["text_encoder_2"])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	declared := map[string]map[string]shapes.Shape{}
	classes := map[string]Component{}
	for _, comp := range comps {
		src := "built-in " + kind + "/" + comp + "/config.json"
		if opts.ConfigDir != "" {
			src = filepath.Join(opts.ConfigDir, comp, "config.json")
		}
		class, lib, err := configClass(configs[comp])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		cm, err := declareConfig(class, configs[comp])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		c := Component{Name: comp, Library: lib, Class: class}
		if opts.ConfigDir != "" {
			c.Dir = filepath.Join(opts.ConfigDir, comp)
		}
		declared[comp], classes[comp] = cm.declared, c
	}
	plan, err := singlefile.PlanFile(path, infos, declared, layout)
	if err != nil {
		return nil, err
	}
	rep := &Report{Dir: path}
	for _, comp := range comps {
		cr := ComponentReport{Component: classes[comp], Params: weights.ParamCount(declared[comp]),
			Tensors: map[string]TensorEntry{}, Files: []string{path}, Problem: plan.ComponentErr(comp)}
		for key, s := range declared[comp] {
			dtype := "F32"
			if src, ok := plan.Sources[comp][key]; ok {
				dtype = string(src.Info.DType)
			}
			cr.Tensors[key] = TensorEntry{Shape: append([]int{}, s.Dimensions...), DType: dtype}
		}
		if comp == "unet" {
			if other := plan.ComponentErr(""); other != nil {
				cr.Problem = errors.Join(cr.Problem, other)
			}
		}
		rep.Components = append(rep.Components, cr)
	}
	return rep, nil
}
