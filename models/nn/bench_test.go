package nn

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/loba-dev/loba/internal/gradfix"
)

// Benchmarks of the gradient paths on simplego (go test ./models/nn/ -run XXX -bench . -benchtime 3x).
// Besides time, each reports:
//   - peak-heap-MB: the peak of live Go heap objects above the (post-GC) baseline, sampled every
//     200µs while the iterations run — simplego's buffers are Go slices, so this is the working
//     set of the computation (plus buffers parked in its pools);
//   - alloc-MB/op: bytes allocated per iteration;
//   - GFLOP/s of the useful work (2·M·N·K per gemm; forward + 2 gradient gemms).

// measure runs fn b.N times (after one untimed warm-up, which compiles) and reports the metrics.
func measure(b *testing.B, flopsPerOp float64, fn func()) {
	fn() // compile + warm up
	runtime.GC()
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	baseline := sample[0].Value.Uint64()
	var peak atomic.Uint64
	peak.Store(baseline)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		ticker := time.NewTicker(200 * time.Microsecond)
		defer ticker.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ticker.C:
				metrics.Read(s)
				if v := s[0].Value.Uint64(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for range b.N {
		fn()
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	close(stop)
	<-done
	b.ReportMetric(float64(peak.Load()-baseline)/1e6, "peak-heap-MB")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/1e6, "alloc-MB/op")
	if flopsPerOp > 0 {
		b.ReportMetric(flopsPerOp*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	}
}

func randomF32(dims ...int) *tensors.Tensor {
	t := tensors.FromShape(shapes.Make(dtypes.Float32, dims...))
	tensors.MutableFlatData(t, func(flat []float32) {
		for i := range flat {
			flat[i] = float32((i*7919)%1000)/1000 - 0.5
		}
	})
	return t
}

// withVJPs builds (and compiles, by running once) exec with gomlx's stock VJPs when stock is true.
func withVJPs(stock bool, build func()) {
	if stock {
		gradfix.Uninstall()
		defer gradfix.Install()
	}
	build()
}

// BenchmarkMatmulBackward: x [n, n] · y [n, n], forward plus the gradients w.r.t. both operands.
// The stock v0.26.0 VJP materialises an n³ float32 intermediate per operand (4.3 GB at n=1024, so
// stock runs at n=512 unless LOBA_BENCH_BIG=1); gradfix runs two gemms.
func BenchmarkMatmulBackward(b *testing.B) {
	backend := testBackend(b)
	for _, c := range []struct {
		vjp string
		n   int
	}{{"gradfix", 512}, {"stock", 512}, {"gradfix", 1024}, {"stock", 1024}} {
		b.Run(fmt.Sprintf("%s/n=%d", c.vjp, c.n), func(b *testing.B) {
			if c.vjp == "stock" && c.n > 512 && os.Getenv("LOBA_BENCH_BIG") == "" {
				b.Skip("stock VJP at n=1024 needs > 4.3 GB; set LOBA_BENCH_BIG=1")
			}
			x, y := randomF32(c.n, c.n), randomF32(c.n, c.n)
			exec := MustNewExec(backend, func(x, y *Node) []*Node {
				z := Einsum("mk,kn->mn", x, y)
				loss := ReduceAllSum(Mul(z, z))
				return Gradient(loss, x, y)
			})
			defer exec.Finalize()
			run := func() {
				for _, t := range exec.MustExec(x, y) {
					t.FinalizeAll()
				}
			}
			withVJPs(c.vjp == "stock", run) // builds the graph with the chosen VJPs
			n := float64(c.n)
			measure(b, 3*2*n*n*n, run)
		})
	}
}

// BenchmarkConv3x3: x [1, 64, 64, 64] (NCHW), kernel [64, 64, 3, 3], stride 1, padding 1 — the
// forward alone and the forward plus the gradients w.r.t. input and kernel — as im2col (nn's
// simplego path) and as the native ConvGeneral (XLA's path; gradients by gradfix).
func BenchmarkConv3x3(b *testing.B) {
	backend := testBackend(b)
	const batch, ch, size, k = 1, 64, 64, 3
	flops := 2.0 * batch * ch * ch * k * k * size * size
	x, w := randomF32(batch, ch, size, size), randomF32(ch, ch, k, k)
	pad := [2][2]int{{1, 1}, {1, 1}}
	for _, impl := range []string{"im2col", "native"} {
		conv := conv2DIm2col
		if impl == "native" {
			conv = conv2DNative
		}
		b.Run("forward/"+impl, func(b *testing.B) {
			exec := MustNewExec(backend, func(x, w *Node) *Node { return conv(x, w, 1, pad) })
			defer exec.Finalize()
			measure(b, flops, func() { exec.MustExec(x, w)[0].FinalizeAll() })
		})
		b.Run("backward/"+impl, func(b *testing.B) {
			exec := MustNewExec(backend, func(x, w *Node) []*Node {
				y := conv(x, w, 1, pad)
				return Gradient(ReduceAllSum(Mul(y, y)), x, w)
			})
			defer exec.Finalize()
			measure(b, 3*flops, func() {
				for _, t := range exec.MustExec(x, w) {
					t.FinalizeAll()
				}
			})
		})
	}
}
