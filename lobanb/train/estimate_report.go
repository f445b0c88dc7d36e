package train

// The memory plan as people read it: a table of the parts of a run's memory, one row per device
// with whether the run fits and how long a step takes, and what to change where it does not fit.

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
)

// ErrDoesNotFit is returned (wrapped, with the figures and the fix) by NewRun when the memory plan
// says the run cannot fit the memory this process has.
var ErrDoesNotFit = errors.New("the run does not fit in memory")

// Fit is the plan of a run on one device.
type Fit struct {
	Device  Device
	Profile Profile
	Needs   int64   // bytes at the peak, with the run's checkpointing setting
	Fits    bool    // Needs ≤ Device.Memory
	Seconds float64 // estimated seconds per step (0: unknown throughput)
}

// FitOn plans the run on d.
func (e *Estimate) FitOn(d Device) Fit {
	pr := e.GPU
	switch {
	case d.CPU:
		pr = e.CPU
	case d.Half:
		pr.DType = dtypes.Float16
	}
	needs := e.Peak(pr, e.Checkpointing)
	return Fit{Device: d, Profile: pr, Needs: needs, Fits: needs <= d.Memory, Seconds: e.StepSeconds(pr, d.TFLOPS)}
}

// Advice lists what makes the run fit f's device, best first (nil when it fits).
func (e *Estimate) Advice(f Fit) []string {
	if f.Fits {
		return nil
	}
	var out []string
	if !e.Checkpointing && e.Peak(f.Profile, true) <= f.Device.Memory {
		out = append(out, fmt.Sprintf("train.gradient_checkpointing: on (needs %s)", gb(e.Peak(f.Profile, true))))
	}
	if f.Device.CPU && e.Plan.Preset.Train.Attention == "math" {
		out = append(out, "train.attention: auto (chunked attention keeps one chunk of scores at a time)")
	}
	if r, needs := e.fittingResolution(f, e.Checkpointing); r > 0 {
		out = append(out, fmt.Sprintf("train.resolution: %d (about %s)", r, gb(needs)))
	}
	if !e.Checkpointing {
		if r, needs := e.fittingResolution(f, true); r > 0 && e.Peak(f.Profile, true) > f.Device.Memory {
			out = append(out, fmt.Sprintf("train.gradient_checkpointing: on and train.resolution: %d (about %s)", r, gb(needs)))
		}
	}
	if len(out) == 0 {
		out = append(out, "a device with more memory: no smaller resolution fits this one")
	}
	return out
}

// scaledPeak is the peak at a square resolution r: activations scale with the pixels, weights do not.
func (e *Estimate) scaledPeak(pr Profile, r int, checkpointing bool) int64 {
	scale := float64(r*r) / float64(e.Size[0]*e.Size[1])
	scaled := pr
	scaled.Step = [2]int64{int64(float64(pr.Step[0]) * scale), int64(float64(pr.Step[1]) * scale)}
	scaled.Denoise = int64(float64(pr.Denoise) * scale)
	scaled.Sample = int64(float64(pr.Sample) * scale)
	scaled.Decode = int64(float64(pr.Decode) * scale)
	return e.Peak(scaled, checkpointing)
}

// resolutions are the square sizes the advice tries, largest first.
var resolutions = []int{1024, 960, 896, 832, 768, 704, 640, 576, 512, 448, 384, 320, 256, 192, 128, 64, 32}

// fittingResolution is the largest square resolution below the run's whose scaled peak fits f's
// device (a multiple of the model's 8 latent pixels), and that peak; 0 when none does.
func (e *Estimate) fittingResolution(f Fit, checkpointing bool) (int, int64) {
	for _, r := range resolutions {
		if r >= min(e.Size[0], e.Size[1]) {
			continue
		}
		if needs := e.scaledPeak(f.Profile, r, checkpointing); needs <= f.Device.Memory {
			return r, needs
		}
	}
	return 0, 0
}

// Report writes the plan: the parts of memory for the CPU (float32) and a GPU (bfloat16), then one
// row per device.
func (e *Estimate) Report(w io.Writer, devices []Device) {
	p := e.Plan.Preset
	fmt.Fprintf(w, "plan: %s on %s (%s): %dx%d px, batch %d, network %s rank %d, %s; gradient checkpointing %s\n",
		p.File(), e.Kind, e.Dir, e.Size[1], e.Size[0], e.Batch, p.Network.Targets, p.Network.Rank,
		e.Plan.Optimizer.Name, onOff(e.Checkpointing))
	fmt.Fprintf(w, "parameters: unet %s, text encoders %s, vae %s, adapter %s\n", millions(e.Params["unet"]),
		millions(e.Params["text_encoder"]+e.Params["text_encoder_2"]), millions(e.Params["vae"]), millions(e.Params["adapter"]))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "memory\tCPU (%s)\tGPU (%s)\n", e.CPU.DType, e.GPU.DType)
	row := func(name string, get func(Profile) int64) {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, gb(get(e.CPU)), gb(get(e.GPU)))
	}
	row("frozen UNet", func(pr Profile) int64 { return pr.UNet })
	row("text encoders (while encoding)", func(pr Profile) int64 { return pr.TextEncoders })
	row("VAE (sampling, eval)", func(pr Profile) int64 { return pr.VAE })
	row("adapter, gradients, optimizer", func(pr Profile) int64 { return pr.Adapter })
	row("train step, no checkpointing", func(pr Profile) int64 { return pr.Step[0] })
	row("train step, checkpointing", func(pr Profile) int64 { return pr.Step[1] })
	row("partial-denoise step", func(pr Profile) int64 { return pr.Denoise })
	row("sampling step / VAE decode", func(pr Profile) int64 { return max(pr.Sample, pr.Decode) })
	row("peak", func(pr Profile) int64 { return e.Peak(pr, e.Checkpointing) })
	_ = tw.Flush()
	fmt.Fprintf(w, "compute: %.1f TFLOP per train step + %.1f TFLOP per partial-denoise step × %.1f on average\n",
		e.GPU.StepFLOPs/1e12, e.GPU.DenoiseFLOPs/1e12, e.MeanK)
	e.deviceTable(w, devices)
}

// deviceTable writes one row per device and the advice for those the run does not fit.
func (e *Estimate) deviceTable(w io.Writer, devices []Device) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "device\tmemory\tneeds\tfits\ts/step (est.)\tdtype")
	var advice []string
	for _, d := range devices {
		f := e.FitOn(d)
		secs := "?"
		if f.Seconds > 0 {
			secs = fmt.Sprintf("%.3g", f.Seconds)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, gb(d.Memory), gb(f.Needs), yesNo(f.Fits), secs, f.Profile.DType)
		if a := e.Advice(f); len(a) > 0 {
			advice = append(advice, fmt.Sprintf("  %s: %s", d.Name, strings.Join(a, "; or ")))
		}
	}
	_ = tw.Flush()
	if len(advice) > 0 {
		fmt.Fprintf(w, "to fit:\n%s\n", strings.Join(advice, "\n"))
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

// millions formats a parameter count.
func millions(n int64) string {
	if n < 1e6 {
		return fmt.Sprintf("%.2g M", float64(n)/1e6)
	}
	return fmt.Sprintf("%.0f M", math.Round(float64(n)/1e6))
}

// checkFits refuses a run that the memory plan says cannot fit the memory of the device it would
// run on: this machine's available RAM on the Go backend, the GPU's memory (nvidia-smi) on CUDA.
// Where the device's memory cannot be told, the run goes ahead (and the estimate is nil).
func checkFits(plan *Plan, dir string, b compute.Backend) (*Estimate, error) {
	dev, ok := runDevice(b, plan.DType)
	if !ok {
		return nil, nil
	}
	e, err := estimate(plan, dir, dev.CPU, !dev.CPU)
	if err != nil {
		return nil, err
	}
	f := e.FitOn(dev)
	if f.Fits {
		return e, nil
	}
	p := plan.Preset
	name := p.File()
	if name == "" {
		name = "(built in code)"
	}
	pr := f.Profile
	step := pr.Step[0]
	if e.Checkpointing {
		step = pr.Step[1]
	}
	return nil, fmt.Errorf("%w: preset %s needs about %s at its peak on %s (%s: frozen UNet %s, train step %s, "+
		"partial denoise %s) but %s is available; to fit: %s (`loba plan %s` shows the whole plan)",
		ErrDoesNotFit, name, gb(f.Needs), dev.Name, pr.DType, gb(pr.UNet), gb(step), gb(pr.Denoise),
		gb(dev.Memory), strings.Join(e.Advice(f), "; or "), name)
}
