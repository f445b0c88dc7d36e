package train

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"

	evalpkg "github.com/loba-dev/loba/lobanb/eval"
	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/backend"
	"github.com/loba-dev/loba/models/sd"
)

// Options are what the caller of NewPlan decides beyond the preset.
type Options struct {
	// OutDir is the run folder (rundir.Dir): lora.safetensors, checkpoints/, loss.csv, cache/ and
	// samples/ (default: the preset's output.dir/output.name).
	OutDir string
	// Backend computes everything; nil creates one with backend.New() (GOMLX_BACKEND).
	Backend compute.Backend
	// Tokenizer overrides the model folder's tokenizer (a folder or openai's BPE .gz).
	Tokenizer string
	// Log receives one-line messages (nil: quiet).
	Log io.Writer
	// SkipEval does not run the preset's eval section after training (the notebook helpers run it
	// in a cell of its own, lobanb.Eval).
	SkipEval bool
}

// Plan is what a run derives from its preset before any I/O: the normalised preset (with the
// defaults it owns filled in: the sample prompts), its prompt groups, the frozen weights' dtype, the
// run folder, every prompt whose conditioning the run needs, the optimizer and learning-rate
// schedule, the adapter's initialisation, and whether the evaluation runs after training. DType is
// train.dtype resolved for the backend (sd.ResolveDType): by NewPlan when Options.Backend is given,
// else by NewRun once it has created the backend (InvalidDType until then).
type Plan struct {
	Preset    *slider.Preset
	Groups    [][]slider.Entry
	DType     dtypes.DType
	Dir       rundir.Dir
	Prompts   []string
	Optimizer OptimizerConfig
	Schedule  ScheduleConfig
	UpInit    string // adapter up-projection init: zero | orthonormal
	EvalAfter bool
	// Options are the caller's (backend, tokenizer, log) for NewRun.
	Options Options
}

// NewPlan plans a run of p (pure: it reads no file and loads nothing). p is normalised in place.
func NewPlan(p *slider.Preset, opts Options) (*Plan, error) {
	if err := p.Normalize(); err != nil {
		return nil, err
	}
	groups, err := p.Groups()
	if err != nil {
		return nil, err
	}
	if e := p.Eval; e.Kind != "" { // checked now: a typo must not fail only after training
		if err := evalpkg.CheckNames(e.Kind, e.Target, e.OffTarget, e.Attribute, e.Value); err != nil {
			return nil, fmt.Errorf("preset %s: eval.%w", p.File(), err)
		}
	}
	plan := &Plan{Preset: p, Groups: groups, Dir: rundir.Dir(opts.OutDir), UpInit: "zero",
		EvalAfter: p.Eval.Kind != "" && !opts.SkipEval, Options: opts}
	if opts.Backend != nil { // else NewRun resolves it, once it has created the backend
		if err := plan.resolveDType(); err != nil {
			return nil, err
		}
	}
	if plan.Dir == "" {
		plan.Dir = rundir.Dir(filepath.Join(p.Output.Dir, p.Output.Name))
	}
	if p.Network.Init == "orthonormal" {
		plan.UpInit = "orthonormal"
	}
	if sampling(p) && len(p.Sample.Prompts) == 0 { // default: each entry's target prompt
		p.Sample.Prompts = targetPrompts(groups)
	}
	plan.Prompts = p.UniquePrompts() // the entries' prompts, and the sample prompts when sampling
	if plan.Optimizer, err = optimizerConfig(p.Train); err != nil {
		return nil, err
	}
	plan.Schedule = ScheduleConfig{Name: p.Train.LRScheduler, BaseLR: p.Train.LR, MinLR: p.Train.MinLR,
		WarmupSteps: p.Train.WarmupSteps, TotalSteps: p.Train.Steps}
	return plan, nil
}

// resolveDType sets DType from train.dtype for the options' backend, creating the backend
// (backend.New: GOMLX_BACKEND) when there is none. A DType already set is kept.
func (plan *Plan) resolveDType() error {
	if plan.DType != dtypes.InvalidDType {
		return nil
	}
	if plan.Options.Backend == nil {
		b, err := backend.New()
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		plan.Options.Backend = b
	}
	dt, err := sd.ResolveDType(plan.Preset.Train.DType, plan.Options.Backend)
	if err != nil {
		return fmt.Errorf("preset %s: train.dtype: %w", plan.Preset.File(), err)
	}
	plan.DType = dt
	return nil
}

// targetPrompts lists the entries' target prompts, each once, in order.
func targetPrompts(groups [][]slider.Entry) []string {
	var out []string
	seen := map[string]bool{}
	for _, g := range groups {
		for _, e := range g {
			if !seen[e.Target] {
				seen[e.Target] = true
				out = append(out, e.Target)
			}
		}
	}
	return out
}

// optimizerConfig is the named optimizer's reference defaults with the preset's overrides.
func optimizerConfig(t slider.Train) (OptimizerConfig, error) {
	cfg, err := DefaultOptimizerConfig(t.Optimizer)
	if err != nil {
		return cfg, err
	}
	if len(t.Betas) == 2 {
		cfg.Beta1, cfg.Beta2 = t.Betas[0], t.Betas[1]
	}
	if t.Eps > 0 {
		cfg.Eps = t.Eps
	}
	if t.WeightDecay != nil {
		cfg.WeightDecay = *t.WeightDecay
	}
	cfg.Momentum = t.Momentum
	return cfg, nil
}

// sampling tells whether the preset samples during training.
func sampling(p *slider.Preset) bool { return p.Sample.Every > 0 }
