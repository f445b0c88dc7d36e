package train

// The devices a memory plan is shown for, and the memory this process may use.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/loba-dev/loba/models/sd"
)

// Device is a kind of machine a run may train on.
type Device struct {
	Name string
	// Memory is what a run may use, in bytes (a GPU's memory less the CUDA context and XLA's
	// workspace; this machine's available RAM).
	Memory int64
	// TFLOPS is the sustained dense throughput a UNet step reaches (an estimate: the card's
	// peak in the dtype times gpuEfficiency; measured for this machine).
	TFLOPS float64
	// Half: no bfloat16 support, the frozen weights are float16 (a T4).
	Half bool
	// CPU: the pure-Go backend in float32.
	CPU bool
}

// gpuEfficiency is the fraction of a GPU's peak dense throughput a diffusion UNet's training step
// sustains (mixed convolutions, attention, normalisation) — uncalibrated until a GPU run measures
// it. cpuEfficiency is the fraction of this machine's measured matmul throughput (matmulTFLOPS) the
// Go backend sustains on a real-size step: 0.55, measured by BenchmarkRealSD15Step (SD1.5 at 512²,
// 4.1 TFLOP in 33 s = 124 GFLOPS against 224 GFLOPS for the probe on the same 2-core machine).
const (
	gpuEfficiency = 0.35
	cpuEfficiency = 0.55
	gpuReserve    = 1 << 30 // CUDA context, cuDNN and XLA workspace
)

const gib = 1 << 30

// GPUs are the cards of Colab and the usual clouds, with their memory and dense peak TFLOPS in
// bfloat16 (float16 for the T4).
var GPUs = []Device{
	{Name: "T4 16GB", Memory: 15*gib - gpuReserve, TFLOPS: 65 * gpuEfficiency, Half: true},
	{Name: "L4 24GB", Memory: 22*gib - gpuReserve, TFLOPS: 121 * gpuEfficiency},
	{Name: "A100 40GB", Memory: 39*gib - gpuReserve, TFLOPS: 312 * gpuEfficiency},
	{Name: "A100 80GB", Memory: 79*gib - gpuReserve, TFLOPS: 312 * gpuEfficiency},
	{Name: "H100 80GB", Memory: 79*gib - gpuReserve, TFLOPS: 989 * gpuEfficiency},
}

// Devices are the rows a plan is shown for: the GPUs, then this machine (with its throughput on
// backend b). When this machine's memory cannot be told, it is left out and the error says why.
func Devices(b compute.Backend) ([]Device, error) {
	devices := append([]Device{}, GPUs...)
	me, err := ThisMachine(b)
	if err != nil {
		return devices, fmt.Errorf("this machine left out: %w", err)
	}
	return append(devices, me), nil
}

// ThisMachine is the CPU device of this process: the memory it may use (availableMemory) and its
// measured throughput on backend (0 when backend is nil).
func ThisMachine(backend compute.Backend) (Device, error) {
	mem, err := availableMemory()
	if err != nil {
		return Device{}, err
	}
	d := Device{Name: "this machine (CPU)", Memory: mem, CPU: true}
	if backend != nil {
		if d.TFLOPS, err = matmulTFLOPS(backend); err != nil {
			return d, err
		}
		d.TFLOPS *= cpuEfficiency
	}
	return d, nil
}

// availableMemory is the memory this process may use: the smallest of the RAM available
// (/proc/meminfo MemAvailable), the cgroup's limit (memory.max) and LOBA_MEMORY_LIMIT (bytes, or
// with a suffix: 8GB, 512MiB).
func availableMemory() (int64, error) {
	avail := int64(-1)
	if v, err := meminfo("MemAvailable"); err == nil {
		avail = v
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && (avail < 0 || v < avail) {
			avail = v
		}
	}
	if s := os.Getenv("LOBA_MEMORY_LIMIT"); s != "" {
		v, err := parseBytes(s)
		if err != nil {
			return 0, fmt.Errorf("LOBA_MEMORY_LIMIT=%q: %w", s, err)
		}
		if avail < 0 || v < avail {
			avail = v
		}
	}
	if avail < 0 {
		return 0, fmt.Errorf("cannot tell the available memory (no /proc/meminfo); set LOBA_MEMORY_LIMIT")
	}
	return avail, nil
}

// meminfo reads one /proc/meminfo field in bytes.
func meminfo(field string) (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			break
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		return kb * 1024, err
	}
	return 0, fmt.Errorf("/proc/meminfo has no %s", field)
}

// parseBytes reads a byte count: a number with an optional unit (B, KB, MB, GB, TB: powers of
// 1000; KiB, MiB, GiB, TiB: powers of 1024).
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToUpper(strings.TrimSpace(s[i:]))
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("want a size like 8GB or 512MiB")
	}
	mult := map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "K": 1e3, "M": 1e6, "G": 1e9,
		"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q (want B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", unit)
	}
	return int64(v * mult), nil
}

// matmulTFLOPS measures backend's float32 matrix-multiply throughput (the best of three
// 1024×2048·2048×1024 products, after one to compile: about 0.1 s on two cores).
func matmulTFLOPS(backend compute.Backend) (float64, error) {
	const m, k, n = 1024, 2048, 1024
	exec, err := NewExec(backend, func(a, b *Node) *Node { return DotGeneral(a, []int{1}, nil, b, []int{0}, nil) })
	if err != nil {
		return 0, err
	}
	a := tensors.FromShape(shapes.Make(dtypes.Float32, m, k))
	b := tensors.FromShape(shapes.Make(dtypes.Float32, k, n))
	best := time.Duration(1 << 62)
	for i := range 4 {
		start := time.Now()
		if _, err := exec.Exec(a, b); err != nil {
			return 0, err
		}
		if i > 0 {
			best = min(best, time.Since(start))
		}
	}
	return 2 * m * k * n / best.Seconds() / 1e12, nil
}

// runDevice is the device a run on backend b trains on, with its memory; ok false when the memory
// cannot be told (an accelerator without nvidia-smi).
func runDevice(b compute.Backend, dtype dtypes.DType) (Device, bool) {
	if !sd.Accelerator(b) {
		d, err := ThisMachine(nil)
		return d, err == nil
	}
	total, err := gpuMemory()
	if err != nil {
		return Device{}, false
	}
	return Device{Name: "this GPU", Memory: total - gpuReserve, Half: dtype == dtypes.Float16, CPU: dtype == dtypes.Float32}, true
}

// gpuMemory is the first GPU's memory in bytes, from nvidia-smi (a local command).
func gpuMemory() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits").Output()
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	mib, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	return mib << 20, err
}

// gcPercent is the Go garbage collector's target heap growth while a real-size run trains on the Go
// backend: its tensors are few, large, pointer-free buffers, cheap to collect, so a tight target
// keeps the process's memory close to what is live. Tiny models allocate many small buffers per
// second, for which it would cost 4× the time (toy-size: 133 s against 30 s), so they keep Go's
// default.
//
// cpuOverhead is what the process holds beyond the live buffers the plan counts (each rounded to
// the Go backend's allocation buckets): freed buffers wait in the backend's per-size pools until
// the collector empties them, and the collector's own headroom. Measured by BenchmarkRealSD15Step
// (peak RSS over the plan's live peak): 1.45 without and 1.40 with gradient checkpointing.
const (
	gcPercent   = 10
	cpuOverhead = 1.4
)

// tuneGC sets the garbage collector for a run on the Go backend: growth gcPercent for a real-size
// model unless the user set GOGC, and (unless GOMEMLIMIT is set) a soft limit at the memory this
// process may use, so that the collector works harder before the machine runs out.
func tuneGC(realSize bool) {
	if realSize && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		if mem, err := availableMemory(); err == nil {
			debug.SetMemoryLimit(mem)
		}
	}
}
