package slider

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// aitkExample is ai-toolkit's own slider example (testdata/upstream/ai-toolkit, unmodified).
func aitkExample() string {
	return up("ai-toolkit", "config", "examples", "train_slider.example.yml")
}

// aitkPairTargets is TrainSliderProcess's training target for one prompt pair, computed the way it
// does (build_prompt_pair_batch_from_cache, then hook_train_loop): the multiplier it trains at and
// y = ε("") + offset as a linear combination of prompt predictions (prompt → coefficient).
func aitkPairTargets(t *testing.T, P, N string, m float64) map[float64]map[string]float64 {
	type pair struct {
		pos, neg string
		enhance  bool
		mult     float64
	}
	erase, enhance := strings.TrimSpace(P) == "", strings.TrimSpace(N) == ""
	both := !erase && !enhance
	var pairs []pair
	if both || erase {
		pairs = append(pairs, pair{P, N, false, m})
	}
	if both || enhance {
		pairs = append(pairs, pair{N, P, true, m}, pair{N, P, false, -m})
	}
	if both || erase {
		pairs = append(pairs, pair{P, N, true, -m})
	}
	out := map[float64]map[string]float64{}
	for _, pr := range pairs {
		// positive_latents = ε(pair.negative), unconditional_latents = ε(pair.positive) ("backward");
		// offset = positive − unconditional, negated for ERASE_NEGATIVE; y = ε("") + offset.
		sign := -1.0
		if pr.enhance {
			sign = 1
		}
		y := map[string]float64{"": 1}
		y[pr.neg] += sign
		y[pr.pos] -= sign
		if prev, ok := out[pr.mult]; ok {
			require.Equal(t, prev, y, "both pairs at one multiplier train the same target")
		}
		out[pr.mult] = y
	}
	return out
}

// entryTarget is a LOBA entry's training target as prompt → coefficient: y = e_neu + s·g·(e_pos − e_unc).
func entryTarget(e Entry) map[string]float64 {
	s := e.SignedGuidance()
	y := map[string]float64{}
	y[e.Neutral]++
	y[e.Positive] += s
	y[e.Unconditional] -= s
	for k, v := range y {
		if v == 0 {
			delete(y, k)
		}
	}
	return y
}

func dropZeros(y map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range y {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

func phrases(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(p))
	}
	slices.Sort(out)
	return out
}

// TestUpstreamAIToolkitExample: ai-toolkit's train_slider.example.yml imports with warnings only,
// each naming the file, the line and the key, into the slider TrainSliderProcess trains: every entry's
// target equals ai-toolkit's own for its prompt pair (computed above as its code does), and the loop,
// network, optimizer, schedule and output settings are the config's.
func TestUpstreamAIToolkitExample(t *testing.T) {
	cfg := aitkExample()
	p, warnings, err := Load(cfg)
	require.NoError(t, err)
	const pp = "config.process[0]"
	requireWarnings(t, cfg, warnings, "config.device", "config.log_dir", pp+".save.max_step_saves_to_keep",
		pp+".sample.sampler", pp+".logging", "meta", pp+".network.type", pp+".train.min_snr_gamma",
		pp+".slider.targets[0].shuffle", pp+".slider.batch_full_slide", pp+".sample.prompts")
	assert.Contains(t, warnings[6], `"lierla" is read by ai-toolkit as plain LoRA`)
	assert.Contains(t, warnings[0], cfg+":14: ", "the line of config.device")

	assert.Equal(t, ObjectiveSlider, p.Objective)
	assert.Equal(t, ModeLECO, p.Mode)
	assert.False(t, *p.DenoiseWithAdapter, "the adapter is off in the partial denoise")
	assert.Equal(t, 1.0, *p.DenoiseGuidance, "no CFG in diffuse_some_steps (no unconditional half)")
	assert.Equal(t, 40, p.MaxDenoisingSteps)
	assert.Equal(t, 1, *p.MinDenoisingSteps)
	assert.Equal(t, []int{999 - 38*1000/40, 999}, p.TimestepRange, "k in [1, N-2]: t* of k = 39 (24) is left out")
	assert.Equal(t, "ddpm", p.DenoiseScheduler)
	assert.Equal(t, "anchor", p.DenoiseSchedulerConfig)
	assert.Equal(t, "leading", p.TimestepSpacing)
	assert.Equal(t, Model{NameOrPath: "runwayml/stable-diffusion-v1-5", Kind: "auto", PredictionType: "epsilon", HiddenState: "auto"}, p.Model)

	assert.Equal(t, "full", p.Network.Targets)
	assert.Equal(t, 8, p.Network.Rank)
	assert.Equal(t, 4.0, *p.Network.Alpha)
	require.Len(t, p.Network.Selectors, 1, "the 3×3 convolutions are excluded (conv is unset)")
	assert.True(t, p.Network.Selectors[0].Exclude)

	tr := p.Train
	assert.Equal(t, 500, tr.Steps)
	assert.Equal(t, 2e-4, tr.LR)
	assert.Equal(t, "adamw", tr.Optimizer)
	assert.Equal(t, 1e-6, tr.Eps, "get_optimizer builds AdamW with eps 1e-6")
	assert.Equal(t, 0.01, *tr.WeightDecay)
	assert.Equal(t, "constant", tr.LRScheduler)
	assert.Equal(t, 5.0, tr.MinSNRGamma)
	assert.Equal(t, "bfloat16", tr.DType)
	assert.Equal(t, "on", tr.GradientCheckpointing)
	assert.Equal(t, 1, tr.BatchSize)
	assert.Equal(t, 50, tr.SaveEvery)
	assert.Equal(t, "float16", tr.SaveDType)
	assert.Equal(t, 0.0, tr.MaxGradNorm, "the slider process does not clip")
	assert.Equal(t, Output{Name: "detail_slider_v1", Dir: "output/LoRA"}, p.Output)

	s := p.Sample
	assert.Equal(t, []float64{-5, -3, 3, 5}, s.Strengths)
	assert.Equal(t, []string{"a woman in a coffee shop, black hat, blonde hair, blue jacket",
		"a golden retriever sitting on a leather couch,", "a golden retriever sitting on a leather couch",
		"a man with a beard and red flannel shirt, wearing vr goggles, walking into traffic"}, s.Prompts)
	assert.Equal(t, "cartoon, fake, drawing, illustration, cgi, animated, anime, monochrome", s.NegativePrompt)
	assert.Equal(t, Sample{Strengths: s.Strengths, Prompts: s.Prompts, NegativePrompt: s.NegativePrompt,
		Steps: 20, GuidanceScale: 7, Seed: 42, Every: 20}, s)
	assert.Empty(t, p.Anchors, "the example's anchors are commented out")
	checkAIToolkitExampleTargets(t, p)

	// Saved and loaded back, the preset is the same.
	saved := filepath.Join(t.TempDir(), "preset.yaml")
	require.NoError(t, p.Save(saved))
	q, w, err := Load(saved)
	require.NoError(t, err)
	assert.Empty(t, w)
	assert.Equal(t, p.JSON(), q.JSON())
}

// checkAIToolkitExampleTargets: the example's shuffled target is 8 distinct permutation pairs, and
// every entry trains what ai-toolkit trains for its pair.
func checkAIToolkitExampleTargets(t *testing.T, p *Preset) {
	const P = "high detail, 8k, intricate, detailed, high resolution, high res, high quality"
	const N = "blurry, boring, fuzzy, low detail, low resolution, low res, low quality"
	require.Len(t, p.Targets, 8, "shuffle: 8 permutation pairs")
	seen := map[[2]string]bool{}
	for i, tg := range p.Targets {
		assert.Equal(t, phrases(P), phrases(tg.Positive), "targets[%d] positive is a permutation", i)
		assert.Equal(t, phrases(N), phrases(tg.Negative), "targets[%d] negative is a permutation", i)
		assert.False(t, seen[[2]string{tg.Positive, tg.Negative}], "targets[%d] repeats a pair", i)
		seen[[2]string{tg.Positive, tg.Negative}] = true
		assert.Equal(t, "", tg.TargetClass)
		assert.Equal(t, []string{""}, tg.Neutrals)
		assert.Equal(t, []Resolution{Square(512)}, tg.Resolutions)
		assert.Equal(t, 1.0, *tg.Weight)
	}
	es, err := p.Entries()
	require.NoError(t, err)
	require.Len(t, es, 32)
	for _, e := range es {
		var i int
		_, err := fmt.Sscanf(e.Source, "targets[%d]", &i)
		require.NoError(t, err)
		tg := p.Targets[i]
		want := aitkPairTargets(t, tg.Positive, tg.Negative, 1)[e.Multiplier]
		assert.Equal(t, dropZeros(want), entryTarget(e), "%s at %v", e.Source, e.Multiplier)
		assert.Equal(t, "", e.Target, "the student sees the target class")
	}
}

// TestAIToolkitOneSided: a target with only a positive (or only a negative) prompt trains, at ±m,
// what ai-toolkit's two prompt pairs train, with the empty prompt for the blank side.
func TestAIToolkitOneSided(t *testing.T) {
	for _, c := range []struct{ P, N string }{{"smiling", ""}, {"", "frowning"}, {"smiling", "frowning"}} {
		path := writeAITK(t, aitkYAML(`
      slider:
        targets:
          - {target_class: person, positive: "`+c.P+`", negative: "`+c.N+`", multiplier: 2, weight: 0.5}
`))
		p, _, err := ImportAIToolkit(path)
		require.NoError(t, err)
		es, err := p.Entries()
		require.NoError(t, err)
		want := aitkPairTargets(t, c.P, c.N, 2)
		got := map[float64]map[string]float64{}
		for _, e := range es {
			assert.Equal(t, "person", e.Target)
			assert.Equal(t, 0.5, e.Weight)
			if prev, ok := got[e.Multiplier]; ok {
				assert.Equal(t, prev, entryTarget(e))
			}
			got[e.Multiplier] = entryTarget(e)
		}
		for m := range want {
			want[m] = dropZeros(want[m])
		}
		assert.Equal(t, want, got, "P=%q N=%q", c.P, c.N)
	}
}

// TestAIToolkitAnchors: each anchor is held at +|m| and −|m| (ai-toolkit matches its sign to the
// prompt pair's, and a slider trains both), its default multiplier is 1, a 0 one is dropped with a
// warning, and anchor_weight keeps LOBA's default 1 (ai-toolkit has none).
func TestAIToolkitAnchors(t *testing.T) {
	path := writeAITK(t, aitkYAML(`
      slider:
        targets: [{target_class: person, positive: smiling, negative: frowning}]
        anchors:
          - {prompt: a woman, neg_prompt: animal, multiplier: 0.5}
          - {prompt: a man, multiplier: -0.25}
          - {prompt: a person}
          - {prompt: a cat, multiplier: 0}
`))
	p, warnings, err := ImportAIToolkit(path)
	require.NoError(t, err)
	const pa = "config.process[0].slider.anchors"
	requireWarnings(t, path, warnings, "config.process[0].slider.batch_full_slide", pa+"[3].multiplier", pa)
	assert.Contains(t, warnings[2], "adds no anchor term")
	an := func(prompt, neg string, m float64) Anchor {
		return Anchor{Prompt: prompt, NegPrompt: neg, Multiplier: ptr(m)}
	}
	assert.Equal(t, []Anchor{an("a woman", "animal", 0.5), an("a woman", "animal", -0.5), an("a man", "", 0.25),
		an("a man", "", -0.25), an("a person", "", 1), an("a person", "", -1)}, p.Anchors)
	assert.Equal(t, 1.0, *p.AnchorWeight)
}

// TestAIToolkitPermutations: get_permutations' order is itertools.permutations' (lexicographic in the
// phrases' positions), at most 8; no phrase is one empty prompt; the target pairs are distinct and
// keep every phrase.
func TestAIToolkitPermutations(t *testing.T) {
	assert.Equal(t, []string{"a, b, c", "a, c, b", "b, a, c", "b, c, a", "c, a, b", "c, b, a"},
		aitkPhrasePermutations([]string{"a", "b", "c"}, 8))
	assert.Equal(t, []string{""}, aitkPhrasePermutations(nil, 8))
	// Four phrases: the first 8 of the 24, against a recursive lexicographic enumeration.
	var all []string
	var rec func(prefix, rest []string)
	rec = func(prefix, rest []string) {
		if len(rest) == 0 {
			all = append(all, strings.Join(prefix, ", "))
			return
		}
		for i := range rest {
			r := append(slices.Clone(rest[:i]), rest[i+1:]...)
			rec(append(slices.Clone(prefix), rest[i]), r)
		}
	}
	rec(nil, []string{"w", "x", "y", "z"})
	assert.Equal(t, all[:8], aitkPhrasePermutations([]string{"w", "x", "y", "z"}, 8))

	rng := func() *rand.Rand { return rand.New(rand.NewPCG(7, 0)) }
	pairs := aitkTargetPermutations("a, b", "c,, d , e", rng())
	assert.Len(t, pairs, 8, "2 × 6 pairs, trimmed to 8")
	assert.Equal(t, pairs, aitkTargetPermutations("a, b", "c,, d , e", rng()), "seeded: the same draw")
	seen := map[[2]string]bool{}
	for _, pr := range pairs {
		assert.Equal(t, []string{"a", "b"}, phrases(pr[0]))
		assert.Equal(t, []string{"c", "d", "e"}, phrases(pr[1]))
		assert.False(t, seen[pr])
		seen[pr] = true
	}
	assert.Len(t, aitkTargetPermutations("a", "", rng()), 1, "one phrase, no negative: one pair")
}

// TestAIToolkitSettings: the honoured keys beyond the example (locon with conv, SDXL v-prediction,
// optimizer_params, a cosine schedule, seed, process name, [name] and ${VAR} substitution, [h, w]
// resolutions, samples with their own multipliers, disable_sampling) and the warnings for the
// ignored ones, each naming file, line and key.
func TestAIToolkitSettings(t *testing.T) {
	t.Setenv("LOBA_AITK_TEST_MODEL", "stabilityai/sdxl-vpred")
	path := writeAITK(t, `job: train
config:
  name: my_slider
  training_folder: out
  process:
    - type: slider
      name: "[name]_v2"
      training_seed: 3
      network: {type: locon, linear: 16, linear_alpha: 8, conv: 4}
      train:
        steps: 300
        lr: 1e-4
        optimizer: AdamW8bit
        optimizer_params: {weight_decay: 0.05, betas: [0.8, 0.9], fused: true}
        lr_scheduler: cosine
        lr_scheduler_params: {eta_min: 1e-6}
        max_denoising_steps: 50
        noise_scheduler: ddim
        dtype: fp16
        gradient_checkpointing: false
        xformers: true
        train_text_encoder: true
        lerning_rate: 1
        disable_sampling: true
      model: {name_or_path: "${LOBA_AITK_TEST_MODEL}", is_xl: true, is_v_pred: true}
      save: {dtype: bf16, save_every: 100}
      sample:
        width: 1024
        height: 768
        samples:
          - {prompt: "a [name] photo --n ugly", network_multiplier: -2}
          - {prompt: "a [name] photo"}
      slider:
        resolutions: [[768, 1024]]
        batch_full_slide: false
        targets: [{target_class: person, positive: smiling, negative: frowning}]
`)
	p, warnings, err := ImportAIToolkit(path)
	require.NoError(t, err)
	const pp = "config.process[0]"
	requireWarnings(t, path, warnings, pp+".train.xformers", pp+".train.lerning_rate",
		pp+".train.train_text_encoder", pp+".train.optimizer", pp+`.train.optimizer_params["fused"]`,
		pp+".sample.samples", pp+".sample.samples")
	assert.Contains(t, warnings[1], "ai-toolkit's slider process does not read it")
	assert.Contains(t, warnings[6], "neg")
	assert.Equal(t, Output{Name: "my_slider_v2", Dir: "out"}, p.Output)
	assert.Equal(t, int64(3), p.Train.Seed)
	assert.Equal(t, Model{NameOrPath: "stabilityai/sdxl-vpred", Kind: "sdxl", PredictionType: "v_prediction", HiddenState: "auto"}, p.Model)
	nw := p.Network
	assert.Equal(t, []any{"full", 16, 8.0, 4, 4.0}, []any{nw.Targets, nw.Rank, *nw.Alpha, nw.ConvRank, nw.ConvAlpha})
	assert.Equal(t, []Selector{{Match: "add_embedding", Exclude: true}}, nw.Selectors, "locon: all but add_embedding, 3×3 convs at conv rank")
	tr := p.Train
	assert.Equal(t, []any{300, 1e-4, "adamw", 0.05, []float64{0.8, 0.9}, 1e-6}, []any{tr.Steps, tr.LR, tr.Optimizer, *tr.WeightDecay, tr.Betas, tr.Eps})
	assert.Equal(t, []any{"cosine", 1e-6}, []any{tr.LRScheduler, tr.MinLR})
	assert.Equal(t, []any{"float16", "off", "bfloat16", 100}, []any{tr.DType, tr.GradientCheckpointing, tr.SaveDType, tr.SaveEvery})
	assert.Equal(t, []any{"ddim", 50, []int{999 - 48*1000/50, 999}}, []any{p.DenoiseScheduler, p.MaxDenoisingSteps, p.TimestepRange})
	assert.Equal(t, Resolution{768, 1024}, tr.Resolution, "resolutions are [height, width], as TrainSliderProcess unpacks them")
	assert.Equal(t, []Resolution{{768, 1024}}, p.Targets[0].Resolutions)
	assert.Equal(t, []string{"a my_slider photo"}, p.Sample.Prompts)
	assert.Equal(t, []float64{-2, 1}, p.Sample.Strengths)
	assert.Equal(t, 0, p.Sample.Every, "disable_sampling")
}

// TestLoadDetectsAIToolkit: Load reads a file with top-level job and config keys as an ai-toolkit
// config, also a non-slider one, which it then refuses by its process type.
func TestLoadDetectsAIToolkit(t *testing.T) {
	path := writeAITK(t, aitkYAML(""))
	p, _, err := Load(path)
	require.NoError(t, err)
	q, _, err := ImportAIToolkit(path)
	require.NoError(t, err)
	assert.Equal(t, q.JSON(), p.JSON())

	path = writeAITK(t, strings.Replace(aitkYAML(""), "type: slider", "type: sd_trainer", 1))
	_, _, err = Load(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path+":6: config.process[0].type: invalid value \"sd_trainer\"")
}

// aitkConfig is a minimal slider config; slider replaces its slider section when given.
func aitkYAML(slider string) string {
	if slider == "" {
		slider = `
      slider:
        targets: [{target_class: person, positive: smiling, negative: frowning}]
`
	}
	return `job: train
config:
  name: test
  training_folder: out
  process:
    - type: slider
      network: {type: lora, linear: 4, linear_alpha: 1}
      train: {steps: 10, lr: 1e-4, max_denoising_steps: 10}
      model: {name_or_path: some/model}` + slider
}

func writeAITK(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slider.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}
