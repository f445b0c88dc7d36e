package sd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/hub"
	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/singlefile"
	"github.com/loba-dev/loba/models/unet"
	"github.com/loba-dev/loba/models/vae"
	"github.com/loba-dev/loba/models/weights"
)

// SingleFileOptions tunes InspectSingleFile and ResolveSingleFile.
type SingleFileOptions struct {
	// ConfigDir is a diffusers pipeline folder (or a config-only one) whose unet/, vae/,
	// text_encoder/ (and, for SDXL, text_encoder_2/) config.json describe the checkpoint's
	// networks, like the `config` argument of diffusers' from_single_file; its tokenizer/,
	// tokenizer_2/ and scheduler/ are used when present. "" is the folder holding the file when it
	// has a model_index.json (hub repositories ship the single file beside its diffusers folders),
	// else the built-in hub configs of the detected kind (runwayml/stable-diffusion-v1-5,
	// stabilityai/stable-diffusion-xl-base-1.0).
	ConfigDir string
	// HeadersOnly makes InspectSingleFile skip the scan of the weight values for NaN and ±Inf (see
	// InspectOptions.HeadersOnly); ResolveSingleFile ignores it.
	HeadersOnly bool
}

// singleFileConfigDir is the config folder of the single file at path: opts.ConfigDir, else the
// diffusers folder holding the file, else "" (the built-in configs).
func singleFileConfigDir(path string, opts SingleFileOptions) string {
	if opts.ConfigDir != "" {
		return opts.ConfigDir
	}
	beside := filepath.Dir(path)
	if _, err := os.Stat(filepath.Join(beside, "model_index.json")); err == nil {
		return beside
	}
	return ""
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
// (singlefile.PlanFile) and every shape after conversion — and, unless opts.HeadersOnly, scans the
// values of every tensor a component reads for NaN and ±Inf (ComponentReport.NonFinite, named by
// their key in the file). The report names the components
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
	defer f.Close()
	opts.ConfigDir = singleFileConfigDir(path, opts)
	values := f
	if opts.HeadersOnly {
		values = nil
	}
	return inspectSingleFile(path, f.Infos(), values, opts)
}

// inspectSingleFile is InspectSingleFile on a file's tensor list (path is used in messages); the
// values are scanned in values, the open file, unless it is nil.
func inspectSingleFile(path string, infos []safetensors.TensorInfo, values *safetensors.File, opts SingleFileOptions) (*Report, error) {
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
	rep := singleFileReport(plan, comps, declared, classes)
	if values != nil {
		scanSingleFile(rep, plan, values)
	}
	return rep, nil
}

// singleFileReport reports the components of a planned single file: their declared keys with the
// stored dtypes, and their problems (keys under no component's prefix go to unet's).
func singleFileReport(plan *singlefile.Plan, comps []string, declared map[string]map[string]shapes.Shape,
	classes map[string]Component) *Report {
	rep := &Report{Dir: plan.Path}
	for _, comp := range comps {
		cr := ComponentReport{Component: classes[comp], Params: weights.ParamCount(declared[comp]),
			Tensors: map[string]TensorEntry{}, Files: []string{plan.Path}, Problem: plan.ComponentErr(comp)}
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
	return rep
}

// IsSingleFile reports whether path names a file rather than a folder: LoadPipeline reads it as a
// single-file checkpoint.
func IsSingleFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// tokenizerNames are the tokenizer folders of a pipeline's text encoders, in order.
var tokenizerNames = []string{"tokenizer", "tokenizer_2"}

// SingleFileSource is where each part of a pipeline loaded from a single-file checkpoint comes
// from (ResolveSingleFile): the weights from the file, the rest from a config folder.
type SingleFileSource struct {
	// Path is the .safetensors file: the UNet, VAE and text-encoder weights.
	Path string
	// Kind is the file's kind (singlefile.KindSD15 or singlefile.KindSDXLBase).
	Kind string
	// ConfigDir is the folder the configs are read from: SingleFileOptions.ConfigDir, the diffusers
	// folder holding the file, or the built-in configs of Kind (Builtin; singlefile.BuiltinConfigDir).
	ConfigDir string
	// Builtin tells that ConfigDir is the built-in config folder of Kind.
	Builtin bool
	// Layout is the key table's layout, built from ConfigDir's configs.
	Layout *singlefile.Layout
	// Tokenizers are the tokenizer folders of the text encoders (ConfigDir's tokenizer/,
	// tokenizer_2/), "" where ConfigDir has none: LoadPipeline then uses PipelineOptions.Tokenizer,
	// else fetches that folder of HubRepo from the Hub.
	Tokenizers []string
	// HubRepo is the kind's reference repository (singlefile.HubConfigRepo).
	HubRepo string
	// SchedulerConfig is ConfigDir's scheduler/scheduler_config.json, else the built-in one of Kind.
	SchedulerConfig string
}

// ResolveSingleFile finds what a single-file checkpoint is loaded with: its kind (from its keys),
// its config folder (see SingleFileOptions.ConfigDir) and the layout built from it, the tokenizer
// folders and the scheduler config. Pickle files are refused. Errors name the file and, for a
// config folder that does not fit the file, the config.
func ResolveSingleFile(path string, opts SingleFileOptions) (*SingleFileSource, error) {
	kind, err := singlefile.DetectPath(path)
	if err != nil {
		return nil, err
	}
	src := &SingleFileSource{Path: path, Kind: kind, ConfigDir: singleFileConfigDir(path, opts)}
	if src.HubRepo, err = singlefile.HubConfigRepo(kind); err != nil {
		return nil, err
	}
	builtin := ""
	if src.ConfigDir == "" || !fileExists(filepath.Join(src.ConfigDir, "scheduler", "scheduler_config.json")) {
		if builtin, err = singlefile.BuiltinConfigDir(kind); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if src.ConfigDir == "" {
		src.ConfigDir, src.Builtin = builtin, true
	}
	if err := checkSingleFileKind(src); err != nil {
		return nil, err
	}
	if src.Layout, err = singlefile.LayoutFromDir(kind, src.ConfigDir); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, name := range tokenizerNames[:len(src.Layout.Text)] {
		dir := filepath.Join(src.ConfigDir, name)
		if !fileExists(filepath.Join(dir, "vocab.json")) || !fileExists(filepath.Join(dir, "merges.txt")) {
			dir = ""
		}
		src.Tokenizers = append(src.Tokenizers, dir)
	}
	src.SchedulerConfig = filepath.Join(src.ConfigDir, "scheduler", "scheduler_config.json")
	if builtin != "" {
		src.SchedulerConfig = filepath.Join(builtin, "scheduler", "scheduler_config.json")
	}
	return src, nil
}

// checkSingleFileKind checks that the config folder's UNet is of the file's kind (an SDXL file
// with SD1.x configs would otherwise fail on a missing text_encoder_2/config.json).
func checkSingleFileKind(src *SingleFileSource) error {
	unetConfig := filepath.Join(src.ConfigDir, "unet", "config.json")
	cfg, err := unet.LoadConfig(unetConfig)
	if err != nil {
		return fmt.Errorf("%s (%s single file): %w", src.Path, src.Kind, err)
	}
	if cfg.IsSDXL() != (src.Kind == singlefile.KindSDXLBase) {
		want := "an SD1.x UNet (no addition_embed_type text_time)"
		if src.Kind == singlefile.KindSDXLBase {
			want = "an SDXL UNet (addition_embed_type text_time)"
		}
		return fmt.Errorf("%s is a %s single file but its config folder %s does not fit it: %s must configure %s",
			src.Path, src.Kind, src.ConfigDir, unetConfig, want)
	}
	return nil
}

// configs names where the networks' configs come from, for messages.
func (src *SingleFileSource) configs() string {
	if src.Builtin {
		return fmt.Sprintf("the built-in %s hub configs in %s; put the file in the diffusers folder of its configs to use those", src.Kind, src.ConfigDir)
	}
	return "the configs of " + src.ConfigDir
}

func fileExists(path string) bool { _, err := os.Stat(path); return err == nil }

// ConditioningFiles lists the files text conditioning from this source depends on: the single
// file (it holds the text encoders' weights), the text encoders' config.json and the files of the
// tokenizer folders present. A tokenizer fetched from the Hub is not listed (see Tokenizers).
func (src *SingleFileSource) ConditioningFiles() []string {
	files := []string{src.Path}
	for _, te := range src.Layout.Text {
		files = append(files, filepath.Join(src.ConfigDir, te.Component, "config.json"))
	}
	for _, dir := range src.Tokenizers {
		if dir == "" {
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue // listed as absent: the key still changes when the folder comes back
		}
		for _, e := range entries {
			if !e.IsDir() {
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
	}
	return files
}

// readModelSource reads what LoadPipeline loads: a diffusers folder's model_index.json, or for a
// single file (IsSingleFile) its source and the folders of its tokenizers and scheduler. A
// tokenizer folder missing from the config folder is fetched from the Hub unless tokenizer (the
// PipelineOptions.Tokenizer override) is given.
func readModelSource(path, tokenizer string) (modelIndex, *SingleFileSource, error) {
	if !IsSingleFile(path) {
		comps, err := readModelIndex(path)
		return comps, nil, err
	}
	src, err := ResolveSingleFile(path, SingleFileOptions{})
	if err != nil {
		return modelIndex{}, nil, fmt.Errorf("sd.LoadPipeline: %w", err)
	}
	comps := modelIndex{dir: src.ConfigDir, byName: map[string]Component{
		"scheduler": {Name: "scheduler", Library: "diffusers", Dir: filepath.Dir(src.SchedulerConfig)}}}
	for i, dir := range src.Tokenizers {
		name := tokenizerNames[i]
		if dir == "" && tokenizer == "" {
			if dir, err = fetchTokenizer(src, name); err != nil {
				return modelIndex{}, nil, err
			}
		}
		comps.byName[name] = Component{Name: name, Library: "transformers", Class: "CLIPTokenizer", Dir: dir}
	}
	return comps, src, nil
}

// fetchTokenizer resolves the tokenizer folder name of the kind's reference repository through the
// Hugging Face cache (downloading it when missing, unless HF_HUB_OFFLINE is set).
func fetchTokenizer(src *SingleFileSource, name string) (string, error) {
	dir := ""
	for _, f := range []string{"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"} {
		p, err := hub.ResolveFile(context.Background(), src.HubRepo, name+"/"+f, hub.Options{})
		if err != nil {
			return "", fmt.Errorf("sd.LoadPipeline %s: a single file holds no tokenizer and its config folder %s has no %s/; "+
				"fetching %s's %s/ from the Hub failed: %w. Set PipelineOptions.Tokenizer (loba train --tokenizer) to a CLIP "+
				"tokenizer folder or to openai's bpe_simple_vocab_16e6.txt.gz, or put a %s/ folder in the config folder",
				src.Path, src.ConfigDir, name, src.HubRepo, name, err, name)
		}
		dir = filepath.Dir(p)
	}
	return dir, nil
}

// loadSingleFileModels builds the UNet, the VAE and the text encoders from the source's layout and
// reads their weights from the single file into Ctx (the VAE float32 when force_upcast is set).
func (p *Pipeline) loadSingleFileModels(src *SingleFileSource, opts PipelineOptions) error {
	l := src.Layout
	var err error
	if p.UNet, err = unet.New(l.UNet); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(src.ConfigDir, "unet", "config.json"), err)
	}
	p.Kind = KindSD15
	if l.UNet.IsSDXL() {
		p.Kind = KindSDXL
	}
	p.VAEConfig = l.VAE
	if !opts.SkipVAE {
		if p.VAE, err = vae.New(l.VAE); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(src.ConfigDir, "vae", "config.json"), err)
		}
	}
	for _, te := range l.Text {
		m, err := clip.New(te.Config)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(src.ConfigDir, te.Component, "config.json"), err)
		}
		m.DType = p.DType
		p.TextEncoders = append(p.TextEncoders, m)
	}
	return p.loadSingleFileWeights(src, !opts.SkipTextEncoders)
}

// loadSingleFileWeights reads the weights of the built networks (the text encoders' only with
// withText) from the single file, one pass per dtype.
func (p *Pipeline) loadSingleFileWeights(src *SingleFileSource, withText bool) error {
	byDType := map[dtypes.DType]map[string]map[string]shapes.Shape{}
	ctxs := map[string]*model.Scope{}
	add := func(scope string, declared func() (map[string]shapes.Shape, error), dtype dtypes.DType) error {
		decl, err := declared()
		if err != nil {
			return fmt.Errorf("sd.LoadPipeline %s: listing the %s weights: %w", src.Path, scope, err)
		}
		if byDType[dtype] == nil {
			byDType[dtype] = map[string]map[string]shapes.Shape{}
		}
		byDType[dtype][scope], ctxs[scope] = decl, p.Ctx.At("%s", scope)
		return nil
	}
	err := add(ScopeUNet, p.UNet.Declared, p.DType)
	if err == nil && p.VAE != nil {
		err = add(ScopeVAE, p.VAE.Declared, p.VAEDType())
	}
	for i := 0; err == nil && withText && i < len(p.TextEncoders); i++ {
		err = add(textEncoderScopes[i], p.TextEncoders[i].Declared, p.DType)
	}
	if err != nil {
		return err
	}
	for _, dtype := range []dtypes.DType{p.DType, dtypes.Float32} {
		declared := byDType[dtype]
		delete(byDType, dtype)
		if len(declared) == 0 {
			continue
		}
		if err := singlefile.LoadInto(ctxs, src.Path, declared, singlefile.Options{DType: dtype, Layout: src.Layout}); err != nil {
			return fmt.Errorf("sd.LoadPipeline: %w (networks built from %s)", err, src.configs())
		}
	}
	return nil
}
