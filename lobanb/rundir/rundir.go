// Package rundir owns a training run's folder: every file a run writes and every later cell, command
// or resumed run reads lives at a path Dir names.
//
//	DIR/preset.yaml                     the preset as trained (written when the run starts)
//	DIR/checkpoints/step-NNNNNNNN/      adapter, optimizer and RNG state (lobanb/train)
//	DIR/loss.csv                        one row per step: step,loss,lr,seconds
//	DIR/cache/conditioning.safetensors  the prompts' text conditioning
//	DIR/cache/trajectories.safetensors  the trajectory cache or x₀ pool (trajectory_cache, denoise none)
//	DIR/samples/step-NNNNNN.png         sample grids during training
//	DIR/lora.safetensors                the trained adapter (kohya format)
//	DIR/lora-step-NNNNNN.safetensors    the adapter every train.save_every steps
//	DIR/eval.json, DIR/grid.png         the evaluation (lobanb/eval)
//
// GoNB runs every notebook cell as a process of its own, so the run folder is where a run's state
// outlives a cell; the trainer, the notebook helpers and the CLI all reach it through Dir.
package rundir

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/backend"
	"github.com/loba-dev/loba/models/sd"
)

// Dir is a run folder (the RunDir of the design notes).
type Dir string

// The files of a run folder, relative to it.
const (
	PresetFile      = "preset.yaml"
	LoRAFile        = "lora.safetensors"
	LossFile        = "loss.csv"
	CheckpointsDir  = "checkpoints"
	CondCacheFile   = "cache/conditioning.safetensors"
	TrajectoryFile  = "cache/trajectories.safetensors"
	SamplesDir      = "samples"
	EvalFile        = "eval.json"
	GridFile        = "grid.png"
	samplePattern   = "step-%06d.png"
	loraStepPattern = "lora-step-%06d.safetensors"
	sampleGlobMatch = "step-*.png"
)

// Path is the folder itself.
func (d Dir) Path() string { return string(d) }

// Preset is the preset the run trains: DIR/preset.yaml.
func (d Dir) Preset() string { return d.file(PresetFile) }

// LoRA is the trained adapter: DIR/lora.safetensors.
func (d Dir) LoRA() string { return d.file(LoRAFile) }

// LoRAStep is the LoRA saved at step by train.save_every: DIR/lora-step-NNNNNN.safetensors.
func (d Dir) LoRAStep(step int) string { return d.file(fmt.Sprintf(loraStepPattern, step)) }

// LossLog is the loss log: DIR/loss.csv.
func (d Dir) LossLog() string { return d.file(LossFile) }

// Checkpoints is the folder of the run's checkpoints: DIR/checkpoints.
func (d Dir) Checkpoints() string { return d.file(CheckpointsDir) }

// CondCache is the text-conditioning cache: DIR/cache/conditioning.safetensors.
func (d Dir) CondCache() string { return d.file(CondCacheFile) }

// Trajectories holds the fast modes' trajectory cache or x₀ pool: DIR/cache/trajectories.safetensors.
func (d Dir) Trajectories() string { return d.file(TrajectoryFile) }

// EvalReport is the evaluation report: DIR/eval.json.
func (d Dir) EvalReport() string { return d.file(EvalFile) }

// Grid is the evaluation's (or lobanb.Grid's) image grid: DIR/grid.png.
func (d Dir) Grid() string { return d.file(GridFile) }

// Sample is the sample grid of step: DIR/samples/step-NNNNNN.png.
func (d Dir) Sample(step int) string {
	return filepath.Join(d.file(SamplesDir), fmt.Sprintf(samplePattern, step))
}

// LatestSample is the newest sample grid ("" when there is none).
func (d Dir) LatestSample() string {
	all, _ := filepath.Glob(filepath.Join(d.file(SamplesDir), sampleGlobMatch))
	if len(all) == 0 {
		return ""
	}
	sort.Strings(all) // the names sort by step
	return all[len(all)-1]
}

func (d Dir) file(name string) string { return filepath.Join(string(d), filepath.FromSlash(name)) }

// Create makes the folder (and its parents).
func (d Dir) Create() error {
	if d == "" {
		return fmt.Errorf("rundir: empty run folder")
	}
	return os.MkdirAll(string(d), 0o755)
}

// SavePreset writes p as DIR/preset.yaml.
func (d Dir) SavePreset(p *slider.Preset) error {
	if err := d.Create(); err != nil {
		return err
	}
	return p.Save(d.Preset())
}

// LoadPreset reads DIR/preset.yaml.
func (d Dir) LoadPreset() (*slider.Preset, error) {
	p, err := slider.LoadPreset(d.Preset())
	if err != nil {
		return nil, fmt.Errorf("run folder %s: %w (training writes it)", d, err)
	}
	return p, nil
}

// LoadModel loads the model preset p names (model.name_or_path with its variant, in train.dtype
// resolved for the backend as training resolves it: sd.ResolveDType) with a LoRA installed:
// loraPath, or DIR/lora.safetensors when it is "". Download progress of a hub model goes to log
// (nil: quiet). check, when not nil, is given the resolved model folder before anything loads (an
// error stops there). The caller closes the pipeline.
func (d Dir) LoadModel(p *slider.Preset, loraPath string, log io.Writer, check func(modelDir string) error) (*sd.Pipeline, error) {
	if loraPath == "" {
		loraPath = d.LoRA()
	}
	b, err := backend.New()
	if err != nil {
		return nil, err
	}
	dtype, err := sd.ResolveDType(p.Train.DType, b) // checked before a model is downloaded
	if err != nil {
		return nil, fmt.Errorf("preset %s: train.dtype: %w", p.File(), err)
	}
	dir, err := sd.ResolveModel(p.Model.NameOrPath, p.Model.Variant, log)
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(dir); err != nil {
			return nil, err
		}
	}
	pipe, err := sd.LoadPipeline(dir, sd.PipelineOptions{Backend: b, Variant: p.Model.Variant, DType: dtype})
	if err != nil {
		return nil, err
	}
	if _, err := pipe.UseLoRA(loraPath); err != nil {
		pipe.Close()
		return nil, err
	}
	return pipe, nil
}
