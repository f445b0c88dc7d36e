package slider

// Importer for ostris/ai-toolkit slider configs (config/examples/train_slider.example.yml): a
// `job: train` file whose one process has `type: slider` (jobs/process/TrainSliderProcess.py), read
// as toolkit/config.py and toolkit/config_modules.py read it (NetworkConfig, TrainConfig, ModelConfig,
// SaveConfig, SampleConfig, SliderConfig, SliderTargetConfig, SliderConfigAnchors), all at ai-toolkit
// 27a03a9. Those classes read their keys with kwargs.get and ignore the others, so an unknown key is
// ignored with a warning; every key the slider process reads is honoured, ignored with a warning, or
// an error (the table in SCHEMA.md, made in import_aitoolkit_*.go).

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// aitkFile is an ai-toolkit job file. Pointers tell given keys from absent ones (kwargs.get defaults).
type aitkFile struct {
	Job    string      `yaml:"job" slider:"required"`
	Config *aitkConfig `yaml:"config" slider:"required"`
}

type aitkConfig struct {
	Name           string        `yaml:"name" slider:"required"`
	TrainingFolder string        `yaml:"training_folder" slider:"required"`
	Process        []aitkProcess `yaml:"process" slider:"required"`
}

// aitkProcess is the slider process (BaseSDTrainProcess + TrainSliderProcess get_conf keys).
type aitkProcess struct {
	Type           string       `yaml:"type" slider:"required"`
	Name           *string      `yaml:"name"`
	TrainingFolder *string      `yaml:"training_folder"`
	TrainingSeed   *int64       `yaml:"training_seed"`
	Network        *aitkNetwork `yaml:"network"`
	Train          aitkTrain    `yaml:"train"`
	Model          *aitkModel   `yaml:"model" slider:"required"`
	Save           aitkSave     `yaml:"save"`
	Sample         aitkSample   `yaml:"sample"`
	Slider         aitkSlider   `yaml:"slider"`
	// Sections that train something the slider import cannot: errors when given.
	Datasets  aitkRaw `yaml:"datasets"`
	Embedding aitkRaw `yaml:"embedding"`
	Adapter   aitkRaw `yaml:"adapter"`
	Decorator aitkRaw `yaml:"decorator"`
	DoLorm    bool    `yaml:"do_lorm"`
}

type aitkNetwork struct {
	Type               *string  `yaml:"type"`
	Rank               *int     `yaml:"rank"`
	Linear             *int     `yaml:"linear"`
	Alpha              *float64 `yaml:"alpha"`
	LinearAlpha        *float64 `yaml:"linear_alpha"`
	Conv               *int     `yaml:"conv"`
	ConvAlpha          *float64 `yaml:"conv_alpha"`
	Dropout            *float64 `yaml:"dropout"`
	NetworkKwargs      aitkRaw  `yaml:"network_kwargs"`
	PretrainedLoRAPath *string  `yaml:"pretrained_lora_path"`
	AllLayers          bool     `yaml:"all_layers"`
}

type aitkTrain struct {
	NoiseScheduler     *string              `yaml:"noise_scheduler"`
	Steps              *int                 `yaml:"steps"`
	LR                 *float64             `yaml:"lr"`
	Optimizer          *string              `yaml:"optimizer"`
	OptimizerParams    map[string]aitkValue `yaml:"optimizer_params"`
	LRScheduler        *string              `yaml:"lr_scheduler"`
	LRSchedulerParams  map[string]aitkValue `yaml:"lr_scheduler_params"`
	MaxDenoisingSteps  *int                 `yaml:"max_denoising_steps"`
	BatchSize          *int                 `yaml:"batch_size"`
	DType              *string              `yaml:"dtype"`
	GradCheckpointing  *bool                `yaml:"gradient_checkpointing"`
	TrainUNet          *bool                `yaml:"train_unet"`
	TrainTextEncoder   bool                 `yaml:"train_text_encoder"`
	MinSNRGamma        *float64             `yaml:"min_snr_gamma"`
	NoiseOffset        *float64             `yaml:"noise_offset"`
	DisableSampling    bool                 `yaml:"disable_sampling"`
	LearnableSNRGOS    bool                 `yaml:"learnable_snr_gos"`
	EMAConfig          *aitkEMA             `yaml:"ema_config"`
	GradAccumulation   *int                 `yaml:"gradient_accumulation"`
	GradAccumSteps     *int                 `yaml:"gradient_accumulation_steps"`
	DoParamSwapping    bool                 `yaml:"do_paramiter_swapping"`
	StartStep          *int                 `yaml:"start_step"`
	FreeU              bool                 `yaml:"free_u"`
	MergeNetworkOnSave bool                 `yaml:"merge_network_on_save"`
}

type aitkEMA struct {
	UseEMA bool `yaml:"use_ema"`
}

type aitkModel struct {
	NameOrPath        string  `yaml:"name_or_path" slider:"required"`
	IsV2              bool    `yaml:"is_v2"`
	IsXL              bool    `yaml:"is_xl"`
	IsVPred           bool    `yaml:"is_v_pred"`
	Arch              *string `yaml:"arch"`
	IsV3              bool    `yaml:"is_v3"`
	IsFlux            bool    `yaml:"is_flux"`
	IsPixart          bool    `yaml:"is_pixart"`
	IsPixartSigma     bool    `yaml:"is_pixart_sigma"`
	IsAuraflow        bool    `yaml:"is_auraflow"`
	IsLumina2         bool    `yaml:"is_lumina2"`
	IsSSD             bool    `yaml:"is_ssd"`
	IsVega            bool    `yaml:"is_vega"`
	RefinerNameOrPath *string `yaml:"refiner_name_or_path"`
	InferenceLoRAPath *string `yaml:"inference_lora_path"`
	AssistantLoRAPath *string `yaml:"assistant_lora_path"`
}

type aitkSave struct {
	DType     *string `yaml:"dtype"`
	SaveEvery *int    `yaml:"save_every"`
}

type aitkSample struct {
	SampleEvery       *int             `yaml:"sample_every"`
	Width             *int             `yaml:"width"`
	Height            *int             `yaml:"height"`
	Prompts           []string         `yaml:"prompts"`
	Samples           []aitkSampleItem `yaml:"samples"`
	Neg               *string          `yaml:"neg"`
	Seed              *int64           `yaml:"seed"`
	GuidanceScale     *float64         `yaml:"guidance_scale"`
	SampleSteps       *int             `yaml:"sample_steps"`
	NetworkMultiplier *float64         `yaml:"network_multiplier"`
	WalkSeed          bool             `yaml:"walk_seed"`
}

type aitkSampleItem struct {
	Prompt            string   `yaml:"prompt" slider:"required"`
	Neg               *string  `yaml:"neg"`
	NetworkMultiplier *float64 `yaml:"network_multiplier"`
}

type aitkSlider struct {
	Targets        []aitkTarget `yaml:"targets"`
	Anchors        []aitkAnchor `yaml:"anchors"`
	Resolutions    []Resolution `yaml:"resolutions"`
	BatchFullSlide *bool        `yaml:"batch_full_slide"`
	UseAdapter     *string      `yaml:"use_adapter"`
}

// aitkTarget is SliderTargetConfig.
type aitkTarget struct {
	TargetClass string   `yaml:"target_class"`
	Positive    string   `yaml:"positive"`
	Negative    string   `yaml:"negative"`
	Multiplier  *float64 `yaml:"multiplier"`
	Weight      *float64 `yaml:"weight"`
	Shuffle     bool     `yaml:"shuffle"`
}

// aitkAnchor is SliderConfigAnchors.
type aitkAnchor struct {
	Prompt     string   `yaml:"prompt"`
	NegPrompt  string   `yaml:"neg_prompt"`
	Multiplier *float64 `yaml:"multiplier"`
}

// aitkRaw records whether a section the import does not read is given (non-null and non-empty).
type aitkRaw struct{ set bool }

func (r *aitkRaw) UnmarshalYAML(n *yaml.Node) error {
	r.set = !((n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && len(n.Content) == 0)
	return nil
}

// aitkValue keeps a value of a free-form parameter mapping (optimizer_params, lr_scheduler_params),
// which ai-toolkit passes on as keyword arguments.
type aitkValue struct{ node *yaml.Node }

func (v *aitkValue) UnmarshalYAML(n *yaml.Node) error {
	v.node = n
	return nil
}

// aitkImport is one import of an ai-toolkit config.
type aitkImport struct {
	*importer
	pp string // the key path of the slider process: "config.process[0]"
}

// ImportAIToolkit reads an ai-toolkit slider config (job: train, one process of type slider). The
// preset reproduces TrainSliderProcess: objective slider with the empty prompt as the neutral and
// η = 1 (its four prompt pairs are LOBA's bidirectional slider entries), mode leco (t* =
// timesteps_1000[int(k·1000/N)]) with the adapter off and no CFG in the partial denoise, k drawn in
// [1, N−2], ai-toolkit's own scheduler construction and its module selection. Anchors become U-LOBA
// anchors at both polarities. Warnings list what was mapped approximately or ignored.
func ImportAIToolkit(path string) (*Preset, []string, error) {
	f, d, err := readAIToolkit(path)
	if err != nil {
		return nil, nil, err
	}
	imp := &aitkImport{importer: &importer{file: path, src: d.src, warnings: d.warnings}, pp: "config.process[0]"}
	p := &Preset{}
	if err := imp.mapProcess(f, p); err != nil {
		return nil, nil, err
	}
	return finishImport(p, path, imp.warnings)
}

// readAIToolkit reads the file as toolkit/config.py get_config does (${VAR} replaced from the
// environment, then every "[name]" by config.name), checks that it holds one slider process, and
// decodes it. The decoder holds the line of every key and the warnings for the keys ignored.
func readAIToolkit(path string) (*aitkFile, *decoder, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if data, err = expandAIToolkitEnv(data, path); err != nil {
		return nil, nil, err
	}
	n, err := parseYAML(data, path)
	if err != nil {
		return nil, nil, err
	}
	if err := checkAIToolkitJob(n, path); err != nil {
		return nil, nil, err
	}
	if name := mapValue(mapValue(n, "config"), "name"); name != nil && name.Kind == yaml.ScalarNode {
		replaceName(n, name.Value)
	}
	f := &aitkFile{}
	d := &decoder{src: newSource(path), lenient: true, warnUnknown: true, ignored: aitkIgnoredKey,
		hint: "ai-toolkit's slider process does not read it, and its config classes ignore unknown keys; so does the import"}
	d.decode(n, reflect.ValueOf(f).Elem(), "")
	if err := d.err(); err != nil {
		return nil, nil, err
	}
	return f, d, nil
}

var aitkEnvVar = regexp.MustCompile(`\$\{([^}]+)\}`)

// expandAIToolkitEnv is config.py replace_env_vars_in_string: ${VAR} becomes the variable's value;
// an unset variable is an error (ai-toolkit stops on it too).
func expandAIToolkitEnv(data []byte, file string) ([]byte, error) {
	var out bytes.Buffer
	last := 0
	for _, m := range aitkEnvVar.FindAllSubmatchIndex(data, -1) {
		name := string(data[m[2]:m[3]])
		value, ok := os.LookupEnv(name)
		if !ok {
			line := bytes.Count(data[:m[0]], []byte("\n")) + 1
			return nil, fmt.Errorf("%s:%d: environment variable %s is not set (ai-toolkit replaces ${%s} with it and stops when it is unset)", file, line, name, name)
		}
		out.Write(data[last:m[0]])
		out.WriteString(value)
		last = m[1]
	}
	out.Write(data[last:])
	return out.Bytes(), nil
}

// replaceName replaces "[name]" in every string value, as config.py preprocess_config does.
func replaceName(n *yaml.Node, name string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		n.Value = strings.ReplaceAll(n.Value, "[name]", name)
		return
	}
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 {
			continue // a key
		}
		replaceName(c, name)
	}
}

// mapValue returns the value of key in mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// checkAIToolkitJob checks, before anything is decoded, that the file is a train job with exactly
// one process of type slider (TrainJob process_dict: "slider" is TrainSliderProcess).
func checkAIToolkitJob(n *yaml.Node, file string) error {
	at := func(node *yaml.Node, path, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s: %s", file, node.Line, path, fmt.Sprintf(format, args...))
	}
	if job := mapValue(n, "job"); job != nil && job.Value != "train" {
		return at(job, "job", "invalid value %q; LOBA imports ai-toolkit slider training: job train with one process of type slider (extension jobs such as concept_slider train another loss)", job.Value)
	}
	procs := mapValue(mapValue(n, "config"), "process")
	if procs == nil || procs.Kind != yaml.SequenceNode {
		return nil // the decoder reports it
	}
	switch len(procs.Content) {
	case 0:
		return at(procs, "config.process", "empty; ai-toolkit stops on it too: give one process of type slider")
	case 1:
	default:
		return at(procs.Content[1], "config.process[1]", "ai-toolkit runs every process in turn; LOBA imports one slider process per file: keep one")
	}
	typ := mapValue(procs.Content[0], "type")
	if typ == nil || typ.Value == "slider" {
		return nil
	}
	why := "it is not a slider process; LOBA imports ai-toolkit slider configs only (type slider, TrainSliderProcess)"
	if typ.Value == "slider_old" {
		why = "TrainSliderProcessOld (adapter on in the partial denoise, one pair per step) is not supported; the importer reads type slider (TrainSliderProcess)"
	}
	return at(typ, "config.process[0].type", "invalid value %q: %s", typ.Value, why)
}

// isAIToolkitConfig tells an ai-toolkit job file by its top-level job and config keys, which no LOBA
// preset has.
func isAIToolkitConfig(n *yaml.Node) bool {
	return n.Kind == yaml.MappingNode && hasKey(n, "job") && hasKey(n, "config")
}
