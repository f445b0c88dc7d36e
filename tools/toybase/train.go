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

	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/train"
	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/schedulers"
	"github.com/loba-dev/loba/models/sd"
	"github.com/loba-dev/loba/models/toyworld"
)

// TrainOptions configures Train.
type TrainOptions struct {
	// Dir is the model folder; Init creates it when it does not exist.
	Dir string
	// WorkDir holds checkpoints/ and loss.csv (default Dir + ".train").
	WorkDir          string
	Steps, BatchSize int
	Seed             uint64
	PredictionType   string // for Init: epsilon (default) | v_prediction
	// Optimizer is the weight update: AdamW's learning rate, gradient clipping and the EMA.
	Optimizer   OptimizerOptions
	MinSNRGamma float64 // min-SNR-γ loss weighting (0: off)
	// CaptionDropout is the fraction of captions replaced by "" so that the model learns the
	// unconditional prediction classifier-free guidance and LECO's targets use (default 0.1, as
	// Stable Diffusion was trained; negative: none).
	CaptionDropout float64
	// Shade draws each training scene's colour shaded toward another palette colour by up to this
	// fraction (toyworld.SampleShaded; 0, the default: pure palette colours, as stages 1–3 were
	// trained). It is not stored with the checkpoints: a resumed stage passes the same value.
	Shade float64
	// Output says what Train writes besides loss.csv, and when.
	Output  OutputOptions
	Backend compute.Backend
	Log     io.Writer
	OnStep  func(step int, loss float32, elapsed time.Duration)
}

// OptimizerOptions are the weight-update settings of TrainOptions.
type OptimizerOptions struct {
	LR          float64 // AdamW learning rate (default 1e-3)
	MaxGradNorm float64 // global gradient-norm clipping (default 1)
	EMADecay    float64 // EMA decay of the exported weights (0: off)
}

// OutputOptions are the checkpoints, exports and checks of TrainOptions.
type OutputOptions struct {
	CheckpointEvery, ExportEvery int
	// CheckSamples > 0 runs Check with that many samples after every export, appends the
	// accuracies to WorkDir/check.csv (the training curve) and writes the whole report (with the
	// confusion counts) to WorkDir/checks/step-N.json; its time is not counted as training.
	CheckSamples int
	// ExportDType is the dtype of the weights written into Dir (default Float32).
	ExportDType dtypes.DType
}

func (o *TrainOptions) defaults() {
	if o.WorkDir == "" {
		o.WorkDir = strings.TrimSuffix(o.Dir, "/") + ".train"
	}
	if o.BatchSize == 0 {
		o.BatchSize = 16
	}
	if o.Optimizer.LR == 0 {
		o.Optimizer.LR = 1e-3
	}
	if o.CaptionDropout == 0 {
		o.CaptionDropout = 0.1
	}
	if o.Optimizer.MaxGradNorm == 0 {
		o.Optimizer.MaxGradNorm = 1
	}
	if o.PredictionType == "" {
		o.PredictionType = "epsilon"
	}
	if o.Output.ExportDType == dtypes.InvalidDType {
		o.Output.ExportDType = dtypes.Float32
	}
}

func (o *TrainOptions) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// Train trains the toy base model from scratch (or resumes from the newest checkpoint in WorkDir):
// full fine-tune of the UNet and the text encoder on freshly drawn toy-world batches, AdamW,
// gradient clipping, EMA of the weights, checkpoints every Output.CheckpointEvery steps and the
// (EMA) weights exported into Dir every Output.ExportEvery steps and at the end.
func Train(o TrainOptions) error {
	o.defaults()
	if !(o.Shade >= 0 && o.Shade <= toyworld.MaxShade) {
		return fmt.Errorf("toybase: Shade %v is not in [0, %v]", o.Shade, toyworld.MaxShade)
	}
	r, err := newTrainRun(&o)
	if err != nil {
		return err
	}
	if err := r.resume(); err != nil {
		return err
	}
	if err := r.prepareWorkDir(); err != nil {
		return err
	}
	if r.loss, err = openLossLog(filepath.Join(o.WorkDir, "loss.csv")); err != nil {
		return err
	}
	defer r.loss.close()
	for step := r.start + 1; step <= o.Steps; step++ {
		if err := r.step(step); err != nil {
			return err
		}
	}
	return r.export()
}

// trainRun is one sitting of Train: the toy pipeline with all its weights trainable, the compiled
// fine-tuning step, the generator batches are drawn from and the files the sitting writes.
type trainRun struct {
	o         *TrainOptions
	p         *sd.Pipeline
	params    []train.Param
	paramVars []*model.Variable
	opt       train.Optimizer
	ft        *FinetuneGraph
	numTrain  int // the scheduler's number of training timesteps
	rng       *train.RNG
	ckptRoot  string
	start     int // the step resumed from (0: a fresh start)
	loss      *lossLog
	checker   *Checker // made at the first check
}

// newTrainRun loads (first initialising, when Dir holds none) the toy model, makes all its weights
// trainable and compiles the fine-tuning step with AdamW.
func newTrainRun(o *TrainOptions) (*trainRun, error) {
	p, err := loadToyModel(o)
	if err != nil {
		return nil, err
	}
	r := &trainRun{o: o, p: p, ckptRoot: filepath.Join(o.WorkDir, "checkpoints")}
	for v := range p.Ctx.IterVariables() {
		v.SetTrainable(true)
		r.params = append(r.params, train.Param{Var: v, LRScale: 1})
		r.paramVars = append(r.paramVars, v)
	}
	sched, err := schedulers.Load(filepath.Join(o.Dir, "scheduler", "scheduler_config.json"))
	if err != nil {
		return nil, err
	}
	if r.opt, err = newAdamW(); err != nil {
		return nil, err
	}
	r.ft, err = NewFinetuneGraph(p.Backend, p.Ctx, p.UNet, p.TextEncoders[0], sched, r.params, r.opt, FinetuneConfig{
		UNetScope: "/" + sd.ScopeUNet, TextEncoderScope: "/text_encoder", TrainTextEncoder: true,
		EMADecay: o.Optimizer.EMADecay, MaxGradNorm: o.Optimizer.MaxGradNorm, MinSNRGamma: o.MinSNRGamma})
	if err != nil {
		return nil, err
	}
	r.numTrain = len(sched.AlphasCumprod())
	r.rng = train.NewRNG(o.Seed)
	return r, nil
}

// loadToyModel loads the toy-world pipeline of o.Dir without a VAE, after initialising a fresh toy
// model there when the folder has no model_index.json.
func loadToyModel(o *TrainOptions) (*sd.Pipeline, error) {
	if _, err := os.Stat(filepath.Join(o.Dir, "model_index.json")); os.IsNotExist(err) {
		o.logf("initialising a fresh toy model in %s (seed %d, %s)", o.Dir, o.Seed, o.PredictionType)
		if err := Init(o.Dir, o.Seed, o.PredictionType); err != nil {
			return nil, err
		}
	}
	p, err := sd.LoadPipeline(o.Dir, sd.PipelineOptions{Backend: o.Backend, SkipVAE: true})
	if err != nil {
		return nil, err
	}
	if !p.ToyLatents() {
		return nil, fmt.Errorf("toybase: %s is not a toy-world model (its vae is not %s)", o.Dir, sd.ToyLatentMapClass)
	}
	return p, nil
}

// newAdamW is the trainer's default AdamW.
func newAdamW() (train.Optimizer, error) {
	cfg, err := train.DefaultOptimizerConfig("adamw")
	if err != nil {
		return nil, err
	}
	return train.NewOptimizer(cfg)
}

// resume restores the weights and the RNG state of the newest checkpoint in WorkDir, if there is
// one, and continues from its step.
func (r *trainRun) resume() error {
	all, err := train.ListCheckpoints(r.ckptRoot)
	if err != nil || len(all) == 0 {
		return err
	}
	c, err := train.LoadCheckpoint(all[len(all)-1])
	if err != nil {
		return err
	}
	if err := c.Restore(r.p.Ctx, r.paramVars); err != nil {
		return err
	}
	if err := r.rng.Restore(c.RNG); err != nil {
		return err
	}
	r.start = c.Step
	r.o.logf("resuming from step %d (%s)", r.start, c.Dir)
	return nil
}

// prepareWorkDir creates WorkDir and drops the rows of loss.csv and of the check.csv curve after
// the step resumed from.
func (r *trainRun) prepareWorkDir() error {
	if err := os.MkdirAll(r.o.WorkDir, 0o755); err != nil {
		return err
	}
	if err := rundir.TruncateLoss(filepath.Join(r.o.WorkDir, "loss.csv"), r.start); err != nil {
		return err
	}
	return rundir.TruncateLoss(filepath.Join(r.o.WorkDir, "check.csv"), r.start)
}

// step trains on one freshly drawn batch, logs the loss and writes what is due at this step.
func (r *trainRun) step(step int) error {
	in, err := r.batch(step)
	if err != nil {
		return err
	}
	out, err := r.ft.Run(in)
	if err != nil {
		return fmt.Errorf("toybase: step %d: %w", step, err)
	}
	if out.Loss != out.Loss {
		return fmt.Errorf("toybase: step %d: loss is NaN (last good checkpoint in %s)", step, r.ckptRoot)
	}
	r.loss.add(step, out.Loss)
	if r.o.OnStep != nil {
		r.o.OnStep(step, out.Loss, time.Since(r.loss.began))
	}
	return r.save(step)
}

// batch draws the inputs of one step from the run's generator, in this order: the images and their
// captions, the noise, then each sample's timestep.
func (r *trainRun) batch(step int) (FinetuneInputs, error) {
	b := r.o.BatchSize
	pixels, captions := trainingBatch(r.rng.Rand(), b, r.o.CaptionDropout, r.o.Shade)
	z, err := toyworld.Encode(pixels, b, ImageSize, ImageSize)
	if err != nil {
		return FinetuneInputs{}, err
	}
	noise := r.rng.Normal(len(z))
	tok, seq := r.p.Tokenizers[0], r.p.TextEncoders[0].Config.MaxPositionEmbeddings
	ts := make([]int64, b)
	ids := make([][]int64, b)
	for i := range ts {
		ts[i] = int64(r.rng.IntN(r.numTrain))
		if ids[i], err = captionIDs(tok, captions[i], seq); err != nil {
			return FinetuneInputs{}, err
		}
	}
	lc, lh, lw := toyworld.LatentChannels, ImageSize/toyworld.DownFactor, ImageSize/toyworld.DownFactor
	return FinetuneInputs{
		X0: tensors.FromFlatDataAndDimensions(z, b, lc, lh, lw), Noise: tensors.FromFlatDataAndDimensions(noise, b, lc, lh, lw),
		T: tensors.FromValue(ts), IDs: tensors.FromValue(ids), LR: float32(r.o.Optimizer.LR), Step: int32(step)}, nil
}

// captionIDs is the fixed-length (seq) token ids of a caption, padded with EOS.
func captionIDs(tok *clip.Tokenizer, caption string, seq int) ([]int64, error) {
	enc, err := tok.EncodeFixed(caption, seq, tok.EOS)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(enc))
	for j, id := range enc {
		ids[j] = int64(id)
	}
	return ids, nil
}

// save writes what is due after step: a checkpoint every Output.CheckpointEvery steps; the
// exported weights, and their check, every Output.ExportEvery steps.
func (r *trainRun) save(step int) error {
	out := r.o.Output
	if out.CheckpointEvery > 0 && step%out.CheckpointEvery == 0 {
		if err := r.checkpoint(step); err != nil {
			return err
		}
	}
	if out.ExportEvery > 0 && step%out.ExportEvery == 0 {
		if err := r.export(); err != nil {
			return err
		}
		if out.CheckSamples > 0 {
			return r.check(step)
		}
	}
	return nil
}

// checkpoint saves the weights, the optimizer state, the EMA weights and the RNG state at step
// (keeping the newest two checkpoints).
func (r *trainRun) checkpoint(step int) error {
	vars := append(append([]*model.Variable{}, r.paramVars...), r.opt.StateVariables(r.p.Ctx)...)
	vars = append(vars, EMAVariables(r.p.Ctx, r.params)...)
	_, err := train.SaveCheckpoint(r.ckptRoot, vars, train.Checkpoint{Step: step, RNG: r.rng.State(), Preset: "toybase"}, 2)
	return err
}

// exportedRoot is the scope of the weights Train exports: the EMA weights' with an EMA, else ""
// (the trained weights).
func (r *trainRun) exportedRoot() string {
	if r.o.Optimizer.EMADecay > 0 {
		return "/" + EMAScope
	}
	return ""
}

// export writes the exported weights into Dir.
func (r *trainRun) export() error {
	src := r.p.Ctx
	if root := r.exportedRoot(); root != "" {
		src = r.p.Ctx.Store().Scope(root)
	}
	return SaveWeights(src, r.o.Dir, r.o.Output.ExportDType)
}

// check runs Check on the exported weights, logs the accuracies, writes the report to
// WorkDir/checks/ and appends it to the check.csv curve; its time is left out of loss.csv.
func (r *trainRun) check(step int) error {
	seconds := r.loss.seconds()
	t0 := time.Now()
	defer func() { r.loss.excluded += time.Since(t0) }()
	rep, err := r.runCheck()
	if err != nil {
		return err
	}
	r.o.logf("step %d: colour %.1f%%, size %.1f%%, shape %.1f%%, background %.1f%% (%d samples)", step,
		100*rep.ColorAccuracy, 100*rep.SizeAccuracy, 100*rep.ShapeAccuracy, 100*rep.BackgroundAccuracy, rep.Samples)
	if err := writeJSON(filepath.Join(r.o.WorkDir, "checks", fmt.Sprintf("step-%08d.json", step)), rep); err != nil {
		return err
	}
	return appendCheckCSV(filepath.Join(r.o.WorkDir, "check.csv"), step, seconds, rep)
}

// runCheck refreshes the run's Checker (made at the first check) with the exported weights and
// runs it.
func (r *trainRun) runCheck() (*CheckReport, error) {
	if r.checker == nil {
		var err error
		if r.checker, err = NewChecker(r.o.Dir, CheckOptions{Samples: r.o.Output.CheckSamples, Seed: 7, Backend: r.p.Backend}); err != nil {
			return nil, err
		}
	}
	if err := r.checker.Refresh(r.p.Ctx, r.exportedRoot()); err != nil {
		return nil, err
	}
	return r.checker.Run()
}

// lossLog is loss.csv (step,loss,seconds) as one sitting appends to it. The seconds are of
// training: cumulative over resumed sittings, without the time spent in checks.
type lossLog struct {
	f        *os.File
	w        *bufio.Writer
	offset   float64   // the seconds of the earlier sittings
	began    time.Time // the start of this sitting
	excluded time.Duration
}

// openLossLog opens loss.csv for appending (writing the header into a new one) and starts the clock.
func openLossLog(path string) (*lossLog, error) {
	offset := lastSeconds(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	l := &lossLog{f: f, w: bufio.NewWriter(f), offset: offset}
	if st, _ := f.Stat(); st != nil && st.Size() == 0 {
		fmt.Fprintln(l.w, "step,loss,seconds")
	}
	l.began = time.Now()
	return l, nil
}

// seconds is the training time so far.
func (l *lossLog) seconds() float64 { return l.offset + (time.Since(l.began) - l.excluded).Seconds() }

// add appends one step's row.
func (l *lossLog) add(step int, loss float32) {
	fmt.Fprintf(l.w, "%d,%g,%.2f\n", step, loss, l.seconds())
	_ = l.w.Flush()
}

// close closes the file; rows are flushed as they are added.
func (l *lossLog) close() error { return l.f.Close() }

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
// each colour shaded by up to shade (toyworld.BatchShaded) and each caption replaced by "" with
// probability dropout.
func trainingBatch(rng *rand.Rand, b int, dropout, shade float64) (pixels []float32, captions []string) {
	pixels, captions, _ = toyworld.BatchShaded(rng, b, ImageSize, ImageSize, shade)
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
