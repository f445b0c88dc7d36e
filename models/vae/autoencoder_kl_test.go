package vae

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/safetensors"
)

// vaeOutputs lists every out.* tensor a vae case may hold, with the in.* tensors it needs.
var vaeOutputs = map[string][]string{
	"out.moments":           {"in.image"},
	"out.mean":              {"in.image"},
	"out.logvar":            {"in.image"},
	"out.std":               {"in.image"},
	"out.latent_sample":     {"in.image", "in.noise"},
	"out.decoded":           {"in.latents"},
	"out.decoded_from_mean": {"in.image"},
}

// TestParity runs every vae fixture case: it loads the folder with Load, computes every out.* the
// case provides from its in.* tensors, and compares them (relative L2 < 1e-4).
func TestParity(t *testing.T) {
	backend := testutil.Backend(t)
	for _, dir := range fixtures.Cases(t, "vae") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			model, ctx, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			io, err := safetensors.Open(filepath.Join(dir, "io.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer io.Close()

			// Which outputs to compute, and which inputs they need.
			var outs []string
			needIn := map[string]bool{}
			for _, name := range io.Names() {
				switch {
				case strings.HasPrefix(name, "out."):
					deps, ok := vaeOutputs[name]
					if !ok {
						t.Errorf("unknown output %q in %s: the test does not know how to compute it", name, dir)
						continue
					}
					outs = append(outs, name)
					for _, d := range deps {
						needIn[d] = true
					}
				case strings.HasPrefix(name, "in."), strings.HasPrefix(name, "dbg."):
				default:
					t.Errorf("unexpected tensor %q in io.safetensors", name)
				}
			}
			sort.Strings(outs)
			if len(outs) == 0 {
				t.Fatalf("%s: no out.* tensors", dir)
			}
			var inNames []string
			var inputs []any
			for _, name := range []string{"in.image", "in.noise", "in.latents"} {
				if !needIn[name] {
					continue
				}
				vals, dims, err := io.Float32s(name)
				if err != nil {
					t.Fatalf("%s is needed by the outputs: %v", name, err)
				}
				inNames = append(inNames, name)
				inputs = append(inputs, tensors.FromFlatDataAndDimensions(vals, dims...))
			}

			exec, err := gmodel.NewExec(backend, ctx.Store(), func(_ *gmodel.Scope, in []*Node) []*Node {
				byName := map[string]*Node{}
				for i, n := range inNames {
					byName[n] = in[i]
				}
				computed := map[string]*Node{}
				if img := byName["in.image"]; img != nil {
					moments := model.Encode(ctx, img) // [B, 2L, h, w]
					mean, logvar, std := DiagonalGaussian(moments)
					computed["out.moments"], computed["out.mean"] = moments, mean
					computed["out.logvar"], computed["out.std"] = logvar, std
					if noise := byName["in.noise"]; noise != nil {
						computed["out.latent_sample"] = Sample(mean, std, noise)
					}
					if needOut(outs, "out.decoded_from_mean") {
						computed["out.decoded_from_mean"] = model.Decode(ctx, mean)
					}
				}
				if lat := byName["in.latents"]; lat != nil {
					computed["out.decoded"] = model.Decode(ctx, lat)
				}
				res := make([]*Node, len(outs))
				for i, o := range outs {
					res[i] = computed[o]
				}
				return res
			})
			if err != nil {
				t.Fatal(err)
			}
			results, err := exec.Exec(inputs...)
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range outs {
				want, wantDims, err := io.Float32s(o)
				if err != nil {
					t.Fatal(err)
				}
				gotT := results[i]
				if !equalInts(gotT.Shape().Dimensions, wantDims) {
					t.Errorf("%s: shape %v, want %v", o, gotT.Shape().Dimensions, wantDims)
					continue
				}
				got := tensors.MustCopyFlatData[float32](gotT)
				rel := testutil.RelErr(got, want)
				t.Logf("%-22s %v rel L2 %.3g", o, wantDims, rel)
				if !(rel < 1e-4) {
					t.Errorf("%s: relative L2 error %.3g >= 1e-4", o, rel)
				}
			}
		})
	}
}

func needOut(outs []string, name string) bool {
	for _, o := range outs {
		if o == name {
			return true
		}
	}
	return false
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
