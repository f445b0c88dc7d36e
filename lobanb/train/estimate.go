package train

// The memory plan's figures: one profile per kind of device (the CPU's float32 Go backend, a GPU's
// bfloat16 or float16), the parts of a run's memory in each phase, and the time per step from the
// graphs' FLOPs and a device's throughput.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/gomlx/compute/dtypes"

	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/schedulers"
)

// Profile is what a run needs with the frozen weights in one dtype.
type Profile struct {
	DType dtypes.DType
	// Frozen UNet, text encoders and VAE (the VAE stays float32, as force_upcast keeps it).
	UNet, TextEncoders, VAE int64
	// Adapter is the LoRA's weights, gradients and optimizer state (float32).
	Adapter int64
	// Step is the train step's activation peak without ([0]) and with ([1]) gradient
	// checkpointing; Denoise one partial-denoise step's; Sample one sampling step's, Decode the VAE
	// decode's.
	Step                    [2]int64
	Denoise, Sample, Decode int64
	// StepFLOPs is one train step's (teacher references, student forward and backward);
	// DenoiseFLOPs one partial-denoise step's.
	StepFLOPs, DenoiseFLOPs float64
}

// Estimate is the memory plan of a run: what it needs on the CPU and on a GPU, from the model's
// configs alone.
type Estimate struct {
	Plan   *Plan
	Kind   string           // sd15 | sdxl
	Dir    string           // the model folder
	Batch  int              // samples per step
	Size   [2]int           // training resolution (pixels)
	Params map[string]int64 // parameters per component, and "adapter"
	// Checkpointing is what train.gradient_checkpointing resolves to for this model.
	Checkpointing bool
	// MeanK is the mean number of partial-denoise steps before a train step.
	MeanK float64
	// Keeps tells which frozen parts stay loaded while training (text encoders for the evaluation
	// after training, the VAE for sampling or evaluation).
	KeepText, KeepVAE, Encode bool
	CPU, GPU                  Profile // float32; bfloat16 (float16, a T4's, has the same sizes)
}

// profileOf builds a profile from the measured graphs.
func profileOf(dtype dtypes.DType, params map[string]int64, optSlots int, gc graphCosts, unetBytes int64) Profile {
	b := int64(dtype.Size())
	pr := Profile{DType: dtype, UNet: unetBytes, VAE: params["vae"] * 4,
		TextEncoders: (params["text_encoder"] + params["text_encoder_2"]) * b,
		Adapter:      params["adapter"] * 4 * int64(2+optSlots),
		Step:         [2]int64{gc.step[0].PeakBytes, gc.step[1].PeakBytes},
		Denoise:      gc.denoise.PeakBytes, Sample: gc.sample.PeakBytes, Decode: gc.decode.PeakBytes,
		StepFLOPs: gc.step[0].FLOPs, DenoiseFLOPs: gc.denoise.FLOPs}
	return pr
}

// Peak is the most memory the run holds at once with the given checkpointing: the largest of the
// encoding, training (train step or partial denoise) and sampling phases; on the CPU with the Go
// backend's pools and the collector's headroom (cpuOverhead).
func (e *Estimate) Peak(pr Profile, checkpointing bool) int64 {
	peak := e.livePeak(pr, checkpointing)
	if pr.DType == dtypes.Float32 {
		return int64(float64(peak) * cpuOverhead)
	}
	return peak
}

// livePeak is Peak without the garbage collector's headroom.
func (e *Estimate) livePeak(pr Profile, checkpointing bool) int64 {
	frozen := pr.UNet
	if e.KeepVAE {
		frozen += pr.VAE
	}
	if e.KeepText {
		frozen += pr.TextEncoders
	}
	step := pr.Step[0]
	if checkpointing {
		step = pr.Step[1]
	}
	train := frozen + pr.Adapter + max(step, pr.Denoise)
	peak := train
	if e.Encode {
		peak = max(peak, pr.UNet+pr.TextEncoders+pr.VAE)
	}
	if e.KeepVAE {
		peak = max(peak, frozen+pr.Adapter+max(pr.Sample, pr.Decode))
	}
	return peak
}

// StepSeconds is the estimated time of one train step (its partial denoise included) at tflops
// of sustained throughput.
func (e *Estimate) StepSeconds(pr Profile, tflops float64) float64 {
	if tflops <= 0 {
		return 0
	}
	flops := pr.StepFLOPs + e.MeanK*pr.DenoiseFLOPs
	if e.Checkpointing {
		flops += pr.StepFLOPs / 6 // the recomputed student forward: one of the step's six forward-sized passes
	}
	return flops / (tflops * 1e12)
}

// optimizerSlots is the optimizer's state per adapter weight.
func optimizerSlots(name string, momentum float64) int {
	switch name {
	case OptimizerAdamW:
		return 2
	case OptimizerLion:
		return 1
	case OptimizerSGD:
		if momentum > 0 {
			return 1
		}
	}
	return 0
}

// meanK is the mean number of partial-denoise steps (of one step's batch) a train step costs: the
// mean of the k a run draws from (ks; nil: every k in [min_denoising_steps, N−1]); with the
// trajectory cache, its generations' max k steps for every trajectory of every group spread over the
// steps each generation serves; with denoise none, the x₀ pool's sampler steps spread over the run.
func meanK(p *slider.Preset, groups int, ks []int) float64 {
	if ks == nil {
		for k := *p.MinDenoisingSteps; k < p.MaxDenoisingSteps; k++ {
			ks = append(ks, k)
		}
	}
	sum, maxK := 0, 0
	for _, k := range ks {
		sum, maxK = sum+k, max(maxK, k)
	}
	switch {
	case p.Denoise == slider.DenoiseNone:
		return float64(p.X0Pool.Steps*p.X0Pool.Size*groups) / float64(p.Train.Steps)
	case p.TrajectoryCache.Size > 0:
		serves := p.Train.Steps
		if r := p.TrajectoryCache.RefreshEvery; r > 0 {
			serves = min(r, serves)
		}
		return float64(maxK*p.TrajectoryCache.Size*groups) / float64(serves)
	case len(ks) == 0:
		return 0
	}
	return float64(sum) / float64(len(ks))
}

// planKs are the k a run draws from (denoiseKs: timestep_range applied), from the model folder's
// scheduler config; nil when the folder has none (a single-file checkpoint) or it does not parse.
func planKs(p *slider.Preset, dir string) []int {
	data, err := os.ReadFile(filepath.Join(dir, "scheduler", "scheduler_config.json"))
	if err != nil {
		return nil
	}
	cfg, err := schedulers.ParseConfigAs(data, schedulers.ClassDDIM)
	if err != nil {
		return nil
	}
	_, tStar, err := denoiseScheduler(p, cfg)
	if err != nil {
		return nil
	}
	ks, err := denoiseKs(p, tStar)
	if err != nil {
		return nil
	}
	return ks
}

// Estimate plans the memory and time of a run from its model's configs alone: the model folder is
// read (configs, and weight headers where present) but no weight is loaded.
func EstimateRun(plan *Plan) (*Estimate, error) {
	dir, err := modelDir(plan.Preset, plan.Options)
	if err != nil {
		return nil, err
	}
	return estimate(plan, dir, true, true)
}

// estimate is EstimateRun on the resolved model folder.
// Only the profiles asked for are measured (the others stay zero).
func estimate(plan *Plan, dir string, cpu, gpu bool) (*Estimate, error) {
	p := plan.Preset
	m, err := readModelShapes(dir)
	if err != nil {
		return nil, err
	}
	e := &Estimate{Plan: plan, Kind: m.kind, Dir: dir, Params: m.params, MeanK: meanK(p, len(plan.Groups), planKs(p, dir)),
		Size: [2]int(plan.Groups[0][0].Resolution), KeepText: plan.EvalAfter,
		KeepVAE: sampling(p) || plan.EvalAfter, Encode: true}
	e.Batch = stepBatchSize(plan)
	e.Checkpointing = checkpointingFor(p.Train.GradientCheckpointing, m.params["unet"])
	if err := e.measure(plan, m, cpu, gpu); err != nil {
		return nil, err
	}
	return e, nil
}

// measure builds the run's graphs for the CPU (float32, the Go backend's attention) and a GPU
// (bfloat16; float16 has the same sizes), as asked, and fills the profiles.
func (e *Estimate) measure(plan *Plan, m *modelShapes, wantCPU, wantGPU bool) error {
	p := plan.Preset
	attention := p.Train.Attention
	if attention == "auto" {
		attention = nn.AttentionAuto
	}
	gpuAttention := attention
	if gpuAttention == nn.AttentionAuto || gpuAttention == nn.AttentionFused {
		// The shape-only (Go) backend has no fused attention: chunked attention stands in for the
		// GPU's flash attention, which keeps no score matrix either.
		gpuAttention = nn.AttentionChunked
	}
	var cpu, gpu graphCosts
	var cpuErr, gpuErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the two profiles' graphs build in parallel
		defer wg.Done()
		if wantGPU {
			gpu, gpuErr = measureGraphs(plan, m, dtypes.BFloat16, gpuAttention, true)
		}
	}()
	if wantCPU {
		cpu, cpuErr = measureGraphs(plan, m, dtypes.Float32, attention, false)
	}
	wg.Wait()
	if err := errors.Join(cpuErr, gpuErr); err != nil {
		return err
	}
	net, err := adapterParams(p, m)
	if err != nil {
		return err
	}
	e.Params["adapter"] = net
	slots := optimizerSlots(plan.Optimizer.Name, plan.Optimizer.Momentum)
	e.CPU = profileOf(dtypes.Float32, e.Params, slots, cpu, m.weightBytes(dtypes.Float32, goAlloc))
	e.GPU = profileOf(dtypes.BFloat16, e.Params, slots, gpu, m.weightBytes(dtypes.BFloat16, nil))
	return nil
}

// String is a one-line summary.
func (e *Estimate) String() string {
	return fmt.Sprintf("%s %dx%d batch %d: CPU %s, GPU %s", e.Kind, e.Size[1], e.Size[0], e.Batch,
		gb(e.Peak(e.CPU, e.Checkpointing)), gb(e.Peak(e.GPU, e.Checkpointing)))
}

// gb formats bytes in GB (10⁹).
func gb(n int64) string { return fmt.Sprintf("%.1f GB", float64(n)/1e9) }

// stepBatchSize is the batch of a step of the plan's first group: its entries' latents plus one row
// per U-LOBA anchor (the anchors join every batch: weighAnchors).
func stepBatchSize(plan *Plan) int {
	b := len(plan.Preset.Anchors)
	for _, en := range plan.Groups[0] {
		b += max(en.BatchSize, 1)
	}
	return b
}
