package unet_test

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/unet"
	"github.com/loba-dev/loba/models/weights"
)

// memChildEnv selects the variant a child process of BenchmarkGradientCheckpointingMemory measures
// ("off" or "on"); unset, TestCheckpointMemoryChild skips.
const memChildEnv = "LOBA_CKPT_MEM_CHILD"

// midConfig is a mid-size SD1.5-shaped UNet: SD1.5's blocks, heads and text width with 128, 256,
// 384, 384 channels (92M parameters, a ninth of SD1.5's 860M), run on 64×64 latents (512 px).
func midConfig() *unet.Config {
	c := unet.SD15()
	c.BlockOutChannels = []int{128, 256, 384, 384}
	return c
}

// BenchmarkGradientCheckpointingMemory measures, for the midConfig UNet with random weights and a
// rank-4 LoRA on its transformers' layers (lierla, the trainer's default), batch 1 at 64×64
// latents, the Go backend's memory for one forward+backward (loss mean(out²), gradients w.r.t. the
// LoRA weights), with gradient checkpointing off and on (attention: auto, so chunked at the 64×64
// level). Each variant runs in a fresh child process (so that neither sees the other's freed
// memory; ns/op is that process's whole life) and reports its peak Go heap during the step over the
// heap before it (heap-MiB: activations, gradients and temporaries), its process peak RSS (rss-MiB:
// /proc/self/status VmHWM, weights and compilation included) and the step's wall time (step-s).
//
//	go test -run '^$' -bench GradientCheckpointingMemory -benchtime 1x ./models/unet/
func BenchmarkGradientCheckpointingMemory(b *testing.B) {
	results := map[string]memResult{}
	for _, mode := range []string{"off", "on"} {
		b.Run(mode, func(b *testing.B) {
			var r memResult
			for range b.N {
				r = runMemChild(b, mode)
			}
			results[mode] = r
			b.ReportMetric(r.heapMiB, "heap-MiB")
			b.ReportMetric(r.rssMiB, "rss-MiB")
			b.ReportMetric(r.seconds, "step-s")
		})
	}
	off, on := results["off"], results["on"]
	if off.heapMiB > 0 && on.heapMiB > 0 {
		b.Logf("gradient checkpointing: step heap %.0f → %.0f MiB (%.0f%% saved), peak RSS %.0f → %.0f MiB, step %.1f → %.1f s",
			off.heapMiB, on.heapMiB, 100*(1-on.heapMiB/off.heapMiB), off.rssMiB, on.rssMiB, off.seconds, on.seconds)
	}
}

// memResult is what a child reports.
type memResult struct {
	heapMiB, rssMiB, seconds float64
}

// runMemChild runs TestCheckpointMemoryChild in a fresh process of this test binary and parses its
// "LOBA_MEM heap=… rss=… seconds=…" line.
func runMemChild(b *testing.B, mode string) memResult {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCheckpointMemoryChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), memChildEnv+"="+mode)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(b, cmd.Run(), "child %s:\n%s", mode, out.String())
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "LOBA_MEM ") {
			continue
		}
		var r memResult
		_, err := fmt.Sscanf(line, "LOBA_MEM heap=%g rss=%g seconds=%g", &r.heapMiB, &r.rssMiB, &r.seconds)
		require.NoError(b, err, line)
		return r
	}
	b.Fatalf("child %s printed no LOBA_MEM line:\n%s", mode, out.String())
	return memResult{}
}

// TestCheckpointMemoryChild is one variant of BenchmarkGradientCheckpointingMemory (it skips unless
// the benchmark runs it). It builds the step, runs it once to compile and place the weights, then
// measures a second run: the peak of the Go heap's object bytes, sampled every millisecond, over
// their level before it. GC runs at GOGC 10 (unless $GOGC is set) so that the heap follows the
// live buffers closely.
func TestCheckpointMemoryChild(t *testing.T) {
	mode := os.Getenv(memChildEnv)
	if mode == "" {
		t.Skip("a child process of BenchmarkGradientCheckpointingMemory")
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(10)
	}
	exec, args := midStep(t, mode == "on")
	outs, err := exec.Exec(args...)
	require.NoError(t, err)
	for _, o := range outs {
		o.FinalizeAll()
	}
	runtime.GC()
	runtime.GC() // twice: the second drops the buffer pools' victim caches
	base := heapObjects()
	stop, peak := sampleHeapPeak()
	start := time.Now()
	outs, err = exec.Exec(args...)
	elapsed := time.Since(start)
	stop()
	require.NoError(t, err)
	t.Logf("%s: loss %v", mode, outs[0].Value())
	fmt.Printf("LOBA_MEM heap=%.1f rss=%.1f seconds=%.2f\n", mib(*peak-min(base, *peak)), mib(vmHWM(t)), elapsed.Seconds())
}

// midStep builds the midConfig UNet with random weights and a rank-4 lierla LoRA of random weights,
// and the exec of its step: loss = mean(unet(x, t, c)²) and ∂loss/∂(LoRA weights), batch 1,
// 64×64 latents, 77 tokens; it returns the exec and its arguments.
func midStep(t *testing.T, checkpointing bool) (*model.Exec, []any) {
	cfg := midConfig()
	m, err := unet.New(cfg)
	require.NoError(t, err)
	decl, err := weights.Declared(m.Declare)
	require.NoError(t, err)
	root := model.NewStore().RootScope()
	require.NoError(t, weights.InitFromScratch(root, decl, 1, 0.02))
	net, err := lora.Resolve(lora.UNet, decl, lora.Targets{Preset: lora.PresetLierLa, Rank: 4})
	require.NoError(t, err)
	require.NoError(t, net.Init(root, lora.InitOptions{Seed: 2, UpInit: lora.UpInitOrthonormal}))
	vars, err := net.Variables(root)
	require.NoError(t, err)
	ctx := root
	exec, err := model.NewExec(testutil.Backend(t), root.Store(), func(_ *model.Scope, x, ts, enc *Node) []*Node {
		g := x.Graph()
		nn.UseMemoryOptions(g, nn.MemoryOptions{GradientCheckpointing: checkpointing})
		nn.UseAdapter(g, net.Adapter(ctx, "/", nil))
		loss := ReduceAllMean(Square(m.Forward(ctx, x, ts, unet.Conditioning[*Node]{Hidden: enc})))
		wrt := make([]*Node, len(vars))
		for i, v := range vars {
			wrt[i] = v.NodeValue(g)
		}
		grads := Gradient(loss, wrt...)
		return append([]*Node{loss}, grads...)
	})
	require.NoError(t, err)
	const side, seq = 64, 77
	x := normalTensor(3, 1, 1, cfg.InChannels, side, side)
	enc := normalTensor(4, 1, 1, seq, cfg.CrossAttentionDim.At(0))
	return exec, []any{x, tensors.FromValue([]int64{500}), enc}
}

// normalTensor is a float32 tensor of N(0, std²) draws from a PCG stream seeded by seed.
func normalTensor(seed uint64, std float64, dims ...int) *tensors.Tensor {
	rng := rand.New(rand.NewPCG(seed, 14))
	v := make([]float32, shapes.Make(dtypes.Float32, dims...).Size())
	for i := range v {
		v[i] = float32(rng.NormFloat64() * std)
	}
	return tensors.FromFlatDataAndDimensions(v, dims...)
}

const heapObjectsMetric = "/memory/classes/heap/objects:bytes"

// heapObjects is the Go heap's object bytes: live objects and dead ones not yet swept.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: heapObjectsMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeapPeak samples heapObjects every millisecond until stop is called; *peak is the largest
// value seen (read it after stop).
func sampleHeapPeak() (stop func(), peak *uint64) {
	peak = new(uint64)
	*peak = heapObjects()
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			*peak = max(*peak, heapObjects())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); <-finished }, peak
}

// vmHWM is the process's peak resident set size (VmHWM of /proc/self/status), in bytes.
func vmHWM(t *testing.T) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			require.NoError(t, err, line)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// mib converts bytes to MiB.
func mib(bytes uint64) float64 { return float64(bytes) / (1 << 20) }
