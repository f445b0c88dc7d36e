package lora

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/safetensors"
)

// Key suffixes of one module in a kohya file.
const (
	suffixDown  = "lora_down.weight"
	suffixUp    = "lora_up.weight"
	suffixAlpha = "alpha"
)

// BaseModel values of SaveOptions.BaseModel (kohya's ss_base_model_version).
const (
	BaseSD1    = "sd_v1"
	BaseSD2    = "sd_v2"
	BaseSDXL10 = "sdxl_base_v1-0"
)

// baseModels maps ss_base_model_version to the modelspec values kohya's sai_model_spec.py writes:
// architecture (epsilon, v-prediction), implementation, resolution (epsilon, v).
var baseModels = map[string]struct{ archEps, archV, impl, resEps, resV string }{
	BaseSD1:    {"stable-diffusion-v1", "stable-diffusion-v1", "diffusers", "512x512", "512x512"},
	BaseSD2:    {"stable-diffusion-v2-512", "stable-diffusion-v2-768-v", "diffusers", "512x512", "768x768"},
	BaseSDXL10: {"stable-diffusion-xl-v1-base", "stable-diffusion-xl-v1-base", "https://github.com/Stability-AI/generative-models", "1024x1024", "1024x1024"},
}

// SaveOptions tunes SaveKohya / WriteKohya (and SavePEFT, which uses DType and Metadata).
type SaveOptions struct {
	// DType of the lora_down/lora_up tensors: safetensors.F32, F16 (default, "") or BF16. The 0-d
	// alpha is always written as F32.
	DType safetensors.DType
	// Layout of the UNet names: LayoutDiffusers (default) or LayoutSAI (SDXL only).
	Layout string
	// BaseModel is ss_base_model_version: BaseSD1, BaseSD2 or BaseSDXL10 (required). It also picks the
	// text-encoder prefixes (lora_te for SD1/2, lora_te1/lora_te2 for SDXL) and the modelspec values.
	BaseModel string
	// PredictionType is "epsilon" (default) or "v_prediction" ("v").
	PredictionType string
	// Title is modelspec.title (default: the file name without extension).
	Title string
	// Date is modelspec.date; the zero value leaves the key out, so the same weights give the same
	// file bytes (the trainer sets it from SOURCE_DATE_EPOCH when that is set).
	Date time.Time
	// Resolution is modelspec.resolution, e.g. "1024x1024" (default: the base model's).
	Resolution string
	// Metadata is merged over the standard keys (LOBA's own JSON: preset, prompts, settings…).
	Metadata map[string]string
}

// isSDXL reports whether the options describe an SDXL model.
func (o *SaveOptions) isSDXL() bool { return strings.HasPrefix(o.BaseModel, "sdxl") }

// check validates the options and fills the defaults.
func (o *SaveOptions) check() error {
	if o.DType == "" {
		o.DType = safetensors.F16
	}
	if o.DType != safetensors.F32 && o.DType != safetensors.F16 && o.DType != safetensors.BF16 {
		return fmt.Errorf("SaveOptions.DType %q is not supported (valid: %s, %s, %s)", o.DType, safetensors.F32, safetensors.F16, safetensors.BF16)
	}
	if o.Layout == "" {
		o.Layout = LayoutDiffusers
	}
	if o.Layout != LayoutDiffusers && o.Layout != LayoutSAI {
		return fmt.Errorf("SaveOptions.Layout %q is not supported (valid: %q, %q)", o.Layout, LayoutDiffusers, LayoutSAI)
	}
	if _, ok := baseModels[o.BaseModel]; !ok {
		return fmt.Errorf("SaveOptions.BaseModel %q is not supported (valid: %q, %q, %q)", o.BaseModel, BaseSD1, BaseSD2, BaseSDXL10)
	}
	if o.Layout == LayoutSAI && !o.isSDXL() {
		return fmt.Errorf("SaveOptions.Layout %q needs an SDXL BaseModel, got %q: kohya writes SD1.x/2.x LoRAs with diffusers names, "+
			"and diffusers cannot load SD1.x LoRAs with LDM names", LayoutSAI, o.BaseModel)
	}
	switch o.PredictionType {
	case "", "epsilon":
		o.PredictionType = "epsilon"
	case "v", "v_prediction":
		o.PredictionType = "v"
	default:
		return fmt.Errorf("SaveOptions.PredictionType %q is not supported (valid: \"epsilon\", \"v_prediction\")", o.PredictionType)
	}
	return nil
}

// SaveKohya writes the networks' current weights (read from ctxRoot, see Network.Weights) as a
// kohya LoRA file. See WriteKohya.
func SaveKohya(ctxRoot *model.Scope, path string, nets []*Network, opts SaveOptions) error {
	ws := map[string]map[string]ModuleWeights{}
	for _, n := range nets {
		w, err := n.Weights(ctxRoot)
		if err != nil {
			return fmt.Errorf("lora: SaveKohya %s: %w", path, err)
		}
		ws[n.Component] = w
	}
	return WriteKohya(path, nets, ws, opts)
}

// WriteKohya writes a kohya LoRA file (networks/lora.py save_weights): for each module
// <name>.lora_down.weight, <name>.lora_up.weight (opts.DType) and the 0-d <name>.alpha (F32), with
// <name> = KohyaName, and the standard metadata (ss_network_module "networks.lora",
// ss_network_dim, ss_network_alpha, ss_network_args when 3×3 convs have their own rank/alpha,
// ss_base_model_version, modelspec.sai_model_spec/architecture/implementation/title/date/
// resolution/prediction_type), with opts.Metadata merged over them. w maps component → module
// path → weights. The write is atomic (safetensors.WriteEntries).
//
// A network with layer multipliers (SetLayerMultipliers) is written with each module's alpha
// scaled by its multiplier (a multiplier of 0: alpha kept, lora_up zeroed) and the multipliers
// recorded under MetaLayerMultipliers; ss_network_alpha stays the networks' own alpha.
func WriteKohya(path string, nets []*Network, w map[string]map[string]ModuleWeights, opts SaveOptions) error {
	if err := opts.check(); err != nil {
		return fmt.Errorf("lora: WriteKohya %s: %w", path, err)
	}
	if len(nets) == 0 {
		return fmt.Errorf("lora: WriteKohya %s: no network", path)
	}
	var entries []safetensors.Entry
	seen := map[string]string{}
	for _, n := range nets {
		for _, m := range n.Modules {
			name, err := n.KohyaName(m, opts.Layout, opts.isSDXL())
			if err != nil {
				return fmt.Errorf("lora: WriteKohya %s: %w", path, err)
			}
			if prev, dup := seen[name]; dup {
				return fmt.Errorf("lora: WriteKohya %s: %s %s and %s both write %s", path, n.Component, m.Path, prev, name)
			}
			seen[name] = n.Component + " " + m.Path
			fileAlpha, upScale := n.fileAlpha(m)
			es, err := moduleEntries(name+"."+suffixDown, name+"."+suffixUp, n, m, w[n.Component], opts.DType, upScale)
			if err != nil {
				return fmt.Errorf("lora: WriteKohya %s: %w", path, err)
			}
			alpha, _ := encodeFloats(safetensors.F32, []float64{fileAlpha})
			entries = append(entries, es...)
			entries = append(entries, safetensors.Entry{Name: name + "." + suffixAlpha, DType: safetensors.F32, Shape: []int{}, Data: alpha})
		}
	}
	return safetensors.WriteEntries(path, entries, kohyaMetadata(path, nets, opts))
}

// moduleEntries encodes a module's down and up weights as entries named downName and upName, in
// dtype dt, with the up weight multiplied by upScale.
func moduleEntries(downName, upName string, n *Network, m *Module, w map[string]ModuleWeights, dt safetensors.DType, upScale float64) ([]safetensors.Entry, error) {
	mw, ok := w[m.Path]
	if !ok || mw.Down == nil || mw.Up == nil {
		return nil, fmt.Errorf("no weights for %s module %s", n.Component, m.Path)
	}
	var out []safetensors.Entry
	for _, x := range []struct {
		name  string
		t     *tensors.Tensor
		want  []int
		scale float64
	}{{downName, mw.Down, m.DownShape(), 1}, {upName, mw.Up, m.UpShape(), upScale}} {
		if got := x.t.Shape().Dimensions; !slices.Equal(got, x.want) {
			return nil, fmt.Errorf("%s module %s: %s has shape %v, want %v", n.Component, m.Path, x.name, got, x.want)
		}
		v, err := float64s(x.t)
		if err != nil {
			return nil, fmt.Errorf("%s module %s: %w", n.Component, m.Path, err)
		}
		if x.scale != 1 {
			for j := range v {
				v[j] *= x.scale
			}
		}
		b, err := encodeFloats(dt, v)
		if err != nil {
			return nil, err
		}
		out = append(out, safetensors.Entry{Name: x.name, DType: dt, Shape: x.want, Data: b})
	}
	return out, nil
}

// pyFloat formats a float as Python's str(float) does for the usual values ("1.0", "0.5", "16.0").
func pyFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return s
}

// kohyaMetadata builds the standard metadata of a kohya file.
func kohyaMetadata(path string, nets []*Network, opts SaveOptions) map[string]string {
	// ss_network_dim/alpha: the most common rank/alpha of the Linear and 1×1 modules; the 3×3 convs'
	// go to ss_network_args (conv_dim, conv_alpha) as kohya's LoCon writes them.
	mode := func(conv bool) (int, float64, bool) {
		ranks, alphas := map[int]int{}, map[float64]int{}
		for _, n := range nets {
			for _, m := range n.Modules {
				if (m.Kind == Conv && m.Kernel > 1) == conv {
					ranks[m.Rank]++
					alphas[m.Alpha]++
				}
			}
		}
		if len(ranks) == 0 {
			return 0, 0, false
		}
		r, a := 0, 0.0
		for k, c := range ranks {
			if c > ranks[r] || (c == ranks[r] && k > r) {
				r = k
			}
		}
		first := true
		for k, c := range alphas {
			if first || c > alphas[a] || (c == alphas[a] && k > a) {
				a, first = k, false
			}
		}
		return r, a, true
	}
	md := map[string]string{"ss_network_module": "networks.lora", "ss_base_model_version": opts.BaseModel}
	r, a, ok := mode(false)
	cr, ca, convOK := mode(true)
	if !ok {
		r, a = cr, ca
	}
	md["ss_network_dim"] = strconv.Itoa(r)
	md["ss_network_alpha"] = pyFloat(a)
	if convOK {
		args, _ := json.Marshal(map[string]string{"conv_dim": strconv.Itoa(cr), "conv_alpha": pyFloat(ca)})
		md["ss_network_args"] = string(args)
	}
	bm := baseModels[opts.BaseModel]
	arch, res := bm.archEps, bm.resEps
	if opts.PredictionType == "v" {
		arch, res = bm.archV, bm.resV
	}
	if opts.Resolution != "" {
		res = opts.Resolution
	}
	title := opts.Title
	if title == "" {
		title = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	md["modelspec.sai_model_spec"] = "1.0.1"
	md["modelspec.architecture"] = arch + "/lora"
	md["modelspec.implementation"] = bm.impl
	md["modelspec.title"] = title
	if !opts.Date.IsZero() {
		md["modelspec.date"] = opts.Date.UTC().Format("2006-01-02T15:04:05")
	}
	md["modelspec.resolution"] = res
	md["modelspec.prediction_type"] = opts.PredictionType
	if lm := layerMultipliersMeta(nets); lm != "" {
		md[MetaLayerMultipliers] = lm
	}
	for k, v := range opts.Metadata {
		md[k] = v
	}
	return md
}
