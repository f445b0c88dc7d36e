// Package slider holds LOBA's preset format: one YAML file with everything a training run needs (model,
// objective, adapter, optimizer, sampling, prompts), its defaults and validation, the expansion of its
// prompt entries into the normalized training units the trainer iterates over (docs/ALGORITHMS.md §1–2), and
// importers for the anchors' files: LECO's run config + prompts YAML, Concept Sliders' prompts YAML
// (+ LECO-schema config) and sd-scripts' LECO prompt TOML. The schema is documented in SCHEMA.md.
//
// Unknown keys are errors everywhere (the anchors silently ignore them): the error names the file, the
// line, the key path (e.g. "train.lerning_rate") and the valid keys at that level.
package slider

// Preset is LOBA's own YAML schema. Load/ParsePreset return it normalized (every default filled in,
// every pointer non-nil except Model.RescaleBetasZeroSNR and the entries' Mask), so the trainer reads
// plain values.
type Preset struct {
	Model Model `yaml:"model" json:"model"`

	// Objective: leco (§1) | slider (§2 bidirectional: each target trains both directions) |
	// slider_text (§2 text-slider form, Concept Sliders). Default: slider when targets are given, else leco.
	Objective string `yaml:"objective" json:"objective"`
	// Mode: leco (exact reproduction: t* = timesteps_1000[int(k·1000/N)] with its off-by-19, adapter on
	// during the partial denoise, the anchors' hard-coded partial-denoise scheduler) | loba (default:
	// evaluate at the timestep actually reached, adapter off during the partial denoise).
	Mode string `yaml:"mode" json:"mode"`
	// DenoiseWithAdapter keeps the trained adapter on (at each entry's multiplier) during the partial
	// denoise. Default: true in mode leco, false in mode loba.
	DenoiseWithAdapter *bool `yaml:"denoise_with_adapter" json:"denoise_with_adapter"`
	// DenoiseGuidance is the CFG scale of the partial denoise (default 3).
	DenoiseGuidance *float64 `yaml:"denoise_guidance" json:"denoise_guidance"`
	// MaxDenoisingSteps is N: the partial-denoise scheduler runs N steps, k is drawn in
	// [MinDenoisingSteps, N−1] (default 50).
	MaxDenoisingSteps int `yaml:"max_denoising_steps" json:"max_denoising_steps"`
	// MinDenoisingSteps is the smallest k (default 1, as the anchors). 0 also trains at the first
	// scheduler timestep, on pure noise, where a zero-terminal-SNR v-prediction model chooses colour
	// and layout: a colour slider or a colour erase on such a model needs it (with timestep_range);
	// a size slider drifts in colour with it (toy world: colour off-target 0.17 against 0.08).
	MinDenoisingSteps *int `yaml:"min_denoising_steps" json:"min_denoising_steps"`
	// TimestepRange [lo, hi] keeps only the k whose evaluation timestep t* lies in [lo, hi] (model
	// timesteps, 0 … num_train_timesteps−1): train where the concept is decided — colour and layout at
	// the highest noise levels, texture and detail at the lowest (ai-toolkit's min/max timestep, for
	// the partial denoise). Empty (default): every k.
	TimestepRange []int `yaml:"timestep_range,omitempty" json:"timestep_range,omitempty"`
	// TimestepSchedule moves the timestep window during training (RC-LOBA): from each window's step
	// on, until the next window's, only the k whose t* lies in its range train. The first window
	// starts at step 0. When given it wins over TimestepRange (see TimestepRangeAt). Empty (default):
	// TimestepRange throughout.
	TimestepSchedule []TimestepWindow `yaml:"timestep_schedule,omitempty" json:"timestep_schedule,omitempty"`
	// DenoiseScheduler: ddim (default) | ddpm | euler.
	DenoiseScheduler string `yaml:"denoise_scheduler" json:"denoise_scheduler"`
	// DenoiseSchedulerConfig: model (the model's scheduler_config.json plus the model.* overrides) |
	// anchor (what LECO / Concept Sliders / sd-scripts build: scaled_linear betas 0.00085–0.012, 1000
	// train steps, clip_sample false, all other diffusers defaults: steps_offset 0, "leading" spacing,
	// set_alpha_to_one true; prediction type from model.prediction_type, epsilon when ""). Default: anchor
	// in mode leco, model in mode loba.
	DenoiseSchedulerConfig string `yaml:"denoise_scheduler_config" json:"denoise_scheduler_config"`
	// TimestepSpacing overrides the scheduler's spacing: "" (from the scheduler config) | leading |
	// trailing | linspace.
	TimestepSpacing string `yaml:"timestep_spacing" json:"timestep_spacing"`
	// TargetNorm rescales the training target (§2): none (default) | normlike | frobenius.
	TargetNorm string `yaml:"target_norm" json:"target_norm"`

	// Denoise is where a step's x_t comes from (docs/ALGORITHMS.md §4): partial (default: the partial
	// denoise of §1, or its trajectory cache) | none (x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, x₀ from a pool the
	// base model generated once, t drawn in timestep_range).
	Denoise string `yaml:"denoise" json:"denoise"`
	// TrajectoryCache samples the partial denoise from cached trajectories (mode loba).
	TrajectoryCache TrajectoryCache `yaml:"trajectory_cache" json:"trajectory_cache"`
	// X0Pool is denoise none's pool of base-model latents.
	X0Pool X0Pool `yaml:"x0_pool" json:"x0_pool"`

	Network Network `yaml:"network" json:"network"`
	Train   Train   `yaml:"train" json:"train"`
	Sample  Sample  `yaml:"sample" json:"sample"`
	Eval    Eval    `yaml:"eval" json:"eval"`
	Output  Output  `yaml:"output" json:"output"`

	// Prompts are LECO prompt entries, used as they are by every objective.
	Prompts []Prompt `yaml:"prompts,omitempty" json:"prompts,omitempty"`
	// Targets are slider targets, expanded per objective (slider: bidirectional pairs; slider_text: the
	// Concept Sliders mapping).
	Targets []Target `yaml:"targets,omitempty" json:"targets,omitempty"`

	// Anchors are U-LOBA's anchor prompts (docs/ALGORITHMS.md §5; ai-toolkit's slider anchors): each
	// adds λ_anchor · mean((ε_m(x,t,a) − ε_0(x,t,a))²) to the loss, holding the adapter's prediction for
	// the anchor to the frozen teacher's.
	Anchors []Anchor `yaml:"anchors,omitempty" json:"anchors,omitempty"`
	// AnchorWeight is λ_anchor (default 1 when anchors are given, else 0; >= 0).
	AnchorWeight *float64 `yaml:"anchor_weight" json:"anchor_weight"`
	// ConceptMask builds U-LOBA's automatic concept mask W for the erase entries without a mask of
	// their own.
	ConceptMask ConceptMask `yaml:"concept_mask" json:"concept_mask"`
	// StyleStats are the style prediction's per-channel statistics a style entry's target takes:
	// mean_std (default, docs/ALGORITHMS.md §5: mean and standard deviation) | mean (the means only).
	StyleStats string `yaml:"style_stats" json:"style_stats"`

	src *source // where the preset was read from (file, line of every key), for error messages
}

// Model selects the base model and how its scheduler and text encoders are read.
type Model struct {
	// NameOrPath is a diffusers folder, a hub id ("org/repo[@rev]") or a single-file checkpoint;
	// "" = LOBA's built-in toy model.
	NameOrPath string `yaml:"name_or_path" json:"name_or_path"`
	// Variant picks diffusers weight variants ("fp16" → *.fp16.safetensors); "" = the plain files.
	Variant string `yaml:"variant" json:"variant"`
	// Kind: auto (default: detected from the model's configs) | sd15 | sdxl.
	Kind string `yaml:"kind" json:"kind"`
	// PredictionType overrides the scheduler config: "" (from the config) | epsilon | v_prediction.
	PredictionType string `yaml:"prediction_type" json:"prediction_type"`
	// RescaleBetasZeroSNR overrides the scheduler config when set (zero-terminal-SNR betas).
	RescaleBetasZeroSNR *bool `yaml:"rescale_betas_zero_snr,omitempty" json:"rescale_betas_zero_snr,omitempty"`
	// HiddenState is the text-encoder output used as conditioning: auto (default: last for SD1.x/2.x,
	// penultimate for SDXL, as diffusers and the anchors) | last | penultimate.
	HiddenState string `yaml:"hidden_state" json:"hidden_state"`
	// ClipSkip is the A1111 spelling of HiddenState (1 = last, 2 = penultimate); Normalize folds it into
	// HiddenState and clears it.
	ClipSkip int `yaml:"clip_skip,omitempty" json:"clip_skip,omitempty"`
	// MergeLoRAs are kohya LoRA files merged into the frozen base weights before training (W' = W +
	// s·(α/r)·up·down), e.g. a style LoRA the slider should work on top of ("one slider out").
	MergeLoRAs []MergeLoRA `yaml:"merge_loras,omitempty" json:"merge_loras,omitempty"`
}

// MergeLoRA is one LoRA file merged into the base model, at a strength.
type MergeLoRA struct {
	Path     string  `yaml:"path" json:"path" slider:"required"`
	Strength float64 `yaml:"strength" json:"strength"` // default 1
}

// Network configures the adapter (docs/ALGORITHMS.md §6).
type Network struct {
	// Targets is the UNet's module preset: lierla (default) | c3lier | noxattn | xattn | full | none
	// (no UNet module: a text-encoder-only adapter).
	Targets string   `yaml:"targets" json:"targets"`
	Rank    int      `yaml:"rank" json:"rank"`   // default 4
	Alpha   *float64 `yaml:"alpha" json:"alpha"` // default 1; scale = alpha/rank
	// ConvRank / ConvAlpha apply to Conv2d modules (LoCon); default: Rank / Alpha.
	ConvRank  int     `yaml:"conv_rank" json:"conv_rank"`
	ConvAlpha float64 `yaml:"conv_alpha" json:"conv_alpha"`
	// Init: zero (default: down kaiming-uniform, up zero) | orthonormal (frozen random orthonormal up,
	// only down trains; Flux sliders).
	Init string `yaml:"init" json:"init"`
	// Selectors refine the preset's modules, in order: later selectors override the rank / alpha /
	// lr_scale of earlier ones; a matching exclude always drops the module (see Network.Resolve).
	Selectors []Selector `yaml:"selectors,omitempty" json:"selectors,omitempty"`
	// LayerMultipliers scale the adapter per layer (U-LOBA's layer-wise schedule): selector (the
	// syntax of Selector.Match: a module type, a block path such as "mid_block" or
	// "up_blocks.*.attentions", or re:<regexp>) → multiplier (>= 0). A module's multiplier is the
	// product of the multipliers of every selector matching it (1 when none does), applied in training
	// and written into the LoRA file. Empty (default): 1 everywhere.
	LayerMultipliers map[string]float64 `yaml:"layer_multipliers,omitempty" json:"layer_multipliers,omitempty"`
	// TextEncoder is the text encoders' adapter (off by default); with Targets "none" it is the whole
	// adapter.
	TextEncoder TextEncoderNetwork `yaml:"text_encoder" json:"text_encoder"`
}

// Selector matches adapter modules by their diffusers module path (e.g.
// "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k") with a Go regular expression searched
// anywhere in the path ("attn2", "^mid_block\\.", "up_blocks\\.[0-9]+\\.attentions").
type Selector struct {
	Match string `yaml:"match" json:"match" slider:"required"`
	// Exclude drops the matching modules from training.
	Exclude bool `yaml:"exclude,omitempty" json:"exclude,omitempty"`
	// Rank, Alpha, LRScale override the network's values for the matching modules (0 / unset = inherit;
	// LRScale multiplies the learning rate).
	Rank    int      `yaml:"rank,omitempty" json:"rank,omitempty"`
	Alpha   *float64 `yaml:"alpha,omitempty" json:"alpha,omitempty"`
	LRScale *float64 `yaml:"lr_scale,omitempty" json:"lr_scale,omitempty"`
}

// Train configures the optimization.
type Train struct {
	Steps int     `yaml:"steps" json:"steps"` // default 500
	LR    float64 `yaml:"lr" json:"lr"`       // default 1e-4
	// Optimizer: adamw (default) | lion | sgd.
	Optimizer string `yaml:"optimizer" json:"optimizer"`
	// WeightDecay: default 1e-2 for adamw (torch), 0 for lion and sgd.
	WeightDecay *float64 `yaml:"weight_decay" json:"weight_decay"`
	// Betas: default [0.9, 0.999] for adamw, [0.9, 0.99] for lion; unused by sgd.
	Betas []float64 `yaml:"betas,omitempty" json:"betas,omitempty"`
	// Eps: adamw's epsilon (default 1e-8).
	Eps float64 `yaml:"eps" json:"eps"`
	// Momentum: sgd only (default 0).
	Momentum float64 `yaml:"momentum" json:"momentum"`
	// LRScheduler: constant (default) | constant_with_warmup | linear | cosine | cosine_with_restarts |
	// polynomial (diffusers get_scheduler).
	LRScheduler string  `yaml:"lr_scheduler" json:"lr_scheduler"`
	WarmupSteps int     `yaml:"warmup_steps" json:"warmup_steps"`
	MinLR       float64 `yaml:"min_lr" json:"min_lr"`
	// MaxGradNorm clips the global gradient norm; 0 = off (default).
	MaxGradNorm float64 `yaml:"max_grad_norm" json:"max_grad_norm"`
	// LossType: l2 (default) | l1 | huber | smooth_l1; HuberC (default 0.1), HuberSchedule constant |
	// exponential | snr (default, sd-scripts), HuberScale (default 1).
	LossType      string  `yaml:"loss_type" json:"loss_type"`
	HuberC        float64 `yaml:"huber_c" json:"huber_c"`
	HuberSchedule string  `yaml:"huber_schedule" json:"huber_schedule"`
	HuberScale    float64 `yaml:"huber_scale" json:"huber_scale"`
	// MinSNRGamma weights the loss per sample by min(SNR, γ)/SNR (ε) or /(SNR+1) (v); 0 = off.
	MinSNRGamma float64 `yaml:"min_snr_gamma" json:"min_snr_gamma"`
	// NoiseOffset, MultiresNoiseIterations (0 = off), MultiresNoiseDiscount (default 0.3) shape the
	// initial latent noise.
	NoiseOffset             float64 `yaml:"noise_offset" json:"noise_offset"`
	MultiresNoiseIterations int     `yaml:"multires_noise_iterations" json:"multires_noise_iterations"`
	MultiresNoiseDiscount   float64 `yaml:"multires_noise_discount" json:"multires_noise_discount"`
	// BatchSize and Resolution are the defaults of the prompt entries (1 and 512).
	BatchSize  int        `yaml:"batch_size" json:"batch_size"`
	Resolution Resolution `yaml:"resolution" json:"resolution"`
	// DType of the frozen model during training: auto (default: bfloat16 on a GPU, float32 on the
	// CPU) | float32 | bfloat16 | float16 (GPUs without bf16, e.g. a T4). The adapter, the optimizer
	// state and the loss stay float32.
	DType string `yaml:"dtype" json:"dtype"`
	// GradientCheckpointing recomputes each ResnetBlock2D's and BasicTransformerBlock's activations
	// in the backward pass instead of keeping them: auto (default: on for real-size models) | on |
	// off (true/false also read).
	GradientCheckpointing string `yaml:"gradient_checkpointing" json:"gradient_checkpointing"`
	// Attention is the attention implementation: auto (default: fused where the backend has it,
	// chunked for long sequences on the Go backend, else math) | math | chunked | fused (cuDNN flash
	// attention: XLA CUDA with train.dtype bfloat16 or float16, else an error when the graph builds).
	Attention string `yaml:"attention" json:"attention"`
	Seed      int64  `yaml:"seed" json:"seed"`
	// CheckpointEvery saves a resumable checkpoint every N steps (0 = only at the end);
	// KeepCheckpoints keeps the newest N (0 = all).
	CheckpointEvery int `yaml:"checkpoint_every" json:"checkpoint_every"`
	KeepCheckpoints int `yaml:"keep_checkpoints" json:"keep_checkpoints"`
	// SaveEvery writes a loadable LoRA every N steps, <out>/lora-step-N.safetensors, next to the final
	// lora.safetensors (ai-toolkit's save_every, LECO's save.per_steps, sd-scripts'
	// save_every_n_steps), so the best step can be picked afterwards; 0 = off (default).
	SaveEvery int `yaml:"save_every" json:"save_every"`
	// SaveDType of the LoRA file: float16 (default) | bfloat16 | float32; SaveLayout: diffusers
	// (default) | sai (SDXL kohya keys in the SAI/LDM layout).
	SaveDType  string `yaml:"save_dtype" json:"save_dtype"`
	SaveLayout string `yaml:"save_layout" json:"save_layout"`
}

// Sample configures the preview images rendered during and after training.
type Sample struct {
	// Strengths are the adapter multipliers of the sweep (default [-2, 0, 2]).
	Strengths []float64 `yaml:"strengths" json:"strengths"`
	// Prompts to render; empty = each entry's target prompt.
	Prompts        []string `yaml:"prompts" json:"prompts"`
	NegativePrompt string   `yaml:"negative_prompt" json:"negative_prompt"`
	Steps          int      `yaml:"steps" json:"steps"`                   // default 20
	GuidanceScale  float64  `yaml:"guidance_scale" json:"guidance_scale"` // default 7
	Seed           int64    `yaml:"seed" json:"seed"`
	// Every renders samples every N training steps (0 = only after training).
	Every int `yaml:"every" json:"every"`
	// StartNoise keeps the adapter at 0 while t > StartNoise (Concept Sliders' delayed start; SD1 800,
	// SDXL 700); 0 = off.
	StartNoise int `yaml:"start_noise" json:"start_noise"`
}

// Output names the run's files: <dir>/<name>.safetensors (default output/loba).
// Eval measures the trained adapter after training (lobanb/eval; toy-world read-outs): kind slider
// → effect_spearman / effect_slope on a numeric target and off-target change of the other
// attributes; kind erase → how often the erased value appears before and after, and how control
// prompts change. The run writes <out>/eval.json and <out>/grid.png.
type Eval struct {
	// Kind: "" (no evaluation) | slider | erase.
	Kind string `yaml:"kind" json:"kind"`
	// Target is the numeric attribute of a slider: area | size | size_class | blueness | redness | ...
	Target string `yaml:"target" json:"target"`
	// OffTarget lists the categorical attributes checked for preservation: a slider's off-target
	// attributes (default: all but the target's), an erase's attributes counted in control_change
	// (default: all). Leave out what the base model does not draw reliably (the toy base: shape).
	OffTarget []string `yaml:"off_target,omitempty" json:"off_target,omitempty"`
	// Attribute and Value name what an erase removes (e.g. color, red).
	Attribute string `yaml:"attribute" json:"attribute"`
	Value     string `yaml:"value" json:"value"`
	// Prompts are the evaluation prompts (erase: prompts asking for the value); Controls (erase) do not.
	Prompts  []string `yaml:"prompts,omitempty" json:"prompts,omitempty"`
	Controls []string `yaml:"controls,omitempty" json:"controls,omitempty"`
	Seeds    []int    `yaml:"seeds,omitempty" json:"seeds,omitempty"`
	// Strengths of a slider evaluation (default −2, −1, 0, 1, 2); Strength of an erase (default 1).
	Strengths []float64 `yaml:"strengths,omitempty" json:"strengths,omitempty"`
	Strength  float64   `yaml:"strength" json:"strength"`
	// Steps and GuidanceScale of the sampler (default 20 and 3).
	Steps         int     `yaml:"steps" json:"steps"`
	GuidanceScale float64 `yaml:"guidance_scale" json:"guidance_scale"`
	// StartNoise keeps the adapter at 0 while t > StartNoise, as Sample.StartNoise (Concept Sliders
	// evaluate their sliders this way); 0 = off.
	StartNoise int `yaml:"start_noise,omitempty" json:"start_noise,omitempty"`
}

type Output struct {
	Name string `yaml:"name" json:"name"`
	Dir  string `yaml:"dir" json:"dir"`
}

// Prompt is a LECO prompt entry (docs/ALGORITHMS.md §1, LECO prompt_util.py PromptSettings + sd-scripts'
// multiplier and weight).
type Prompt struct {
	Target string `yaml:"target" json:"target" slider:"required"`
	// Positive defaults to Target; Unconditional to ""; Neutral to Unconditional.
	Positive      *string `yaml:"positive" json:"positive"`
	Unconditional string  `yaml:"unconditional" json:"unconditional"`
	Neutral       *string `yaml:"neutral" json:"neutral"`
	// Action: erase (default, y = e_neu − g·(e_pos − e_unc)) | enhance (y = e_neu + g·(e_pos − e_unc)) |
	// keep (y = e_target: neutral defaults to target and g to 0) | style (ST-LOBA: target is the
	// content prompt, positive the style prompt, neutral the style-free reference, default "";
	// y = normlike_channel(e_content + g·(e_style − e_neutral), e_style)).
	Action        string   `yaml:"action" json:"action"`
	GuidanceScale *float64 `yaml:"guidance_scale" json:"guidance_scale"` // g (η of style), default 1
	// Resolution and BatchSize default to train.resolution and train.batch_size.
	Resolution        Resolution `yaml:"resolution" json:"resolution"`
	BatchSize         int        `yaml:"batch_size" json:"batch_size"`
	DynamicResolution bool       `yaml:"dynamic_resolution" json:"dynamic_resolution"`
	DynamicCrops      bool       `yaml:"dynamic_crops" json:"dynamic_crops"`
	// Multiplier is the adapter multiplier the entry trains at (signed, default 1); Weight its loss
	// weight (default 1).
	Multiplier *float64 `yaml:"multiplier" json:"multiplier"`
	Weight     *float64 `yaml:"weight" json:"weight"`
	// Mask restricts the entry's loss to a region (RC-LOBA); Preserve is λ_keep, the weight of the
	// preservation term outside it (default 1 with a mask, else 0; >= 0).
	Mask     *Mask    `yaml:"mask,omitempty" json:"mask,omitempty"`
	Preserve *float64 `yaml:"preserve" json:"preserve"`
}

// Target is a slider target (docs/ALGORITHMS.md §2; sd-scripts [[targets]], ai-toolkit slider targets).
type Target struct {
	TargetClass string `yaml:"target_class" json:"target_class" slider:"required"`
	// Positive and Negative are the two ends of the slider; at least one must be non-blank.
	Positive string `yaml:"positive" json:"positive"`
	Negative string `yaml:"negative" json:"negative"`
	// Neutral or Neutrals (one entry set per neutral); default: [target_class]. Normalize folds Neutral
	// into Neutrals.
	Neutral  *string  `yaml:"neutral,omitempty" json:"neutral,omitempty"`
	Neutrals []string `yaml:"neutrals" json:"neutrals"`
	// GuidanceScale η: default 4 for slider_text, 1 for slider (sd-scripts' default).
	GuidanceScale *float64 `yaml:"guidance_scale" json:"guidance_scale"`
	Multiplier    *float64 `yaml:"multiplier" json:"multiplier"` // m, default 1
	Weight        *float64 `yaml:"weight" json:"weight"`         // default 1
	// Resolution or Resolutions (one entry set per resolution); default [train.resolution]. Normalize
	// folds Resolution into Resolutions.
	Resolution        Resolution   `yaml:"resolution,omitempty" json:"resolution,omitzero"`
	Resolutions       []Resolution `yaml:"resolutions" json:"resolutions"`
	BatchSize         int          `yaml:"batch_size" json:"batch_size"`
	DynamicResolution bool         `yaml:"dynamic_resolution" json:"dynamic_resolution"`
	DynamicCrops      bool         `yaml:"dynamic_crops" json:"dynamic_crops"`
	// Mask and Preserve as for a prompt entry; every entry the target expands to carries them.
	Mask     *Mask    `yaml:"mask,omitempty" json:"mask,omitempty"`
	Preserve *float64 `yaml:"preserve" json:"preserve"`
}

// Enum values.
const (
	ObjectiveLECO       = "leco"
	ObjectiveSlider     = "slider"
	ObjectiveSliderText = "slider_text"

	ModeLECO = "leco"
	ModeLOBA = "loba"

	ActionErase   = "erase"
	ActionEnhance = "enhance"
	// ActionKeep holds a prompt to the frozen model's own prediction (y = e_neu with neutral = target,
	// g = 0): a preservation entry (U-LOBA's anchors, ESD's/UCE's "preserve" prompts).
	ActionKeep = "keep"
	// ActionStyle is ST-LOBA's style shift (docs/ALGORITHMS.md §5): the content prompt's prediction
	// moved toward the style prompt's channel statistics.
	ActionStyle = "style"
)

var (
	validObjectives      = []string{ObjectiveLECO, ObjectiveSlider, ObjectiveSliderText}
	validModes           = []string{ModeLOBA, ModeLECO}
	validSchedulers      = []string{"ddim", "ddpm", "euler"}
	validSchedulerConfig = []string{"model", "anchor"}
	validSpacings        = []string{"", "leading", "trailing", "linspace"}
	validTargetNorms     = []string{"none", "normlike", "frobenius"}
	validKinds           = []string{"auto", "sd15", "sdxl"}
	validPredictionTypes = []string{"", "epsilon", "v_prediction"}
	validHiddenStates    = []string{"auto", "last", "penultimate"}
	validNetworkTargets  = []string{"lierla", "c3lier", "noxattn", "xattn", "full", "none"}
	validInits           = []string{"zero", "orthonormal"}
	validOptimizers      = []string{"adamw", "lion", "sgd"}
	validLRSchedulers    = []string{"constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial"}
	validLossTypes       = []string{"l2", "l1", "huber", "smooth_l1"}
	validHuberSchedules  = []string{"constant", "exponential", "snr"}
	validDTypes          = []string{"auto", "float32", "bfloat16", "float16"}
	validCheckpointing   = []string{"auto", "on", "off"}
	validAttention       = []string{"auto", "math", "chunked", "fused"}
	validSaveDTypes      = []string{"float16", "bfloat16", "float32"}
	validSaveLayouts     = []string{"diffusers", "sai"}
	validActions         = []string{ActionErase, ActionEnhance, ActionKeep, ActionStyle}
)

// Defaults returns a preset with every default filled in and no prompts (it does not validate: a
// preset needs prompts or targets).
func Defaults() *Preset {
	p := &Preset{}
	p.fillDefaults()
	return p
}

func ptr[T any](v T) *T { return &v }
