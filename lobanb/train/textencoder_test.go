package train

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/fixtures/tinypipe"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/sd"
)

// tinyTextPreset is tinyPreset (the tiny SD1.5 fixture, whose text encoder is a tiny CLIP) in mode
// loba with a text-encoder network (lierla) and the UNet's network preset unet ("none": text
// encoder only).
func tinyTextPreset(t testing.TB, steps int, unet string) *slider.Preset {
	t.Helper()
	p := tinyPreset(t, steps)
	q := slider.Defaults()
	q.Model, q.Train, q.Prompts = p.Model, p.Train, p.Prompts
	q.Objective, q.Mode = slider.ObjectiveLECO, slider.ModeLOBA
	q.MaxDenoisingSteps = 4
	q.Network.Targets = unet
	q.Network.TextEncoder = slider.TextEncoderNetwork{Targets: "lierla"}
	require.NoError(t, q.Normalize())
	return q
}

// TestTextEncoderGradients (issue 17): the train step's gradient of the text-encoder networks'
// weights — the adapter's prompt encoded through the adapted tiny CLIP inside the step — matches
// central finite differences of the loss-only graph, for the weights with the largest gradients
// of a down and an up projection of the first and the last text-encoder module. The step is run
// with SGD at lr 1 and no clipping, so its update is the gradient: w − w' = ∂L/∂w.
func TestTextEncoderGradients(t *testing.T) {
	p := tinyTextPreset(t, 1, "lierla")
	p.Train.Optimizer, p.Train.LR, p.Train.MaxGradNorm = OptimizerSGD, 1, 0
	p.Train.WeightDecay = ptrTo(0.0)
	run, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	require.Len(t, run.TextNets, 1)
	te := run.TextNets[0]
	require.Equal(t, lora.TextEncoder, te.Component)
	setAdapterValues(t, run)
	l := run.loop
	batch, err := l.batch(0)
	require.NoError(t, err)
	require.Len(t, batch.targetIDs, 1, "one tiny CLIP")
	g := l.groups[0][0]
	rng := NewRNG(11)
	x := tensors.FromFlatDataAndDimensions(rng.Normal(batch.size*l.latentChannels*g.LatentH*g.LatentW), batch.size, l.latentChannels, g.LatentH, g.LatentW)
	in := stepInputs{X: x, T: tensors.FromValue([]int64{601}),
		Target: batch.target, Positive: batch.positive, Neutral: batch.neutral, Unconditional: batch.unconditional,
		SignedGuidance: batch.guidance, Multiplier: batch.multiplier, Weight: batch.weight,
		LR: 1, Step: 1, HuberC: float32(p.Train.HuberC), TargetIDs: batch.targetIDs}
	loss := func() float64 {
		out, err := l.graphs.eval.Run(in)
		require.NoError(t, err)
		return float64(out.Loss)
	}
	teVars, err := te.Variables(run.Pipeline.Ctx)
	require.NoError(t, err)
	probe := []int{0, 1, len(teVars) - 2, len(teVars) - 1} // down, up of the first and the last module
	before := make([][]float32, len(probe))
	for i, vi := range probe {
		before[i] = tensors.MustCopyFlatData[float32](teVars[vi].MustValue())
	}
	saved := map[string]*tensors.Tensor{}
	for _, v := range l.adapter {
		saved[v.Path()] = tensors.FromFlatDataAndDimensions(tensors.MustCopyFlatData[float32](v.MustValue()), v.Shape().Dimensions...)
	}
	_, err = l.graphs.step.Run(in)
	require.NoError(t, err)
	after := make([][]float32, len(probe))
	for i, vi := range probe {
		after[i] = tensors.MustCopyFlatData[float32](teVars[vi].MustValue())
	}
	for _, v := range l.adapter { // the step updated every variable: back to where the gradient was taken
		require.NoError(t, v.SetValue(saved[v.Path()]))
	}
	set := func(v int, vals []float32) {
		require.NoError(t, teVars[v].SetValue(tensors.FromFlatDataAndDimensions(append([]float32(nil), vals...), teVars[v].Shape().Dimensions...)))
	}
	for i, vi := range probe {
		grad := make([]float64, len(after[i]))
		order := make([]int, len(after[i]))
		for j := range after[i] {
			grad[j], order[j] = float64(before[i][j]-after[i][j]), j
		}
		sort.Slice(order, func(a, b int) bool { return math.Abs(grad[order[a]]) > math.Abs(grad[order[b]]) })
		require.Greater(t, math.Abs(grad[order[0]]), 1e-4, "%s has a gradient", teVars[vi].Path())
		for _, j := range order[:3] {
			const h = 1e-3
			vals := append([]float32(nil), before[i]...)
			vals[j] = before[i][j] + h
			set(vi, vals)
			up := loss()
			vals[j] = before[i][j] - h
			set(vi, vals)
			down := loss()
			set(vi, before[i])
			fd := (up - down) / (2 * h)
			require.InDelta(t, fd, grad[j], 0.02*math.Abs(fd)+1e-5, "%s[%d]: step gradient %g, finite difference %g", teVars[vi].Path(), j, grad[j], fd)
		}
	}
}

// TestTextEncoderKohyaRoundTrip (issue 17 acceptance 3): a UNet + text-encoder adapter trained on
// the tiny fixture saves one kohya file that loads back with every key — the UNet's modules and the
// text encoder's, the same weights — and its text-encoder keys are kohya's names (lora_te_…), each
// one of the names network.text_encoder gives on the real SD1.5 text encoder, which are exactly
// the kohya key list of fixtures/real/lora (72 modules; SDXL: 72 lora_te1_ and 192 lora_te2_).
func TestTextEncoderKohyaRoundTrip(t *testing.T) {
	p := tinyTextPreset(t, 2, "lierla")
	run, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	res, err := run.Train()
	require.NoError(t, err)
	teDecl, err := run.Pipeline.TextEncoders[0].Declared()
	require.NoError(t, err)
	uDecl, err := run.Pipeline.UNet.Declared()
	require.NoError(t, err)
	loaded, err := lora.LoadKohya(res.LoRAPath, lora.Base{Component: lora.UNet, Declared: uDecl}, lora.Base{Component: lora.TextEncoder, Declared: teDecl})
	require.NoError(t, err)
	for _, net := range run.networks() {
		got := loaded.Network(net.Component)
		require.NotNil(t, got, net.Component)
		require.Len(t, got.Modules, len(net.Modules), net.Component)
		want, err := net.Weights(run.Pipeline.Ctx)
		require.NoError(t, err)
		for path, w := range want {
			lw := loaded.Weights[net.Component][path]
			require.InDeltaSlice(t, tensors.MustCopyFlatData[float32](w.Down), tensors.MustCopyFlatData[float32](lw.Down), 2e-3, "%s %s down (saved as float16)", net.Component, path)
		}
	}
	require.NotEmpty(t, run.TextNets[0].Modules)

	real := filepath.Join(fixtures.Root(t), "real")
	realNames := func(model, component, fixture string) map[string]bool {
		cfg, err := clip.LoadConfig(filepath.Join(real, "configs", model, component, "config.json"))
		require.NoError(t, err)
		m, err := clip.New(cfg)
		require.NoError(t, err)
		decl, err := m.Declared()
		require.NoError(t, err)
		net, err := lora.Resolve(component, decl, p.Network.TextEncoder.LoRATargets())
		require.NoError(t, err)
		names := map[string]bool{}
		for _, mod := range net.Modules {
			name, err := net.KohyaName(mod, lora.LayoutDiffusers, model == "sdxl_base")
			require.NoError(t, err)
			names[name] = true
		}
		data, err := os.ReadFile(filepath.Join(real, "lora", fixture))
		require.NoError(t, err)
		var want map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(data, &want))
		require.Len(t, names, len(want), fixture)
		for name := range want {
			require.True(t, names[name], "%s of %s", name, fixture)
		}
		return names
	}
	sd15 := realNames("sd15", lora.TextEncoder, "sd15_text_encoder.json")
	require.Len(t, sd15, 72)
	require.Len(t, realNames("sdxl_base", lora.TextEncoder, "sdxl_base_text_encoder.json"), 72)
	require.Len(t, realNames("sdxl_base", lora.TextEncoder2, "sdxl_base_text_encoder_2.json"), 192)

	f, err := safetensors.Open(res.LoRAPath)
	require.NoError(t, err)
	defer f.Close()
	keys := 0
	for _, ti := range f.Infos() {
		if base, ok := strings.CutSuffix(ti.Name, ".lora_down.weight"); ok && strings.HasPrefix(base, "lora_te_") {
			require.True(t, sd15[base], "%s is a kohya name of the real SD1.5 text encoder", base)
			keys++
		}
	}
	require.Equal(t, len(run.TextNets[0].Modules), keys)
}

// TestTextEncoderOnly: with network.targets none the adapter is the text encoders' alone: the file
// holds only lora_te_ keys, training lowers the objective, and the conditioning cache stays the
// frozen references' (the text encoder is kept loaded for the step).
func TestTextEncoderOnly(t *testing.T) {
	p := tinyTextPreset(t, 30, "none")
	run, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	require.Empty(t, run.Net.Modules)
	require.NotEmpty(t, run.TextNets[0].Modules)
	require.NotEmpty(t, run.Pipeline.TextEncoders, "kept for the train step")
	before, err := run.EvalLoss(4, 99)
	require.NoError(t, err)
	res, err := run.Train()
	require.NoError(t, err)
	after, err := run.EvalLoss(4, 99)
	require.NoError(t, err)
	require.Less(t, after, before)
	uDecl, err := run.Pipeline.UNet.Declared()
	require.NoError(t, err)
	teDecl, err := run.Pipeline.TextEncoders[0].Declared()
	require.NoError(t, err)
	loaded, err := lora.LoadKohya(res.LoRAPath, lora.Base{Component: lora.UNet, Declared: uDecl}, lora.Base{Component: lora.TextEncoder, Declared: teDecl})
	require.NoError(t, err)
	require.Nil(t, loaded.Network(lora.UNet))
	require.NotNil(t, loaded.Network(lora.TextEncoder))
}

// TestTextEncoderSDXL: on the tiny SDXL fixture the text-encoder adapter covers both encoders — the
// adapter's prompt (hidden states of both and text_encoder_2's pooled embedding) goes through them
// in the step — training lowers the objective, and the file names them lora_te1_ and lora_te2_ and
// loads back with every key.
func TestTextEncoderSDXL(t *testing.T) {
	p := tinyTextPreset(t, 20, "none")
	p.Model.NameOrPath = tinypipe.First(t, true).Dir
	run, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	require.Len(t, run.TextNets, 2)
	before, err := run.EvalLoss(4, 5)
	require.NoError(t, err)
	res, err := run.Train()
	require.NoError(t, err)
	after, err := run.EvalLoss(4, 5)
	require.NoError(t, err)
	require.Less(t, after, before)
	bases := []lora.Base{}
	for i, te := range run.Pipeline.TextEncoders {
		decl, err := te.Declared()
		require.NoError(t, err)
		bases = append(bases, lora.Base{Component: sd.TextEncoderScope(i), Declared: decl})
	}
	loaded, err := lora.LoadKohya(res.LoRAPath, bases...)
	require.NoError(t, err)
	f, err := safetensors.Open(res.LoRAPath)
	require.NoError(t, err)
	defer f.Close()
	prefixes := map[string]int{}
	for _, ti := range f.Infos() {
		prefixes[ti.Name[:strings.Index(ti.Name[5:], "_")+5]]++
	}
	for i, comp := range []string{lora.TextEncoder, lora.TextEncoder2} {
		n := len(run.TextNets[i].Modules)
		require.Len(t, loaded.Network(comp).Modules, n)
		require.Equal(t, 3*n, prefixes[[]string{"lora_te1", "lora_te2"}[i]], "down, up and alpha of every %s module", comp)
	}
	require.Len(t, prefixes, 2, "only text-encoder keys: %v", prefixes)
}

// TestMergeTextEncoderLoRA (issue 17: text-encoder LoRAs are merged by LOBA): model.merge_loras with
// a UNet + text-encoder file merges both parts — the text encoder before any prompt is encoded, so
// the conditioning (and its cache, keyed by the merged file) is the merged encoder's: W' = W +
// s·(α/r)·up·down on a text-encoder module, and a plain run in the same folder does not take the
// merged cache.
func TestMergeTextEncoderLoRA(t *testing.T) {
	first := tinyTextPreset(t, 2, "lierla")
	first.Train.SaveDType = "float32"
	run1, err := setup(first, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	setAdapterValues(t, run1) // non-zero up weights: the merge changes the encoder
	path := filepath.Join(t.TempDir(), "both.safetensors")
	require.NoError(t, run1.SaveLoRA(path))
	trained, err := run1.TextNets[0].Weights(run1.Pipeline.Ctx)
	require.NoError(t, err)

	out := t.TempDir()
	p := tinyTextPreset(t, 1, "lierla") // a text-encoder run keeps its encoders: their weights are compared
	p.Model = first.Model
	plain, err := setup(p, Options{OutDir: out, Backend: testutil.Backend(t)})
	require.NoError(t, err)
	plain.Close()
	q := tinyTextPreset(t, 1, "lierla")
	q.Model = first.Model
	q.Model.MergeLoRAs = []slider.MergeLoRA{{Path: path, Strength: 0.5}}
	require.NoError(t, q.Normalize())
	var log strings.Builder
	merged, err := setup(q, Options{OutDir: out, Backend: testutil.Backend(t), Log: &log})
	require.NoError(t, err)
	merged.Close()
	require.Contains(t, log.String(), "not used (made for another model or settings)", "the plain run's cache is not the merged encoder's")
	require.Contains(t, log.String(), "text_encoder modules (strength 0.5) into the base text_encoder")
	require.Contains(t, log.String(), "unet modules (strength 0.5) into the base unet")

	m := run1.TextNets[0].Modules[0]
	scope := "/text_encoder/" + strings.ReplaceAll(m.Path, ".", "/")
	w0 := tensorFloats(plain.Pipeline.Ctx.Store().Scope(scope).GetVariable("weight").MustValue())
	w1 := tensorFloats(merged.Pipeline.Ctx.Store().Scope(scope).GetVariable("weight").MustValue())
	requireMerged(t, m, w0, w1, trained[m.Path], 0.5)
	prompt := p.Prompts[0].Target
	c0, c1 := tensorFloats(plain.loop.conds[prompt].Hidden), tensorFloats(merged.loop.conds[prompt].Hidden)
	require.NotEqual(t, c0, c1, "the conditioning is the merged encoder's")
}

// TestTextEncoderDenoiseWithAdapter: with denoise_with_adapter the partial denoise encodes both of
// its prompts through the text-encoder networks at the multipliers, so a run with a trained text-
// encoder adapter denoises as a frozen run whose text encoder has that LoRA merged (strength 1 =
// the entries' multiplier) — to float32 rounding, and unlike the frozen model. The trajectory cache
// generates with it too (all groups in one batch, the ids stacked): its latents equal each group's
// own partial denoise.
func TestTextEncoderDenoiseWithAdapter(t *testing.T) {
	p := tinyTextPreset(t, 1, "none")
	p.DenoiseWithAdapter = ptrTo(true)
	p.TrajectoryCache = slider.TrajectoryCache{Size: 2}
	p.Train.SaveDType = "float32"
	p.Prompts = append(p.Prompts, slider.Prompt{Target: "a blue ball", Action: slider.ActionEnhance})
	require.NoError(t, p.Normalize())
	run, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
	require.NoError(t, err)
	setAdapterValues(t, run)
	path := filepath.Join(t.TempDir(), "te.safetensors")
	require.NoError(t, run.SaveLoRA(path))
	mergedPreset := func(merge bool) *Run {
		q := tinyTextPreset(t, 1, "none")
		q.Model = p.Model
		q.Prompts = p.Prompts
		if merge {
			q.Model.MergeLoRAs = []slider.MergeLoRA{{Path: path, Strength: 1}}
		}
		require.NoError(t, q.Normalize())
		r, err := setup(q, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
		require.NoError(t, err)
		return r
	}
	merged, frozen := mergedPreset(true), mergedPreset(false)
	l := run.loop
	g := l.groups[0][0]
	denoise := func(r *Run, k int) []float32 {
		batch, err := r.loop.batch(0)
		require.NoError(t, err)
		x := tensors.FromFlatDataAndDimensions(NewRNG(3).Normal(batch.size*l.latentChannels*g.LatentH*g.LatentW), batch.size, l.latentChannels, g.LatentH, g.LatentW)
		out, err := r.loop.partialDenoise(x, k, batch)
		require.NoError(t, err)
		return tensors.MustCopyFlatData[float32](out)
	}
	maxDiff := func(a, b []float32) (d, scale float64) {
		for i := range a {
			d, scale = math.Max(d, math.Abs(float64(a[i]-b[i]))), math.Max(scale, math.Abs(float64(a[i])))
		}
		return d, scale
	}
	want, got := denoise(merged, 2), denoise(run, 2)
	d, scale := maxDiff(want, got)
	require.Less(t, d, 1e-4*scale, "the adapted encoders in the denoise ≡ the LoRA merged into them")
	d, _ = maxDiff(denoise(frozen, 2), got)
	require.Greater(t, d, 1e-2*scale, "and differ from the frozen encoders")

	require.NoError(t, l.ensureTrajectories(0))
	for gi := range l.groups {
		batch, err := l.batch(gi)
		require.NoError(t, err)
		dims := []int{batch.size, l.latentChannels, g.LatentH, g.LatentW}
		x, err := l.partialDenoise(tensors.FromFlatDataAndDimensions(l.traj.at(gi, 1, 0, dims), dims...), 2, batch)
		require.NoError(t, err)
		d, scale := maxDiff(tensors.MustCopyFlatData[float32](x), l.traj.at(gi, 1, 2, dims))
		require.Less(t, d, 1e-5*scale, "group %d", gi)
	}
}

// TestTextEncoderAdapterParams: the plan counts the text-encoder modules' parameters (read from
// the folder's headers) exactly as the run allocates them, with and without the UNet's.
func TestTextEncoderAdapterParams(t *testing.T) {
	for _, unet := range []string{"none", "lierla"} {
		p := tinyTextPreset(t, 1, unet)
		run, err := setup(p, Options{OutDir: t.TempDir(), Backend: testutil.Backend(t)})
		require.NoError(t, err)
		var want int64
		for _, v := range run.loop.adapter {
			want += int64(v.Shape().Size())
		}
		dir, err := modelDir(p, Options{})
		require.NoError(t, err)
		m, err := readModelShapes(dir)
		require.NoError(t, err)
		got, err := adapterParams(p, m)
		require.NoError(t, err)
		require.Equal(t, want, got, "network.targets %s", unet)
		run.Close()
	}
}
