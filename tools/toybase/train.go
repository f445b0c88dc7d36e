package toybase

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/lobanb/train"
	"github.com/loba-dev/loba/models/schedulers"
	"github.com/loba-dev/loba/models/sd"
	"github.com/loba-dev/loba/models/toyworld"
)

// TrainOptions configures Train.
type TrainOptions struct {
	// Dir is the model folder; Init creates it when it does not exist.
	Dir string
	// WorkDir holds checkpoints/ and loss.csv (default Dir + ".train").
	WorkDir                   string
	Steps, BatchSize          int
	LR, EMADecay, MaxGradNorm float64
	MinSNRGamma               float64 // min-SNR-γ loss weighting (0: off)
	// CaptionDropout is the fraction of captions replaced by "" so that the model learns the
	// unconditional prediction classifier-free guidance and LECO's targets use (default 0.1, as
	// Stable Diffusion was trained; negative: none).
	CaptionDropout               float64
	Seed                         uint64
	PredictionType               string // for Init: epsilon (default) | v_prediction
	CheckpointEvery, ExportEvery int
	// CheckSamples > 0 runs Check with that many samples after every export, appends the
	// accuracies to WorkDir/check.csv (the training curve) and writes the whole report (with the
	// confusion counts) to WorkDir/checks/step-N.json; its time is not counted as training.
	CheckSamples int
	// ExportDType is the dtype of the weights written into Dir (default Float32).
	ExportDType dtypes.DType
	Backend     compute.Backend
	Log         io.Writer
	OnStep      func(step int, loss float32, elapsed time.Duration)
}

func (o *TrainOptions) defaults() {
	if o.WorkDir == "" {
		o.WorkDir = strings.TrimSuffix(o.Dir, "/") + ".train"
	}
	if o.BatchSize == 0 {
		o.BatchSize = 16
	}
	if o.LR == 0 {
		o.LR = 1e-3
	}
	if o.CaptionDropout == 0 {
		o.CaptionDropout = 0.1
	}
	if o.MaxGradNorm == 0 {
		o.MaxGradNorm = 1
	}
	if o.PredictionType == "" {
		o.PredictionType = "epsilon"
	}
	if o.ExportDType == dtypes.InvalidDType {
		o.ExportDType = dtypes.Float32
	}
}

func (o *TrainOptions) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// Train trains the toy base model from scratch (or resumes from the newest checkpoint in WorkDir):
// full fine-tune of the UNet and the text encoder on freshly drawn toy-world batches, AdamW,
// gradient clipping, EMA of the weights, checkpoints every CheckpointEvery steps and the (EMA)
// weights exported into Dir every ExportEvery steps and at the end.
func Train(o TrainOptions) error {
	o.defaults()
	if _, err := os.Stat(filepath.Join(o.Dir, "model_index.json")); os.IsNotExist(err) {
		o.logf("initialising a fresh toy model in %s (seed %d, %s)", o.Dir, o.Seed, o.PredictionType)
		if err := Init(o.Dir, o.Seed, o.PredictionType); err != nil {
			return err
		}
	}
	p, err := sd.LoadPipeline(o.Dir, sd.PipelineOptions{Backend: o.Backend, SkipVAE: true})
	if err != nil {
		return err
	}
	if !p.ToyLatents {
		return fmt.Errorf("toybase: %s is not a toy-world model (its vae is not %s)", o.Dir, sd.ToyLatentMapClass)
	}
	var params []train.Param
	var paramVars []*model.Variable
	for v := range p.Ctx.IterVariables() {
		v.SetTrainable(true)
		params = append(params, train.Param{Var: v, LRScale: 1})
		paramVars = append(paramVars, v)
	}
	sched, err := schedulers.Load(filepath.Join(o.Dir, "scheduler", "scheduler_config.json"))
	if err != nil {
		return err
	}
	optCfg, err := train.DefaultOptimizerConfig("adamw")
	if err != nil {
		return err
	}
	opt, err := train.NewOptimizer(optCfg)
	if err != nil {
		return err
	}
	ft, err := NewFinetuneGraph(p.Backend, p.Ctx, p.UNet, p.TextEncoders[0], sched, params, opt, FinetuneConfig{
		UNetScope: "/" + sd.ScopeUNet, TextEncoderScope: "/text_encoder", TrainTextEncoder: true,
		EMADecay: o.EMADecay, MaxGradNorm: o.MaxGradNorm, MinSNRGamma: o.MinSNRGamma})
	if err != nil {
		return err
	}
	rng := train.NewRNG(o.Seed)
	ckptRoot := filepath.Join(o.WorkDir, "checkpoints")
	start := 0
	if all, err := train.ListCheckpoints(ckptRoot); err != nil {
		return err
	} else if len(all) > 0 {
		c, err := train.LoadCheckpoint(all[len(all)-1])
		if err != nil {
			return err
		}
		if err := c.Restore(p.Ctx, paramVars); err != nil {
			return err
		}
		if err := rng.Restore(c.RNG); err != nil {
			return err
		}
		start = c.Step
		o.logf("resuming from step %d (%s)", start, c.Dir)
	}
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return err
	}
	csvPath := filepath.Join(o.WorkDir, "loss.csv")
	if err := train.TruncateCSV(csvPath, start); err != nil {
		return err
	}
	if err := train.TruncateCSV(filepath.Join(o.WorkDir, "check.csv"), start); err != nil { // the curve, likewise
		return err
	}
	offset := lastSeconds(csvPath) // seconds are cumulative over resumed sittings
	csv, err := os.OpenFile(csvPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer csv.Close()
	w := bufio.NewWriter(csv)
	if st, _ := csv.Stat(); st != nil && st.Size() == 0 {
		fmt.Fprintln(w, "step,loss,seconds")
	}
	tok, te := p.Tokenizers[0], p.TextEncoders[0]
	seq := te.Config.MaxPositionEmbeddings
	lc, lh, lw := toyworld.LatentChannels, ImageSize/toyworld.DownFactor, ImageSize/toyworld.DownFactor
	numTrain := len(sched.AlphasCumprod())
	state := func() []*model.Variable {
		vars := append(append([]*model.Variable{}, paramVars...), opt.StateVariables(p.Ctx)...)
		return append(vars, EMAVariables(p.Ctx, params)...)
	}
	export := func() error {
		src := p.Ctx
		if o.EMADecay > 0 {
			src = p.Ctx.Store().Scope("/" + EMAScope)
		}
		return SaveWeights(src, o.Dir, o.ExportDType)
	}
	began := time.Now()
	var checking time.Duration // time spent in Check, left out of the seconds column
	trainSeconds := func() float64 { return offset + (time.Since(began) - checking).Seconds() }
	var checker *Checker
	check := func(step int) error {
		seconds := trainSeconds()
		t0 := time.Now()
		defer func() { checking += time.Since(t0) }()
		if checker == nil {
			var err error
			if checker, err = NewChecker(o.Dir, CheckOptions{Samples: o.CheckSamples, Seed: 7, Backend: p.Backend}); err != nil {
				return err
			}
		}
		root := ""
		if o.EMADecay > 0 {
			root = "/" + EMAScope
		}
		if err := checker.Refresh(p.Ctx, root); err != nil {
			return err
		}
		r, err := checker.Run()
		if err != nil {
			return err
		}
		o.logf("step %d: colour %.1f%%, size %.1f%%, shape %.1f%%, background %.1f%% (%d samples)", step,
			100*r.ColorAccuracy, 100*r.SizeAccuracy, 100*r.ShapeAccuracy, 100*r.BackgroundAccuracy, r.Samples)
		if err := writeJSON(filepath.Join(o.WorkDir, "checks", fmt.Sprintf("step-%08d.json", step)), r); err != nil {
			return err
		}
		return appendCheckCSV(filepath.Join(o.WorkDir, "check.csv"), step, seconds, r)
	}
	b := o.BatchSize
	for step := start + 1; step <= o.Steps; step++ {
		pixels, captions := trainingBatch(rng.Rand(), b, o.CaptionDropout)
		z, err := toyworld.Encode(pixels, b, ImageSize, ImageSize)
		if err != nil {
			return err
		}
		noise := rng.Normal(len(z))
		ts := make([]int64, b)
		ids := make([][]int64, b)
		for i := range ts {
			ts[i] = int64(rng.IntN(numTrain))
			enc, err := tok.EncodeFixed(captions[i], seq, tok.EOS)
			if err != nil {
				return err
			}
			ids[i] = make([]int64, len(enc))
			for j, id := range enc {
				ids[i][j] = int64(id)
			}
		}
		out, err := ft.Run(FinetuneInputs{
			X0: tensors.FromFlatDataAndDimensions(z, b, lc, lh, lw), Noise: tensors.FromFlatDataAndDimensions(noise, b, lc, lh, lw),
			T: tensors.FromValue(ts), IDs: tensors.FromValue(ids), LR: float32(o.LR), Step: int32(step)})
		if err != nil {
			return fmt.Errorf("toybase: step %d: %w", step, err)
		}
		if out.Loss != out.Loss {
			return fmt.Errorf("toybase: step %d: loss is NaN (last good checkpoint in %s)", step, ckptRoot)
		}
		fmt.Fprintf(w, "%d,%g,%.2f\n", step, out.Loss, trainSeconds())
		_ = w.Flush()
		if o.OnStep != nil {
			o.OnStep(step, out.Loss, time.Since(began))
		}
		if o.CheckpointEvery > 0 && step%o.CheckpointEvery == 0 {
			if _, err := train.SaveCheckpoint(ckptRoot, state(), train.Checkpoint{Step: step, RNG: rng.State(), Preset: "toybase"}, 2); err != nil {
				return err
			}
		}
		if o.ExportEvery > 0 && step%o.ExportEvery == 0 {
			if err := export(); err != nil {
				return err
			}
			if o.CheckSamples > 0 {
				if err := check(step); err != nil {
					return err
				}
			}
		}
	}
	return export()
}

// appendCheckCSV appends one Check result to the training curve (step,seconds,color,size,shape,
// background,samples); Train drops the rows after its resume step when it starts.
func appendCheckCSV(path string, step int, seconds float64, r *CheckReport) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if st, _ := f.Stat(); st != nil && st.Size() == 0 {
		fmt.Fprintln(f, "step,seconds,color,size,shape,background,samples")
	}
	fmt.Fprintf(f, "%d,%.0f,%.4f,%.4f,%.4f,%.4f,%d\n", step, seconds, r.ColorAccuracy, r.SizeAccuracy, r.ShapeAccuracy,
		r.BackgroundAccuracy, r.Samples)
	return f.Close()
}

// trainingBatch draws b toy-world images (pixels [b, 3, ImageSize, ImageSize]) with their captions,
// each caption replaced by "" with probability dropout.
func trainingBatch(rng *rand.Rand, b int, dropout float64) (pixels []float32, captions []string) {
	pixels, captions, _ = toyworld.Batch(rng, b, ImageSize, ImageSize)
	for i := range captions {
		if rng.Float64() < dropout {
			captions[i] = ""
		}
	}
	return pixels, captions
}

// lastSeconds is the seconds column of a loss.csv's last row (0 when none).
func lastSeconds(path string) float64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	fields := strings.Split(lines[len(lines)-1], ",")
	if len(fields) < 3 {
		return 0
	}
	var s float64
	if _, err := fmt.Sscan(fields[2], &s); err != nil {
		return 0
	}
	return s
}
