package train

import (
	"math"
	"slices"
	"testing"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/loba-dev/loba/internal/testutil"
)

// draws mixes every kind of draw the trainer makes.
func draws(g *RNG) []float64 {
	var out []float64
	for i := 0; i < 5; i++ {
		out = append(out, float64(g.IntN(1000)), g.Float64())
		for _, v := range g.Normal(7) {
			out = append(out, float64(v))
		}
	}
	return out
}

func TestRNGStateRestore(t *testing.T) {
	g := NewRNG(42)
	draws(g) // advance
	state := g.State()
	want := draws(g)
	if err := g.Restore(state); err != nil {
		t.Fatal(err)
	}
	if got := draws(g); !slices.Equal(got, want) {
		t.Fatalf("restored sequence differs:\n got  %v\n want %v", got, want)
	}
	// Restoring into another generator (a resumed process) gives the same sequence too.
	g2 := NewRNG(7)
	if err := g2.Restore(state); err != nil {
		t.Fatal(err)
	}
	if got := draws(g2); !slices.Equal(got, want) {
		t.Fatal("sequence restored in a new RNG differs")
	}
	if !slices.Equal(draws(NewRNG(3)), draws(NewRNG(3))) || slices.Equal(draws(NewRNG(3)), draws(NewRNG(4))) {
		t.Error("seeding is not deterministic or ignores the seed")
	}
	if err := g.Restore([]byte("junk")); err == nil {
		t.Error("junk state accepted")
	}
	// Moments of the normals.
	n := NewRNG(1).Normal(20000)
	var s, ss float64
	for _, v := range n {
		s += float64(v)
		ss += float64(v) * float64(v)
	}
	mean := s / float64(len(n))
	std := math.Sqrt(ss/float64(len(n)) - mean*mean)
	if math.Abs(mean) > 0.03 || math.Abs(std-1) > 0.03 {
		t.Errorf("Normal: mean %v, std %v", mean, std)
	}
}

func TestNoiseOffset(t *testing.T) {
	const b, c, h, w = 2, 3, 2, 4
	g := NewRNG(5)
	noise, off := g.Normal(b*c*h*w), g.Normal(b*c)
	out := MustExecOnce(testutil.Backend(t), func(n, r *Node) *Node { return noiseOffset(n, 0.1, r) },
		tensors.FromFlatDataAndDimensions(noise, b, c, h, w), tensors.FromFlatDataAndDimensions(off, b, c, 1, 1))
	got := tensors.MustCopyFlatData[float32](out)
	host := slices.Clone(noise)
	if err := noiseOffsetHost(host, b, c, h, w, 0.1, off); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		want := float64(noise[i]) + 0.1*float64(off[i/(h*w)])
		if math.Abs(float64(got[i])-want) > 1e-6 || math.Abs(float64(host[i])-want) > 1e-6 {
			t.Fatalf("[%d]: graph %v, host %v, want %v", i, got[i], host[i], want)
		}
	}
	if err := noiseOffsetHost(host, b, c, h, w, 0.1, off[:1]); err == nil {
		t.Error("short rngNoise accepted")
	}
}

// Hand-computed torch F.interpolate(mode="bilinear", align_corners=False) values.
func TestNoiseUpsampleBilinear(t *testing.T) {
	got := upsampleBilinear([]float32{0, 1, 2, 3}, 1, 2, 2, 4, 4)
	want := []float32{0, .25, .75, 1, .5, .75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3}
	assertClose(t, "2x2→4x4", toF64(got), toF64(want), 1e-6)
	got = upsampleBilinear([]float32{0, 1, 2}, 1, 1, 3, 1, 5) // scale 3/5
	assertClose(t, "1x3→1x5", toF64(got), []float64{0, 0.4, 1, 1.6, 2}, 1e-6)
	// The graph version (gomlx Interpolate, half-pixel centres) agrees.
	out := MustExecOnce(testutil.Backend(t), func(x *Node) *Node {
		return Interpolate(x, -1, -1, 4, 4).Bilinear().Done()
	}, tensors.FromFlatDataAndDimensions([]float32{0, 1, 2, 3}, 1, 1, 2, 2))
	assertClose(t, "graph 2x2→4x4", toF64(tensors.MustCopyFlatData[float32](out)), toF64(want), 1e-6)
}

func TestNoiseMultires(t *testing.T) {
	const b, c, h, w = 2, 3, 12, 10 // non-square
	for _, tc := range []struct {
		iterations int
		discount   float64
	}{{6, 0.3}, {10, 0.8}, {1, 0.5}} {
		g := NewRNG(uint64(11 + tc.iterations))
		noise := g.Normal(b * c * h * w)
		sizes, normals := multiresInputs(g, b, c, h, w, tc.iterations)
		if len(sizes) == 0 || len(sizes) > tc.iterations || sizes[0] != [2]int{h, w} {
			t.Fatalf("iterations %d: sizes %v", tc.iterations, sizes)
		}
		for i := 1; i < len(sizes); i++ {
			if sizes[i][0] > sizes[i-1][0] || sizes[i][1] > sizes[i-1][1] || (i < len(sizes)-1 && min(sizes[i][0], sizes[i][1]) == 1) {
				t.Fatalf("sizes %v not a pyramid stopping at side 1", sizes)
			}
		}
		if tc.iterations == 10 && min(sizes[len(sizes)-1][0], sizes[len(sizes)-1][1]) != 1 {
			t.Errorf("10 iterations at ratio >= 2 must reach a side of 1: %v", sizes)
		}
		args := []any{tensors.FromFlatDataAndDimensions(noise, b, c, h, w)}
		for i, s := range sizes {
			if len(normals[i]) != b*c*s[0]*s[1] {
				t.Fatalf("level %d: %d normals for %v", i, len(normals[i]), s)
			}
			args = append(args, tensors.FromFlatDataAndDimensions(normals[i], b, c, s[0], s[1]))
		}
		out := MustExecOnce(testutil.Backend(t), func(in []*Node) *Node {
			return multiresNoise(in[0], tc.iterations, tc.discount, in[1:])
		}, args...)
		got := toF64(tensors.MustCopyFlatData[float32](out))
		host := slices.Clone(noise)
		if err := multiresNoiseHost(host, b, c, h, w, tc.iterations, tc.discount, sizes, normals); err != nil {
			t.Fatal(err)
		}
		if e := testutil.RelErr(got, toF64(host)); e > 1e-6 {
			t.Errorf("iterations %d: graph vs host rel err %v", tc.iterations, e)
		}
		// Unit (unbiased) std over the whole tensor.
		var s, ss float64
		for _, v := range got {
			s += v
		}
		mean := s / float64(len(got))
		for _, v := range got {
			ss += (v - mean) * (v - mean)
		}
		if std := math.Sqrt(ss / float64(len(got)-1)); math.Abs(std-1) > 1e-5 {
			t.Errorf("iterations %d: std %v", tc.iterations, std)
		}
		// One level only (iterations 1) is noise + the same-size normal, rescaled.
		if tc.iterations == 1 {
			sum := make([]float64, len(noise))
			for i := range noise {
				sum[i] = float64(noise[i]) + float64(normals[0][i])
			}
			var m, q float64
			for _, v := range sum {
				m += v
			}
			m /= float64(len(sum))
			for _, v := range sum {
				q += (v - m) * (v - m)
			}
			sd := math.Sqrt(q / float64(len(sum)-1))
			for i := range sum {
				sum[i] /= sd
			}
			if e := testutil.RelErr(got, sum); e > 1e-6 {
				t.Errorf("iterations 1: rel err %v", e)
			}
		}
	}
	// iterations 0: unchanged.
	out := MustExecOnce(testutil.Backend(t), func(n *Node) *Node { return multiresNoise(n, 0, 0.5, nil) },
		tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4}, 1, 1, 2, 2))
	if got := tensors.MustCopyFlatData[float32](out); !slices.Equal(got, []float32{1, 2, 3, 4}) {
		t.Errorf("iterations 0 changed the noise: %v", got)
	}
}
