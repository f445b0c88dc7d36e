package train

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/gomlx/gomlx/core/graph"

	"github.com/loba-dev/loba/internal/atomicfile"
	"github.com/loba-dev/loba/lobanb/eval"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/safetensors"

	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/sd"
)

// Result is what a finished run produced.
type Result struct {
	LoRAPath    string
	Steps       int
	FirstLosses []float32 // the losses of the first steps of this process (for reports)
	LastLoss    float32
	// Eval is the evaluation report when the preset has one.
	Eval *eval.Report
}

// Train runs the loop from the newest checkpoint (or from scratch), appends every step to
// OutDir/loss.csv (step, loss, lr, seconds), checkpoints every train.checkpoint_every steps and
// writes OutDir/lora.safetensors at the end. An error leaves the last good checkpoint in place.
func (r *Run) Train() (*Result, error) {
	if err := os.MkdirAll(r.OutDir, 0o755); err != nil {
		return nil, err
	}
	resumed, err := r.Resume()
	if err != nil {
		return nil, err
	}
	if resumed > 0 {
		r.logf("resuming from step %d (%s)", resumed, r.CheckpointRoot())
	}
	csvPath := filepath.Join(r.OutDir, "loss.csv")
	if err := TruncateCSV(csvPath, resumed); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(csvPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	if st, _ := f.Stat(); st != nil && st.Size() == 0 {
		fmt.Fprintln(w, "step,loss,lr,seconds")
	}
	res := &Result{}
	userStep := r.OnStep
	r.OnStep = func(step int, out StepOutputs, lr float64, elapsed time.Duration) {
		fmt.Fprintf(w, "%d,%g,%g,%.3f\n", step, out.Loss, lr, elapsed.Seconds())
		_ = w.Flush()
		if len(res.FirstLosses) < 16 {
			res.FirstLosses = append(res.FirstLosses, out.Loss)
		}
		res.LastLoss = out.Loss
		if userStep != nil {
			userStep(step, out, lr, elapsed)
		}
	}
	defer func() { r.OnStep = userStep }()
	if err := r.Loop.Run(); err != nil {
		return nil, err
	}
	res.Steps = r.StepDone
	res.LoRAPath = filepath.Join(r.OutDir, "lora.safetensors")
	if err := r.SaveLoRA(res.LoRAPath); err != nil {
		return nil, err
	}
	if r.plan.EvalAfter {
		r.logf("evaluating (%s) …", r.Preset.Eval.Kind)
		r.Pipeline.SetAdapter(func(m *Node) nn.Adapter { return r.Net.Adapter(r.Pipeline.Ctx, "/unet", m) })
		size, err := eval.Size(r.Preset)
		if err != nil {
			return nil, err
		}
		if res.Eval, err = eval.Evaluate(r.Pipeline, r.Preset.Eval, size, r.OutDir); err != nil {
			return nil, fmt.Errorf("evaluating: %w", err)
		}
	}
	return res, nil
}

// SaveLoRA writes the adapter as a kohya LoRA file with the metadata of docs/ALGORITHMS.md §7 and LOBA's own
// (the preset JSON, the step reached).
func (r *Run) SaveLoRA(path string) error {
	p := r.Preset
	dtype := map[string]safetensors.DType{"float16": safetensors.F16, "bfloat16": safetensors.BF16, "float32": safetensors.F32}[p.Train.SaveDType]
	base := "sd_v1"
	if r.Pipeline.Kind == sd.KindSDXL {
		base = "sdxl_base_v1-0"
	}
	pred := "epsilon"
	if c := r.Sched.Config(); c.PredictionType == "v_prediction" {
		pred = "v"
	}
	res := p.Train.Resolution
	meta := map[string]string{
		"loba_preset":         p.JSON(),
		"loba_steps":          strconv.Itoa(r.StepDone),
		"loba_seed":           strconv.FormatInt(p.Train.Seed, 10),
		"loba_objective":      p.Objective,
		"loba_mode":           p.Mode,
		"ss_training_comment": "trained with LOBA",
	}
	opts := lora.SaveOptions{
		DType: dtype, Layout: p.Train.SaveLayout, BaseModel: base, PredictionType: pred,
		Title: p.Output.Name, Resolution: fmt.Sprintf("%dx%d", res[1], res[0]), Metadata: meta,
	}
	// No wall-clock date by default: the same preset and seed give the same file bytes.
	if sde, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		opts.Date = time.Unix(sde, 0)
	}
	return lora.SaveKohya(r.Pipeline.Ctx, path, []*lora.Network{r.Net}, opts)
}

// TruncateCSV keeps the header and the rows of steps <= step of a loss.csv whose first column is the
// step (a resumed run rewrites the steps after its checkpoint). A missing file is fine.
func TruncateCSV(path string, step int) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	var keep []string
	for i, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if i == 0 {
			keep = append(keep, line)
			continue
		}
		n, err := strconv.Atoi(strings.SplitN(line, ",", 2)[0])
		if err == nil && n <= step {
			keep = append(keep, line)
		}
	}
	return atomicfile.WriteFile(path, []byte(strings.Join(keep, "\n")+"\n"))
}
