package lora

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/unet"
)

// randomWeights gives every module of net random (non-zero) down and up weights, as float32.
func randomWeights(net *Network, seed uint64) map[string]ModuleWeights {
	rng := rand.New(rand.NewPCG(seed, 7))
	gen := func(dims []int) *tensors.Tensor {
		n := 1
		for _, d := range dims {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.1)
		}
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
	w := map[string]ModuleWeights{}
	for _, m := range net.Modules {
		w[m.Path] = ModuleWeights{Down: gen(m.DownShape()), Up: gen(m.UpShape())}
	}
	return w
}

// tinyUNets lists the unet fixture cases with their declared weights and config.
func tinyUNets(t *testing.T) (dirs []string, decls []map[string]shapes.Shape, sdxl []bool) {
	for _, dir := range fixtures.Cases(t, "unet") {
		cfg, err := unet.LoadConfig(filepath.Join(dir, "config.json"))
		require.NoError(t, err)
		dirs = append(dirs, dir)
		decls = append(decls, declaredUNet(t, filepath.Join(dir, "config.json")))
		sdxl = append(sdxl, cfg.IsSDXL())
	}
	return
}

// TestKohyaRoundTrip saves c3lier networks of every tiny UNet in F32, F16 and BF16 and in both
// layouts, and loads them back: modules, ranks, alphas, 0-d F32 alphas, metadata and values.
func TestKohyaRoundTrip(t *testing.T) {
	dirs, decls, sdxls := tinyUNets(t)
	for i, dir := range dirs {
		decl, sdxl := decls[i], sdxls[i]
		t.Run(filepath.Base(dir), func(t *testing.T) {
			net, err := Resolve(UNet, decl, Targets{Preset: PresetC3Lier, Rank: 4, Alpha: 2, ConvRank: 3, ConvAlpha: 1.5,
				Selectors: []Selector{{Match: "mid_block", Rank: 5, Alpha: 0.25}}})
			require.NoError(t, err)
			ctx := model.NewStore().RootScope()
			require.NoError(t, net.Init(ctx, InitOptions{Seed: 1}))
			w := randomWeights(net, 3)
			require.NoError(t, net.SetWeights(ctx, w))
			base := BaseSD1
			if sdxl {
				base = BaseSDXL10
			}
			layouts := []string{LayoutDiffusers}
			if sdxl {
				layouts = append(layouts, LayoutSAI)
			}
			for _, layout := range layouts {
				for _, dt := range []safetensors.DType{safetensors.F32, safetensors.F16, safetensors.BF16} {
					path := filepath.Join(t.TempDir(), "lora.safetensors")
					date := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
					require.NoError(t, SaveKohya(ctx, path, []*Network{net}, SaveOptions{DType: dt, Layout: layout, BaseModel: base,
						Date: date, Metadata: map[string]string{"loba.preset": "c3lier", "modelspec.title": "mine"}}))

					f, err := safetensors.Open(path)
					require.NoError(t, err)
					md := f.Metadata()
					for _, k := range []string{"ss_network_module", "ss_network_dim", "ss_network_alpha", "ss_network_args", "ss_base_model_version",
						"modelspec.sai_model_spec", "modelspec.architecture", "modelspec.implementation", "modelspec.title",
						"modelspec.date", "modelspec.prediction_type", "modelspec.resolution"} {
						require.NotEmpty(t, md[k], k)
					}
					require.Equal(t, "networks.lora", md["ss_network_module"])
					require.Equal(t, "4", md["ss_network_dim"])
					require.Equal(t, "2.0", md["ss_network_alpha"])
					require.Equal(t, base, md["ss_base_model_version"])
					require.Equal(t, "mine", md["modelspec.title"])
					require.Equal(t, "c3lier", md["loba.preset"])
					require.Equal(t, "2025-01-02T03:04:05", md["modelspec.date"])
					require.Equal(t, "epsilon", md["modelspec.prediction_type"])
					require.Len(t, f.Names(), 3*len(net.Modules))
					for _, m := range net.Modules {
						name, err := net.KohyaName(m, layout, sdxl)
						require.NoError(t, err)
						if layout == LayoutSAI {
							require.True(t, strings.HasPrefix(name, "lora_unet_input_blocks_") || strings.HasPrefix(name, "lora_unet_middle_block_") ||
								strings.HasPrefix(name, "lora_unet_output_blocks_"), name)
						}
						a, ok := f.Info(name + ".alpha")
						require.True(t, ok, name)
						require.Equal(t, safetensors.F32, a.DType)
						require.Empty(t, a.Shape)
						d, _ := f.Info(name + ".lora_down.weight")
						require.Equal(t, dt, d.DType)
						require.Equal(t, m.DownShape(), d.Shape)
					}
					require.NoError(t, f.Close())

					l, err := LoadKohya(path, Base{Component: UNet, Declared: decl})
					require.NoError(t, err)
					require.Equal(t, layout, l.Layout)
					got := l.Network(UNet)
					require.Len(t, got.Modules, len(net.Modules))
					for j, m := range net.Modules {
						g := got.Modules[j]
						require.Equal(t, *m, *g)
						for _, pair := range [][2]*tensors.Tensor{{w[m.Path].Down, l.Weights[UNet][m.Path].Down}, {w[m.Path].Up, l.Weights[UNet][m.Path].Up}} {
							want := flat(t, pair[0])
							gotV := flat(t, pair[1])
							for k := range want {
								var exp float32
								switch dt {
								case safetensors.F32:
									exp = want[k]
								case safetensors.F16:
									exp = float16.FromFloat32(want[k]).Float32()
								case safetensors.BF16:
									exp = safetensors.BF16FromFloat32(want[k]).Float32()
								}
								require.Equal(t, math.Float32bits(exp), math.Float32bits(gotV[k]), "%s %s[%d]", dt, m.Path, k)
							}
						}
					}
					// Loading into a fresh context gives the same variables.
					ctx2 := model.NewStore().RootScope()
					require.NoError(t, l.SetWeights(ctx2))
					vars, err := got.Variables(ctx2)
					require.NoError(t, err)
					require.Len(t, vars, 2*len(got.Modules))
				}
			}
		})
	}
}

// TestKohyaErrors checks the loader's and the writer's error reports.
func TestKohyaErrors(t *testing.T) {
	_, decls, _ := tinyUNets(t)
	decl := decls[0]
	net, err := Resolve(UNet, decl, Targets{Preset: PresetLierLa})
	require.NoError(t, err)
	ctx := model.NewStore().RootScope()
	require.NoError(t, net.Init(ctx, InitOptions{}))
	require.ErrorContains(t, net.Init(ctx, InitOptions{}), "already exist")

	dir := t.TempDir()
	_, err = checkOptions(SaveOptions{})
	require.ErrorContains(t, err, "BaseModel")
	require.ErrorContains(t, SaveKohya(ctx, filepath.Join(dir, "x.safetensors"), []*Network{net}, SaveOptions{BaseModel: BaseSD1, Layout: LayoutSAI}), "SDXL")
	require.ErrorContains(t, SaveKohya(ctx, filepath.Join(dir, "x.safetensors"), []*Network{net}, SaveOptions{BaseModel: BaseSD1, DType: "F64"}), "DType")

	// A file with foreign keys: every unmatched key is listed, with the file name.
	path := filepath.Join(dir, "bad.safetensors")
	entries := []safetensors.Entry{
		{Name: "lora_unet_not_a_module.lora_down.weight", DType: safetensors.F32, Shape: []int{}, Data: make([]byte, 4)},
		{Name: "lora_te_text_model_encoder_layers_0_mlp_fc1.alpha", DType: safetensors.F32, Shape: []int{}, Data: make([]byte, 4)},
		{Name: "lora_unet_mid_block_attentions_0_proj_in.dora_scale", DType: safetensors.F32, Shape: []int{}, Data: make([]byte, 4)},
	}
	require.NoError(t, safetensors.WriteEntries(path, entries, nil))
	_, err = LoadKohya(path, Base{Component: UNet, Declared: decl})
	require.Error(t, err)
	for _, s := range []string{"bad.safetensors", "3 keys", "lora_unet_not_a_module.lora_down.weight", "lora_te_text_model_encoder_layers_0_mlp_fc1.alpha",
		"lora_unet_mid_block_attentions_0_proj_in.dora_scale"} {
		require.ErrorContains(t, err, s)
	}
	// A module with only its down half, and a mis-shaped one.
	m := net.Modules[0]
	name, _ := net.KohyaName(m, LayoutDiffusers, false)
	down, _ := encodeFloats(safetensors.F32, make([]float64, 4*m.In))
	bad, _ := encodeFloats(safetensors.F32, make([]float64, 4*(m.In+1)))
	m2 := net.Modules[1]
	name2, _ := net.KohyaName(m2, LayoutDiffusers, false)
	up2, _ := encodeFloats(safetensors.F32, make([]float64, 4*m2.Out))
	require.NoError(t, safetensors.WriteEntries(path, []safetensors.Entry{
		{Name: name + ".lora_down.weight", DType: safetensors.F32, Shape: append([]int{4}, m.DownShape()[1:]...), Data: down},
		{Name: name2 + ".lora_down.weight", DType: safetensors.F32, Shape: []int{4, m2.In + 1}, Data: bad},
		{Name: name2 + ".lora_up.weight", DType: safetensors.F32, Shape: []int{m2.Out, 4}, Data: up2},
	}, nil))
	_, err = LoadKohya(path, Base{Component: UNet, Declared: decl})
	require.ErrorContains(t, err, "needs both")
	require.ErrorContains(t, err, "do not fit")
}

// checkOptions exposes SaveOptions.check to the tests.
func checkOptions(o SaveOptions) (SaveOptions, error) { err := o.check(); return o, err }

// TestSavePEFT checks the PEFT layout: keys, shapes and the alpha folded into lora_B.
func TestSavePEFT(t *testing.T) {
	_, decls, _ := tinyUNets(t)
	net, err := Resolve(UNet, decls[0], Targets{Preset: PresetC3Lier, Rank: 2, Alpha: 1})
	require.NoError(t, err)
	ctx := model.NewStore().RootScope()
	w := randomWeights(net, 5)
	require.NoError(t, net.SetWeights(ctx, w))
	path := filepath.Join(t.TempDir(), "peft.safetensors")
	require.NoError(t, SavePEFT(ctx, path, []*Network{net}, SaveOptions{DType: safetensors.F32}))
	f, err := safetensors.Open(path)
	require.NoError(t, err)
	defer f.Close()
	require.Len(t, f.Names(), 2*len(net.Modules))
	require.Equal(t, "folded_into_lora_B", f.Metadata()["loba.peft_alpha"])
	for _, m := range net.Modules {
		a, shA, err := f.Float32s("unet." + m.Path + ".lora_A.weight")
		require.NoError(t, err)
		b, shB, err := f.Float32s("unet." + m.Path + ".lora_B.weight")
		require.NoError(t, err)
		require.Equal(t, m.DownShape(), shA)
		require.Equal(t, m.UpShape(), shB)
		require.Equal(t, flat(t, w[m.Path].Down), a)
		up := flat(t, w[m.Path].Up)
		for i := range up {
			require.Equal(t, float32(float64(up[i])*m.Scale()), b[i])
		}
	}
}

// TestInitValues checks the zero-up init (kaiming-uniform down) and the frozen orthonormal up.
func TestInitValues(t *testing.T) {
	_, decls, _ := tinyUNets(t)
	net, err := Resolve(UNet, decls[0], Targets{Preset: PresetC3Lier, Rank: 4, Alpha: 1})
	require.NoError(t, err)

	ctx := model.NewStore().RootScope()
	require.NoError(t, net.Init(ctx, InitOptions{Seed: 9}))
	vars, err := net.Variables(ctx)
	require.NoError(t, err)
	for i, m := range net.Modules {
		down, up := vars[2*i], vars[2*i+1]
		require.True(t, down.Trainable)
		require.True(t, up.Trainable)
		require.Equal(t, m.DownShape(), down.Shape().Dimensions)
		require.True(t, strings.HasSuffix(down.Scope(), "/"+strings.ReplaceAll(m.Path, ".", "/")+"/lora_down"), down.Scope())
		require.True(t, strings.HasPrefix(down.Scope(), "/lora/unet/"), down.Scope())
		bound := 1 / math.Sqrt(float64(m.In*m.Kernel*m.Kernel))
		nonZero := 0
		for _, v := range tensors.MustCopyFlatData[float32](down.MustValue()) {
			require.LessOrEqual(t, math.Abs(float64(v)), bound)
			if v != 0 {
				nonZero++
			}
		}
		require.Positive(t, nonZero)
		for _, v := range tensors.MustCopyFlatData[float32](up.MustValue()) {
			require.Zero(t, v)
		}
	}
	// Same seed, same values; another module set does not change a module's values.
	ctx2 := model.NewStore().RootScope()
	sub := &Network{Component: UNet, Modules: net.Modules[3:5]}
	require.NoError(t, sub.Init(ctx2, InitOptions{Seed: 9}))
	v2, err := sub.Variables(ctx2)
	require.NoError(t, err)
	require.True(t, vars[6].MustValue().Equal(v2[0].MustValue()))

	ctx3 := model.NewStore().RootScope()
	require.NoError(t, net.Init(ctx3, InitOptions{Seed: 2, UpInit: UpInitOrthonormal, DType: dtypes.Float64}))
	vars, err = net.Variables(ctx3)
	require.NoError(t, err)
	for i, m := range net.Modules {
		down, up := vars[2*i], vars[2*i+1]
		require.True(t, down.Trainable)
		require.False(t, up.Trainable, "orthonormal up is frozen")
		for _, v := range tensors.MustCopyFlatData[float64](down.MustValue()) {
			require.Zero(t, v)
		}
		u := tensors.MustCopyFlatData[float64](up.MustValue()) // [out, r]
		rows, cols := m.Out, m.Rank
		for a := range cols {
			for b := range cols {
				dot := 0.0
				for k := range rows {
					dot += u[k*cols+a] * u[k*cols+b]
				}
				want := 0.0
				if a == b {
					want = 1
				}
				if rows >= cols {
					require.InDelta(t, want, dot, 1e-12, "%s UᵀU[%d,%d]", m.Path, a, b)
				}
			}
		}
	}
	require.ErrorContains(t, net.Init(model.NewStore().RootScope(), InitOptions{UpInit: "gaussian"}), "UpInit")
}

// TestKohyaTextEncoders saves a UNet and two text-encoder networks in one SDXL file (lora_unet_,
// lora_te1_, lora_te2_) and one SD1 file (lora_te_), and loads them back; a lora_te1_ file also
// loads onto an SD1 text_encoder base.
func TestKohyaTextEncoders(t *testing.T) {
	_, decls, _ := tinyUNets(t)
	te := declaredCLIP(t, filepath.Join(fixtures.Root(t), "clip_text", "sd15_clip_l_tiny", "config.json"))
	te2 := declaredCLIP(t, filepath.Join(fixtures.Root(t), "clip_text", "sdxl_clip_g_tiny", "config.json"))
	un, err := Resolve(UNet, decls[0], Targets{Rank: 2})
	require.NoError(t, err)
	n1, err := Resolve(TextEncoder, te, Targets{Rank: 3, Alpha: 1})
	require.NoError(t, err)
	n2, err := Resolve(TextEncoder2, te2, Targets{Rank: 2, Alpha: 1})
	require.NoError(t, err)
	ctx := model.NewStore().RootScope()
	for i, n := range []*Network{un, n1, n2} {
		require.NoError(t, n.SetWeights(ctx, randomWeights(n, uint64(i))))
	}
	bases := []Base{{Component: UNet, Declared: decls[0]}, {Component: TextEncoder, Declared: te}, {Component: TextEncoder2, Declared: te2}}
	for _, c := range []struct {
		base     string
		nets     []*Network
		prefixes []string
	}{
		{BaseSDXL10, []*Network{un, n1, n2}, []string{"lora_unet_", "lora_te1_", "lora_te2_"}},
		{BaseSD1, []*Network{un, n1}, []string{"lora_unet_", "lora_te_"}},
	} {
		path := filepath.Join(t.TempDir(), "lora.safetensors")
		require.NoError(t, SaveKohya(ctx, path, c.nets, SaveOptions{BaseModel: c.base, DType: safetensors.F32}))
		f, err := safetensors.Open(path)
		require.NoError(t, err)
		count := map[string]int{}
		for _, k := range f.Names() {
			for _, p := range c.prefixes {
				if strings.HasPrefix(k, p) {
					count[p]++
				}
			}
		}
		f.Close()
		for i, p := range c.prefixes {
			require.Equal(t, 3*len(c.nets[i].Modules), count[p], p)
		}
		l, err := LoadKohya(path, bases...)
		require.NoError(t, err)
		require.Len(t, l.Networks, len(c.nets))
		for i, n := range c.nets {
			require.Equal(t, n.Component, l.Networks[i].Component)
			require.Len(t, l.Networks[i].Modules, len(n.Modules))
			want, err := n.Weights(ctx)
			require.NoError(t, err)
			for p, mw := range want {
				require.True(t, mw.Up.Equal(l.Weights[n.Component][p].Up), p)
			}
		}
	}
	// The same module under lora_te_ and lora_te1_ is reported.
	path := filepath.Join(t.TempDir(), "dup.safetensors")
	m := n1.Modules[0]
	a, _ := encodeFloats(safetensors.F32, []float64{1})
	name := strings.ReplaceAll(m.Path, ".", "_")
	require.NoError(t, safetensors.WriteEntries(path, []safetensors.Entry{
		{Name: "lora_te_" + name + ".alpha", DType: safetensors.F32, Shape: []int{}, Data: a},
		{Name: "lora_te1_" + name + ".alpha", DType: safetensors.F32, Shape: []int{}, Data: a},
	}, nil))
	_, err = LoadKohya(path, bases...)
	require.ErrorContains(t, err, "same tensor")
}
