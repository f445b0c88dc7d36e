package lobanb

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"image"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loba-dev/loba/internal/atomicfile"
	"github.com/loba-dev/loba/lobanb/eval"
	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/lobanb/train"
	"github.com/loba-dev/loba/models/backend"
	"github.com/loba-dev/loba/models/sd"
	"github.com/loba-dev/loba/models/toyworld"
)

// Model is a model Load resolved and checked.
type Model struct {
	// Ref is the reference as given ("" = the embedded toy world).
	Ref string
	// Dir is the local folder (or single file) it resolved to.
	Dir string
	// Report is what `loba inspect` says of it (components, parameter counts, weight files).
	Report *sd.Report
}

// Load resolves a model — "" (or "toyworld") for the embedded toy world, a diffusers folder, a
// single-file checkpoint or a hub id "org/repo[@revision]" (downloaded into the Hugging Face cache)
// — checks its weight files against the architecture, and shows what it holds.
func Load(ref string) (*Model, error) {
	if ref == "toyworld" {
		ref = ""
	}
	dir, err := sd.ResolveModel(ref, "", Out)
	if err != nil {
		return nil, err
	}
	rep, err := sd.Inspect(dir, sd.InspectOptions{})
	if err != nil {
		return nil, err
	}
	if err := rep.Err(); err != nil {
		return nil, err
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	name := ref
	if name == "" {
		name = "the toy world (embedded)"
	}
	show(fmt.Sprintf("model %s\n%s", name, text.String()))
	return &Model{Ref: ref, Dir: dir, Report: rep}, nil
}

// show prints text outside a notebook and displays it as a <pre> block in one.
func show(text string) {
	if inNotebook() {
		showHTML(pre(text))
	} else {
		printf("%s\n", strings.TrimRight(text, "\n"))
	}
}

// Preset reads a preset file: a LOBA preset (YAML), a LECO config.yaml, a Concept Sliders
// prompts.yaml or an sd-scripts LECO .toml (imported; what the import could not carry over is
// printed as warnings).
func Preset(path string) (*slider.Preset, error) {
	p, warnings, err := slider.Load(path)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		printf("warning: %s\n", w)
	}
	return p, nil
}

// Slider is a bidirectional slider preset on a model ("" for the toy world; as Load takes it: a
// folder, a single file or a hub id — a string, since each notebook cell is a process): one target
// (slider.Target{TargetClass, Positive, Negative}: named fields, so the two ends cannot be swapped by
// position) whose positive end the adapter moves toward at strength +1 and negative end at −1, with LOBA's defaults
// for everything else (change the returned preset's fields before Train, e.g. p.Train.Steps; Train
// checks the whole preset).
func Slider(model, name string, target slider.Target) (*slider.Preset, error) {
	if strings.TrimSpace(target.TargetClass) == "" {
		return nil, errors.New("lobanb.Slider: the target class (e.g. \"a shape\") is empty")
	}
	if strings.TrimSpace(target.Positive) == "" && strings.TrimSpace(target.Negative) == "" {
		return nil, errors.New("lobanb.Slider: positive and negative are both empty; a slider needs at least one end")
	}
	if model == "toyworld" {
		model = ""
	}
	p := slider.Defaults()
	p.Model.NameOrPath = model
	p.Objective = slider.ObjectiveSlider
	p.Output.Name = name
	p.Targets = []slider.Target{target}
	if model == "" { // the toy world: its native 32 px and a short run
		p.Train.Resolution = slider.Square(toyworld.RefSize)
		p.Train.Steps = 100
		p.Train.LR = 1e-3
		p.MaxDenoisingSteps = 5
	}
	// Not normalized yet, so fields changed before Train (train.resolution, ...) reach the target.
	return p, nil
}

// Plan shows what training p needs, from its model's configs alone (no weight is loaded): the
// parts of its memory on the CPU and on a GPU, the compute per step and, per device (T4, L4, A100,
// H100, this machine), whether it fits, the estimated seconds per step, and what to change where
// it does not fit. Train refuses a preset that cannot fit this machine with the same figures.
func Plan(p *slider.Preset) (*train.Estimate, error) {
	if p == nil {
		return nil, errors.New("lobanb.Plan: nil preset")
	}
	b, err := backend.New()
	if err != nil {
		return nil, err
	}
	plan, err := train.NewPlan(p, train.Options{Backend: b, Log: Out})
	if err != nil {
		return nil, err
	}
	e, err := train.EstimateRun(plan)
	if err != nil {
		return nil, err
	}
	devices, err := train.Devices(plan.Options.Backend)
	if err != nil {
		printf("%v\n", err)
	}
	var text strings.Builder
	e.Report(&text, devices)
	show(text.String())
	return e, nil
}

// Result is what Train produced.
type Result struct {
	Dir      string  // the run folder
	LoRA     string  // Dir/lora.safetensors
	Steps    int     // steps done in all (also those of earlier cells, when resumed)
	LastLoss float32 // the loss of the last step
	Seconds  float64 // this cell's training time
}

// Train trains preset p in the run folder dir (created; train.NewRun saves p as dir/preset.yaml), resuming from
// the newest checkpoint there. In a notebook it shows a progress line and a loss chart updated in
// place, and leaves the final ECharts loss chart and the sample grid of the last step (sample.every
// defaults to the whole run: dir/samples/step-N.png, rows = sample prompts, columns = strengths);
// elsewhere it prints a progress line every tenth of the run. The preset's eval section is not run here: Eval(dir) runs it in a cell of its own. A kernel interrupt
// (SIGINT) checkpoints the step reached and returns an error that says to re-run the cell.
func Train(p *slider.Preset, dir string) (*Result, error) {
	if p == nil {
		return nil, errors.New("lobanb.Train: nil preset")
	}
	if dir == "" {
		return nil, errors.New("lobanb.Train: empty run folder")
	}
	if p.Sample.Every == 0 { // a sample grid at the end (samples/step-N.png), shown below the chart
		p.Sample.Every = p.Train.Steps
	}
	run := rundir.Dir(dir)
	var log bytes.Buffer
	plan, err := train.NewPlan(p, train.Options{OutDir: dir, Log: &log, SkipEval: true})
	if err != nil {
		return nil, err
	}
	tr, err := train.NewRun(plan)
	if err != nil {
		return nil, err
	}
	total := p.Train.Steps
	area := newLive()
	var pts []rundir.LossPoint
	start, last := time.Now(), time.Time{}
	firstStep := -1
	tr.OnStep = func(step int, o train.StepOutputs, lr float64, _ time.Duration) {
		if firstStep < 0 { // loss.csv now holds the earlier cells' steps too (resumed runs)
			firstStep = step
			pts, _ = run.ReadLoss()
		} else {
			pts = append(pts, rundir.LossPoint{Step: step, Loss: float64(o.Loss), LR: lr})
		}
		done := step - firstStep + 1
		perStep := time.Since(start).Seconds() / float64(done)
		eta := time.Duration(perStep*float64(total-step)) * time.Second
		status := fmt.Sprintf("step %d/%d · loss %.4g · lr %.2g · %.2f s/step · %s left", step, total, o.Loss, lr, perStep, eta.Round(time.Second))
		if area != nil {
			if time.Since(last) > 500*time.Millisecond || step == total {
				last = time.Now()
				area.update(progressHTML(step, total, status) + lossSVG(pts, 640, 220))
			}
		} else if total < 10 || step%(total/10) == 0 || step == total {
			printf("%s\n", status)
		}
	}
	stop, release := train.StopOnSignal()
	defer release()
	tr.Stop = stop
	res, err := tr.Train()
	area.clear()
	if log.Len() > 0 {
		show(log.String())
	}
	if err != nil {
		return nil, err
	}
	out := &Result{Dir: dir, LoRA: res.LoRAPath, Steps: res.Steps, LastLoss: res.LastLoss, Seconds: time.Since(start).Seconds()}
	show(fmt.Sprintf("trained %s: %d steps, last loss %.5g, %.0f s in this cell; wrote %s", dir, res.Steps, res.LastLoss, out.Seconds, res.LoRAPath))
	if err := Chart(dir); err != nil {
		return nil, err
	}
	if grid := run.LatestSample(); grid != "" && inNotebook() {
		if img, err := readPNG(grid); err == nil {
			_ = showImage(img)
		}
	}
	return out, nil
}

// progressHTML is a progress bar and a status line.
func progressHTML(step, total int, status string) string {
	pct := 100 * float64(step) / float64(max(total, 1))
	return fmt.Sprintf(`<div style="font-family:monospace;font-size:12px"><div style="width:640px;height:8px;background:#eee">`+
		`<div style="width:%.1f%%;height:8px;background:#08519c"></div></div>%s</div>`, pct, html.EscapeString(status))
}

// Chart shows the loss chart of the run in dir (from dir/loss.csv) as a go-echarts chart in a
// notebook; elsewhere it prints the first and last losses.
func Chart(dir string) error {
	run := rundir.Dir(dir)
	pts, err := run.ReadLoss()
	if err != nil {
		return err
	}
	if len(pts) == 0 {
		return fmt.Errorf("lobanb.Chart: %s has no steps yet", run.LossLog())
	}
	if !inNotebook() {
		printf("loss: step %d %.5g … step %d %.5g (%d steps)\n", pts[0].Step, pts[0].Loss, pts[len(pts)-1].Step, pts[len(pts)-1].Loss, len(pts))
		return nil
	}
	h, err := echartsHTML(lossChart(pts, "loss — "+dir))
	if err != nil {
		return err
	}
	showHTML(h)
	return nil
}

// loadRun loads the preset saved in a run folder and its model with the run's LoRA.
func loadRun(dir string) (*slider.Preset, *sd.Pipeline, error) {
	run := rundir.Dir(dir)
	p, err := run.LoadPreset()
	if err != nil {
		return nil, nil, err
	}
	pipe, err := run.LoadModel(p, "", Out, nil)
	if err != nil {
		return nil, nil, err
	}
	return p, pipe, nil
}

// Grid samples the run's LoRA in dir: rows = prompts, columns = strengths (default the preset's
// sample.strengths), the same seed along a row; it writes dir/grid.png and shows it inline.
func Grid(dir string, prompts []string, strengths ...float64) (image.Image, error) {
	if len(prompts) == 0 {
		return nil, errors.New("lobanb.Grid: no prompts")
	}
	p, pipe, err := loadRun(dir)
	if err != nil {
		return nil, err
	}
	defer pipe.Close()
	if len(strengths) == 0 {
		strengths = p.Sample.Strengths
	}
	res := p.Train.Resolution
	rows, err := pipe.SampleRows(sd.SampleRequest{Prompts: prompts, NegativePrompt: p.Sample.NegativePrompt,
		Height: res.H(), Width: res.W(), Steps: p.Sample.Steps, GuidanceScale: p.Sample.GuidanceScale,
		Seed: uint64(p.Sample.Seed), Strengths: strengths, StartNoise: float64(p.Sample.StartNoise)})
	if err != nil {
		return nil, err
	}
	img := sd.Grid(rows)
	path := rundir.Dir(dir).Grid()
	if err := sd.SavePNG(path, img); err != nil {
		return nil, err
	}
	if err := showImage(img); err != nil {
		return nil, err
	}
	if !inNotebook() {
		printf("wrote %s (%d rows × %d strengths %v)\n", path, len(prompts), len(strengths), strengths)
	}
	return img, nil
}

// Eval measures the run's LoRA with its preset's eval section (toy-world read-outs: a slider's
// effect and side effects, or an erase's rates), writes dir/eval.json and dir/grid.png and shows the
// table and the grid.
func Eval(dir string) (*eval.Report, error) {
	run := rundir.Dir(dir)
	report, err := eval.Evaluate(run, eval.Options{Log: Out})
	if err != nil {
		return nil, fmt.Errorf("lobanb.Eval: %w", err)
	}
	show(report.Table())
	if inNotebook() {
		if img, err := readPNG(run.Grid()); err == nil {
			_ = showImage(img)
		}
	}
	return report, nil
}

// Save copies the run's adapter (dir/lora.safetensors) to dest — a .safetensors file, or a folder
// that receives <output.name>.safetensors and the preset next to it. The copy is atomic: an
// interrupted Save leaves no half-written file. On Colab with Google Drive mounted, an empty dest
// saves under /content/drive/MyDrive/loba/.
func Save(dir, dest string) (string, error) {
	run := rundir.Dir(dir)
	data, err := os.ReadFile(run.LoRA())
	if err != nil {
		return "", fmt.Errorf("lobanb.Save: %w (train the run first)", err)
	}
	if dest == "" {
		if driveDir() == "" {
			return "", errors.New("lobanb.Save: no destination (and no Google Drive mounted at /content/drive)")
		}
		dest = driveDir()
	}
	p, _ := run.LoadPreset()
	if !strings.EqualFold(filepath.Ext(dest), ".safetensors") {
		name := "loba"
		if p != nil && p.Output.Name != "" {
			name = p.Output.Name
		}
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return "", err
		}
		if p != nil {
			if err := p.Save(filepath.Join(dest, name+".yaml")); err != nil {
				return "", err
			}
		}
		dest = filepath.Join(dest, name+".safetensors")
	} else if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(dest, data); err != nil {
		return "", err
	}
	show(fmt.Sprintf("saved %s (%d KB)", dest, len(data)/1024))
	return dest, nil
}

// driveDir is /content/drive/MyDrive/loba when Google Drive is mounted on Colab ("" otherwise).
func driveDir() string {
	if st, err := os.Stat("/content/drive/MyDrive"); err == nil && st.IsDir() {
		return "/content/drive/MyDrive/loba"
	}
	return ""
}

func readPNG(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	return img, err
}
