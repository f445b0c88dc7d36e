package sd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/safetensors"
)

// loraWeights are the weights of LoRA networks by component, then module path.
type loraWeights = map[string]map[string]lora.ModuleWeights

// randomLoRAWeights draws non-zero weights for every module of net: down ~ N(0, 1/fan_in),
// up ~ N(0, 0.5²), so the update is of the order of the layer's input.
func randomLoRAWeights(rng *rand.Rand, net *lora.Network) map[string]lora.ModuleWeights {
	draw := func(scale float64, dims []int) *tensors.Tensor {
		n := 1
		for _, d := range dims {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * scale)
		}
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
	w := map[string]lora.ModuleWeights{}
	for _, m := range net.Modules {
		w[m.Path] = lora.ModuleWeights{
			Down: draw(1/math.Sqrt(float64(m.In*m.Kernel*m.Kernel)), m.DownShape()),
			Up:   draw(0.5, m.UpShape()),
		}
	}
	return w
}

// textLoRA builds a LoRA of every loaded text encoder of p (the default targets: the CLIP
// attention and MLP Linears) with random weights, into w.
func textLoRA(t *testing.T, p *Pipeline, rng *rand.Rand, w loraWeights) []*lora.Network {
	t.Helper()
	var nets []*lora.Network
	for i, te := range p.TextEncoders {
		decl, err := te.Declared()
		require.NoError(t, err)
		net, err := lora.Resolve(textEncoderScopes[i], decl, lora.Targets{Rank: 2})
		require.NoError(t, err)
		nets = append(nets, net)
		w[net.Component] = randomLoRAWeights(rng, net)
	}
	return nets
}

// writeLoRA writes nets as a kohya file (float32) for p's model kind.
func writeLoRA(t *testing.T, p *Pipeline, path string, nets []*lora.Network, w loraWeights, layout string) {
	t.Helper()
	base := lora.BaseSD1
	if p.Kind == KindSDXL {
		base = lora.BaseSDXL10
	}
	require.NoError(t, lora.WriteKohya(path, nets, w, lora.SaveOptions{DType: safetensors.F32, BaseModel: base, Layout: layout}))
}

// mergedEncoding loads a fresh pipeline of tp, merges the text-encoder networks into its text
// encoders at strength s (lora.Merge) and encodes texts with EncodePrompts.
func mergedEncoding(t *testing.T, tp *tinyPipeline, nets []*lora.Network, w loraWeights, s float64, texts []string,
	opts EncodeOptions) *Conditioning {
	t.Helper()
	p := tp.load(t, PipelineOptions{SkipVAE: true})
	defer p.Close()
	for _, net := range nets {
		require.NoError(t, lora.Merge(p.Ctx, "/"+net.Component, net, w[net.Component], s))
	}
	c, err := p.EncodePrompts(texts, opts)
	require.NoError(t, err)
	return c
}

// requireSameConditioning: bit-identical conditionings.
func requireSameConditioning(t *testing.T, got, want *Conditioning, what string) {
	t.Helper()
	require.Equal(t, want.Hidden.Shape(), got.Hidden.Shape(), what)
	require.Equal(t, flat32(t, want.Hidden), flat32(t, got.Hidden), "%s: Hidden", what)
	require.Equal(t, want.TextEmbeds == nil, got.TextEmbeds == nil, what)
	if want.TextEmbeds != nil {
		require.Equal(t, flat32(t, want.TextEmbeds), flat32(t, got.TextEmbeds), "%s: TextEmbeds", what)
	}
}

// TestTextLoRAEncoding: with a text-encoder LoRA installed by UseLoRA, the sampling path encodes
// each prompt and the negative prompt at the image's strength s as EncodePrompts does on a model
// whose text encoders had the LoRA merged at s (lora.Merge); strength 0 and the held-off rows
// (StartNoise) are exactly the frozen encoding; long prompts give each window the prompt's
// strength; the encoding graph is compiled once per shape.
func TestTextLoRAEncoding(t *testing.T) {
	for _, tp := range composePipelines(t, "") {
		t.Run(tp.name(), func(t *testing.T) {
			p := tp.load(t, PipelineOptions{SkipVAE: true})
			defer p.Close()
			w := loraWeights{}
			nets := textLoRA(t, p, rand.New(rand.NewPCG(5, 6)), w)
			path := filepath.Join(t.TempDir(), "te.safetensors")
			writeLoRA(t, p, path, nets, w, "")
			unetNet, err := p.UseLoRA(path)
			require.NoError(t, err)
			require.Nil(t, unetNet, "a text-encoder-only file has no UNet network")
			require.Nil(t, p.graphs.adapter)
			require.NotNil(t, p.graphs.textAdapter)

			prompts := []string{"a photo of a cat", testPrompts[2]} // the second one is longer than a window
			texts := append([]string{"blurry"}, prompts...)
			strengths := []float64{0, 0.7, -1.5, 0.7}
			allOpts := []EncodeOptions{{}, {LongPrompts: true}}
			type encoded struct {
				conds  *sampleConds
				frozen *Conditioning
			}
			var encs []encoded
			for _, opts := range allOpts {
				req := SampleRequest{Prompts: prompts, NegativePrompt: texts[0], Encode: opts, GuidanceScale: 5}
				conds, err := p.sampleConditioning(&req, true, strengths)
				require.NoError(t, err)
				require.Len(t, conds.block, 2, "one block per distinct non-zero strength")
				before := p.Stats().EncodeGraphs
				_, err = p.sampleConditioning(&req, true, strengths)
				require.NoError(t, err)
				require.Equal(t, before, p.Stats().EncodeGraphs, "same shapes: no new encoding graph")
				frozen, err := p.EncodePrompts(texts, opts)
				require.NoError(t, err)
				encs = append(encs, encoded{conds, frozen})
			}
			// rowsAt is the sampling path's [negative rows; prompt rows] at strength s (or held off).
			rowsAt := func(c *sampleConds, s float64, held bool) *Conditioning {
				var group []sampleItem
				for i := range prompts {
					group = append(group, sampleItem{prompt: i, strength: s})
				}
				rows, err := c.rows(group, true, held)
				require.NoError(t, err)
				return rows
			}
			// refRows is the same layout taken from an encoding of texts.
			refRows := func(c *Conditioning) *Conditioning {
				rows, err := ConditioningRows(c, 0, 0, 1, 2)
				require.NoError(t, err)
				return rows
			}
			for k, opts := range allOpts {
				frozen := refRows(encs[k].frozen)
				requireSameConditioning(t, rowsAt(encs[k].conds, 0, false), frozen, "strength 0")
				requireSameConditioning(t, rowsAt(encs[k].conds, 0.7, true), frozen, "held off")
				if opts.LongPrompts {
					require.Equal(t, 2*p.seqLen(), frozen.Hidden.Shape().Dim(1), "two windows")
				}
			}
			for _, s := range []float64{0.7, -1.5} {
				for k, opts := range allOpts {
					got := rowsAt(encs[k].conds, s, false)
					want := refRows(mergedEncoding(t, tp, nets, w, s, texts, opts))
					what := func(field string) string { return fmt.Sprintf("%s at strength %g %s", field, s, fmtOpts(opts)) }
					requireClose(t, flat32(t, got.Hidden), flat32(t, want.Hidden), what("Hidden"))
					if p.Kind == KindSDXL {
						requireClose(t, flat32(t, got.TextEmbeds), flat32(t, want.TextEmbeds), what("TextEmbeds"))
					}
					// The check can fail: the LoRA changes the encoding well beyond the tolerance.
					frozen := refRows(encs[k].frozen)
					d := testutil.RelErr(flat32(t, got.Hidden), flat32(t, frozen.Hidden))
					require.Greater(t, d, 1e-2, "%s: relative change %g", what("Hidden"), d)
				}
			}

			// EncodePrompts stays the frozen encoding.
			again, err := p.EncodePrompts(texts, EncodeOptions{})
			require.NoError(t, err)
			requireSameConditioning(t, again, encs[0].frozen, "EncodePrompts with a text adapter set")

			// SetTextAdapter drops the adapted graphs; without an adapter the rows are all frozen.
			require.NotEmpty(t, p.graphs.encodeText)
			p.SetTextAdapter(nil)
			require.Empty(t, p.graphs.encodeText)
			req := SampleRequest{Prompts: prompts, NegativePrompt: texts[0], GuidanceScale: 5}
			conds, err := p.sampleConditioning(&req, true, strengths)
			require.NoError(t, err)
			requireSameConditioning(t, rowsAt(conds, 0.7, false), refRows(encs[0].frozen), "no text adapter")
		})
	}
}

// fmtOpts names the encoding options of a subtest message.
func fmtOpts(o EncodeOptions) string {
	if o.LongPrompts {
		return "(long prompts)"
	}
	return "(one window)"
}

// TestSampleTextLoRA: Sample with a text-encoder-only LoRA (UseLoRA) at strengths [0, 1]: strength 0
// is the image without LoRA, strength 1 another; StartNoise below every timestep holds the text
// adapter off too; precomputed conditioning cannot be re-encoded at a non-zero strength.
func TestSampleTextLoRA(t *testing.T) {
	for _, tp := range composePipelines(t, "") {
		t.Run(tp.name(), func(t *testing.T) {
			p := tp.load(t, PipelineOptions{})
			defer p.Close()
			_, _, h, w := testSize(p)
			req := SampleRequest{Prompts: []string{"a photo of a cat"}, NegativePrompt: "blurry", Width: w, Height: h,
				Steps: 3, GuidanceScale: 5, Seed: 7, BatchSize: 1}
			plain, err := p.Sample(req)
			require.NoError(t, err)

			lw := loraWeights{}
			nets := textLoRA(t, p, rand.New(rand.NewPCG(8, 9)), lw)
			path := filepath.Join(t.TempDir(), "te.safetensors")
			writeLoRA(t, p, path, nets, lw, "")
			_, err = p.UseLoRA(path)
			require.NoError(t, err)
			swept := req
			swept.Strengths = []float64{0, 1}
			imgs, err := p.Sample(swept)
			require.NoError(t, err)
			require.Len(t, imgs, 2)
			require.True(t, samePixels(t, imgs[0], plain[0]), "strength 0 is the image without LoRA")
			require.True(t, differentPixels(t, imgs[1], imgs[0]), "strength 1 vs 0: mean difference %.2f levels",
				meanAbsDiff(t, imgs[1], imgs[0]))
			st := p.Stats()
			again, err := p.Sample(swept)
			require.NoError(t, err)
			require.True(t, samePixels(t, again[1], imgs[1]))
			require.Equal(t, st.EncodeGraphs, p.Stats().EncodeGraphs, "the encoding graphs are reused")
			require.Equal(t, st.StepGraphs, p.Stats().StepGraphs, "the step graph is reused")

			// StartNoise below every timestep: the adapters are never on, strength 1 is the plain image.
			sched, err := p.NewScheduler(req.Sampler)
			require.NoError(t, err)
			require.NoError(t, sched.SetTimesteps(req.Steps))
			if ts := sched.Timesteps(); ts[len(ts)-1] > 0 {
				late := swept
				late.StartNoise = ts[len(ts)-1] / 2
				lateImgs, err := p.Sample(late)
				require.NoError(t, err)
				require.True(t, samePixels(t, lateImgs[1], plain[0]), "held off at every step")
			}

			// Precomputed conditioning: frozen, so only strength 0 is allowed.
			all, err := p.EncodePrompts([]string{req.NegativePrompt, req.Prompts[0]}, EncodeOptions{})
			require.NoError(t, err)
			pre := swept
			pre.Prompts = nil
			pre.Cond, err = ConditioningRows(all, 1)
			require.NoError(t, err)
			pre.NegativeCond, err = ConditioningRows(all, 0)
			require.NoError(t, err)
			_, err = p.Sample(pre)
			require.ErrorContains(t, err, "cannot be re-encoded")
			pre.Strengths = []float64{0}
			preImgs, err := p.Sample(pre)
			require.NoError(t, err)
			require.True(t, samePixels(t, preImgs[0], plain[0]), "precomputed conditioning at strength 0")

			bad := swept
			bad.Strengths = []float64{math.NaN()}
			_, err = p.Sample(bad)
			require.ErrorContains(t, err, "Strengths[0] is NaN, want a finite value")

			// No adapter left: strengths are refused.
			p.SetTextAdapter(nil)
			_, err = p.Sample(swept)
			require.ErrorContains(t, err, "no adapter is set")
		})
	}
}

// TestUseLoRAUNetAndTextEncoders: a file with UNet and text-encoder modules (lora_te_ for SD1.x,
// lora_te1_ / lora_te2_ for SDXL) round-trips through UseLoRA with every key used and installs both
// adapters; files that do not fit are refused with errors that name the file and the problem.
func TestUseLoRAUNetAndTextEncoders(t *testing.T) {
	for _, tp := range composePipelines(t, "") {
		t.Run(tp.name(), func(t *testing.T) {
			p := tp.load(t, PipelineOptions{SkipVAE: true})
			defer p.Close()
			rng := rand.New(rand.NewPCG(10, 11))
			w := loraWeights{}
			decl, err := p.UNet.Declared()
			require.NoError(t, err)
			unetNet, err := lora.Resolve(lora.UNet, decl, lora.Targets{Rank: 2})
			require.NoError(t, err)
			w[lora.UNet] = randomLoRAWeights(rng, unetNet)
			nets := append([]*lora.Network{unetNet}, textLoRA(t, p, rng, w)...)
			require.Len(t, nets, 1+len(p.TextEncoders))
			layout := lora.LayoutDiffusers
			if p.Kind == KindSDXL && unetNet.Modules[0].LDMPath != "" {
				layout = lora.LayoutSAI // kohya's SDXL names
			}
			t.Logf("UNet layout %s: %d UNet modules, %d text-encoder networks", layout, len(unetNet.Modules), len(p.TextEncoders))
			dir := t.TempDir()
			path := filepath.Join(dir, "both.safetensors")
			writeLoRA(t, p, path, nets, w, layout)

			// The file holds the prefixes of the model kind.
			f, err := safetensors.Open(path)
			require.NoError(t, err)
			names := f.Names()
			require.NoError(t, f.Close())
			prefixes := map[string]int{}
			for _, name := range names {
				prefix, _, _ := strings.Cut(name, "_text_model_")
				if strings.HasPrefix(name, "lora_unet_") {
					prefix = "lora_unet"
				}
				prefixes[prefix]++
			}
			wantPrefixes := map[string]int{"lora_unet": 3 * len(unetNet.Modules), "lora_te": 3 * len(nets[1].Modules)}
			if p.Kind == KindSDXL {
				wantPrefixes = map[string]int{"lora_unet": 3 * len(unetNet.Modules), "lora_te1": 3 * len(nets[1].Modules),
					"lora_te2": 3 * len(nets[2].Modules)}
			}
			require.Equal(t, wantPrefixes, prefixes)

			got, err := p.UseLoRA(path)
			require.NoError(t, err)
			require.NotNil(t, got)
			require.Len(t, got.Modules, len(unetNet.Modules))
			require.NotNil(t, p.graphs.adapter)
			require.NotNil(t, p.graphs.textAdapter)
			// Every key was used: each module's weights are in Ctx with the written values.
			keys := 0
			for _, net := range nets {
				inCtx, err := net.Weights(p.Ctx)
				require.NoError(t, err, net.Component)
				for path, mw := range w[net.Component] {
					require.Equal(t, flat32(t, mw.Down), flat32(t, inCtx[path].Down), "%s %s lora_down", net.Component, path)
					require.Equal(t, flat32(t, mw.Up), flat32(t, inCtx[path].Up), "%s %s lora_up", net.Component, path)
					keys += 3 // lora_down, lora_up, alpha
				}
			}
			require.Equal(t, len(names), keys, "every key of the file belongs to a loaded module")

			// A UNet-only file leaves no text adapter behind.
			unetOnly := filepath.Join(dir, "unet.safetensors")
			writeLoRA(t, p, unetOnly, nets[:1], w, layout)
			_, err = p.UseLoRA(unetOnly)
			require.NoError(t, err)
			require.NotNil(t, p.graphs.adapter)
			require.Nil(t, p.graphs.textAdapter)

			// A key no module of this model has: named with the file.
			foreign := filepath.Join(dir, "foreign.safetensors")
			require.NoError(t, safetensors.WriteEntries(foreign, []safetensors.Entry{{
				Name: "lora_te3_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", DType: safetensors.F32,
				Shape: []int{1}, Data: make([]byte, 4)}}, nil))
			_, err = p.UseLoRA(foreign)
			require.ErrorContains(t, err, foreign)
			require.ErrorContains(t, err, "lora_te3_text_model_encoder_layers_0_mlp_fc1.lora_down.weight")
			require.ErrorContains(t, err, "match no module")

			// Text encoders freed: the text-encoder modules cannot be applied, a UNet-only file can.
			require.NoError(t, p.FreeTextEncoders())
			_, err = p.UseLoRA(path)
			require.ErrorContains(t, err, path)
			require.ErrorContains(t, err, "text encoders were freed (FreeTextEncoders) or not loaded")
			_, err = p.UseLoRA(unetOnly)
			require.NoError(t, err)
		})
	}
}
