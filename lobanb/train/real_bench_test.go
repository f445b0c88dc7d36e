package train

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/lobanb/slider"
	lobabackend "github.com/loba-dev/loba/models/backend"
	"github.com/loba-dev/loba/models/nn"
)

// realChildEnv names the variant a child process of BenchmarkRealSD15Step measures.
const realChildEnv = "LOBA_REAL_STEP_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(realChildEnv); v != "" {
		os.Exit(realStepChild(v == "on"))
	}
	os.Exit(m.Run())
}

// BenchmarkRealSD15Step (LOBA_BENCH_REAL=1; minutes, up to ~20 GB of RAM) builds the real-size
// SD1.5 UNet from its config (fixtures/real/configs/sd15) with random weights and runs the trainer's
// LECO LoRA step (one prompt: batch 1, 512² px = 64×64 latents, the teacher's three references and
// the student's forward and backward) on this CPU, without and with gradient checkpointing. Each
// variant runs in a fresh process, so that its peak RSS (VmHWM) is its own. Reported: seconds per
// step (after a first, compiling step), the peak RSS, and the memory plan's figure for the same
// phase (frozen UNet + adapter and optimizer + the step's activation peak).
func BenchmarkRealSD15Step(b *testing.B) {
	if os.Getenv("LOBA_BENCH_REAL") == "" {
		b.Skip("set LOBA_BENCH_REAL=1 to run the real-size step (minutes, ~20 GB of RAM)")
	}
	for _, ckpt := range []string{"off", "on"} {
		b.Run("checkpointing="+ckpt, func(b *testing.B) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), realChildEnv+"="+ckpt)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				b.Fatalf("child: %v\n%s", err, out.String())
			}
			vals := map[string]float64{}
			for _, line := range strings.Split(out.String(), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					if f, err := strconv.ParseFloat(v, 64); err == nil {
						vals[k] = f
					}
				}
			}
			b.Logf("%s", out.String())
			b.ReportMetric(vals["step_seconds"], "s/step")
			b.ReportMetric(vals["peak_rss_gb"], "peakRSS-GB")
			b.ReportMetric(vals["plan_gb"], "plan-GB")
			b.ReportMetric(100*(vals["plan_gb"]-vals["peak_rss_gb"])/vals["peak_rss_gb"], "plan-err-%")
			b.ReportMetric(vals["plan_step_seconds"], "plan-s/step")
		})
	}
}

// realStepChild measures one variant and prints key=value lines; it returns the exit code.
func realStepChild(checkpointing bool) int {
	if err := runRealStep(checkpointing); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	return 0
}

// runRealStep plans, builds and runs the real-size step.
func runRealStep(checkpointing bool) error {
	root, err := fixtures.FindRoot(filepath.Join("..", "..")) // tests run in lobanb/train
	if err != nil {
		return err
	}
	dir := filepath.Join(root, "real", "configs", "sd15")
	p := slider.Defaults()
	p.Model.NameOrPath = dir
	p.Prompts = []slider.Prompt{{Target: "a photo of a dog", Action: slider.ActionErase}}
	p.Train.Resolution = slider.Square(512)
	p.Train.GradientCheckpointing = map[bool]string{false: "off", true: "on"}[checkpointing]
	plan, err := NewPlan(p, Options{OutDir: os.TempDir()})
	if err != nil {
		return err
	}
	e, err := EstimateRun(plan)
	if err != nil {
		return err
	}
	tuneGC(true) // as NewRun does for a real-size model on the Go backend
	pr := e.CPU
	planned := float64(pr.UNet+pr.Adapter+pr.Step[map[bool]int{false: 0, true: 1}[checkpointing]]) * cpuOverhead
	fmt.Printf("plan_gb=%.3f\n", planned/1e9)
	if me, err := ThisMachine(lobabackendMust()); err == nil { // the step alone: no partial denoise
		flops := pr.StepFLOPs
		if checkpointing {
			flops += pr.StepFLOPs / 6
		}
		fmt.Printf("plan_step_seconds=%.1f\n", flops/(me.TFLOPS*1e12))
	}
	m, err := readModelShapes(dir)
	if err != nil {
		return err
	}
	env, params, err := planEnv(p, m, dtypes.Float32, nn.MemoryOptions{GradientCheckpointing: checkpointing})
	if err != nil {
		return err
	}
	if err := env.ctx.Store().SetRNGStateFromSeed(42); err != nil { // the same weights in both variants
		return err
	}
	// Random weights: He-scaled normals, and 1 for the rank-1 ones (norm scales, biases), so that no
	// GroupNorm zeroes the activations (the store's default gives rank-1 variables 0).
	env.d.Ctx = env.d.Ctx.WithInitializer(func(g *Graph, s shapes.Shape) *Node {
		if s.Rank() <= 1 {
			return Ones(g, s)
		}
		return MulScalar(env.ctx.Store().RandomNormal(g, s), math.Sqrt(2/float64(s.Size()/s.Dim(0))))
	})
	backend, err := lobabackend.New()
	if err != nil {
		return err
	}
	env.backend = backend
	opt, err := NewOptimizer(plan.Optimizer)
	if err != nil {
		return err
	}
	exec, err := model.NewExec(backend, env.ctx.Store(), env.stepFn(lossConfig{}, params, opt, 0))
	if err != nil {
		return err
	}
	args := realStepArgs(m, 64, 64)
	for i := range 2 {
		start := time.Now()
		out, err := exec.Exec(args...)
		if err != nil {
			return err
		}
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		fmt.Printf("step%d_seconds=%.2f\nloss=%g\ngrad_norm=%g\nheap_gb=%.3f\nheap_sys_gb=%.3f\n", i, time.Since(start).Seconds(),
			tensors.ToScalar[float32](out[0]), tensors.ToScalar[float32](out[1]), float64(ms.HeapAlloc)/1e9, float64(ms.HeapSys)/1e9)
		if i == 1 {
			fmt.Printf("step_seconds=%.2f\n", time.Since(start).Seconds())
		}
	}
	rss, err := peakRSS()
	fmt.Printf("peak_rss_gb=%.3f\n", float64(rss)/1e9)
	return err
}

// lobabackendMust is the process's backend (the Go backend in this benchmark).
func lobabackendMust() compute.Backend {
	b, err := lobabackend.New()
	if err != nil {
		panic(err)
	}
	return b
}

// realStepArgs are random step inputs for one sample at h×w latents (stepInputs' order).
func realStepArgs(m *modelShapes, h, w int) []any {
	g := NewRNG(7)
	var args []any
	for i, s := range m.stepShapes(1, h, w) {
		switch {
		case i == 1:
			args = append(args, tensors.FromValue([]int64{500}))
		case s.DType == dtypes.Int32:
			args = append(args, int32(1))
		case s.Rank() == 0:
			args = append(args, float32(1e-4))
		case s.Rank() == 1: // signed guidance, multiplier, weight
			args = append(args, tensors.FromValue([]float32{1}))
		default:
			args = append(args, tensors.FromFlatDataAndDimensions(g.Normal(s.Size()), s.Dimensions...))
		}
	}
	return args
}

// peakRSS is this process's peak resident set size (VmHWM), in bytes.
func peakRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/self/status has no VmHWM")
}
