package slider

// Mapping of an ai-toolkit slider section (SliderConfig, SliderTargetConfig, SliderConfigAnchors;
// toolkit/prompt_utils.py get_slider_target_permutations and build_prompt_pair_batch_from_cache;
// TrainSliderProcess's loss) onto LOBA slider targets and U-LOBA anchors.
//
// TrainSliderProcess trains, for a target with class C, positive P, negative N, multiplier m and
// weight w, the student ε_m(C) and ε_−m(C) against y± = ε("") ± (ε(P) − ε(N)) (a blank side is the
// empty prompt): LOBA's bidirectional slider entries (docs/ALGORITHMS.md §2) with the neutral "" and
// η = 1, each weighted by w.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// aitkMaxPermutations is get_slider_target_permutations' max_permutations as SliderConfig calls it.
const aitkMaxPermutations = 8

// mapSlider maps the slider section onto p.Targets and p.Anchors; p.Train.Steps and p.Train.Seed
// must be set.
func (imp *aitkImport) mapSlider(s *aitkSlider, p *Preset) error {
	path := imp.pp + ".slider"
	if s.UseAdapter != nil && *s.UseAdapter != "" {
		return imp.errAt(path+".use_adapter", "not supported: the T2I depth adapter conditions on dataset images, and LOBA trains no adapter-assisted slider")
	}
	if len(s.Targets) == 0 {
		return imp.errAt(path+".targets", "missing or empty: the slider process has no prompt pair to train (ai-toolkit stops on its first step); give at least one {target_class, positive, negative}")
	}
	res := s.Resolutions
	if len(res) == 0 {
		res = []Resolution{Square(512)} // SliderConfig default [[512, 512]]
	}
	p.Train.Resolution = res[0] // the previews' size (the targets carry their own resolutions)
	rng := rand.New(rand.NewPCG(uint64(p.Train.Seed), 0))
	for i, t := range s.Targets {
		if err := imp.addTarget(t, fmt.Sprintf("%s.targets[%d]", path, i), res, rng, p); err != nil {
			return err
		}
	}
	if len(p.Targets) > p.Train.Steps {
		imp.warnAt(path+".targets", "%d targets (with permutations) for %d steps: trimmed to the first %d, as TrainSliderProcess does", len(p.Targets), p.Train.Steps, p.Train.Steps)
		p.Targets = p.Targets[:p.Train.Steps]
	}
	if s.BatchFullSlide == nil || *s.BatchFullSlide {
		imp.warnAt(path+".batch_full_slide", "true (the default) batches a target's four prompt pairs in one step; LOBA's mode leco trains one of them per step (ai-toolkit's batch_full_slide: false): the same expected loss with a quarter of the samples per step. Set mode: loba to batch both directions (it also evaluates at the timestep the partial denoise reached, not at ai-toolkit's timesteps_1000[int(k·1000/N)])")
	}
	imp.addAnchors(s.Anchors, path+".anchors", p)
	return nil
}

// addTarget appends target t (expanded over its permutations when shuffle is on) to p.Targets.
func (imp *aitkImport) addTarget(t aitkTarget, path string, res []Resolution, rng *rand.Rand, p *Preset) error {
	if strings.TrimSpace(t.Positive) == "" && strings.TrimSpace(t.Negative) == "" {
		return imp.errAt(path, "a slider target needs a positive or a negative prompt (ai-toolkit trains the class toward the empty prompt's prediction with both blank)")
	}
	m := deref(t.Multiplier, 1.0)
	if m == 0 || math.IsNaN(m) || math.IsInf(m, 0) {
		return imp.errAt(path+".multiplier", "invalid value %v; want a finite non-zero number (at 0 the adapter is off and nothing trains)", m)
	}
	base := Target{TargetClass: t.TargetClass, Positive: t.Positive, Negative: t.Negative,
		Neutrals: []string{""}, GuidanceScale: ptr(1.0), Multiplier: ptr(m), Weight: ptr(deref(t.Weight, 1.0)),
		Resolutions: slices.Clone(res)}
	if !t.Shuffle {
		p.Targets = append(p.Targets, base)
		return nil
	}
	pairs := aitkTargetPermutations(t.Positive, t.Negative, rng)
	for _, pn := range pairs {
		q := base
		q.Positive, q.Negative = pn[0], pn[1]
		q.Resolutions = slices.Clone(res)
		p.Targets = append(p.Targets, q)
	}
	imp.warnAt(path+".shuffle", "expanded into %d targets, as get_slider_target_permutations does: the comma-separated phrases of positive and negative shuffled, up to %d orders of each, %d (positive, negative) pairs drawn from their product. ai-toolkit draws them anew each run; the import draws them once (seeded with train.seed %d) and writes them out", len(pairs), aitkMaxPermutations, len(pairs), p.Train.Seed)
	return nil
}

// aitkTargetPermutations is get_slider_target_permutations: up to aitkMaxPermutations (positive,
// negative) pairs from the product of both prompts' phrase permutations, shuffled.
func aitkTargetPermutations(positive, negative string, rng *rand.Rand) [][2]string {
	pos := aitkPhrasePermutations(aitkShuffledPhrases(positive, rng), aitkMaxPermutations)
	neg := aitkPhrasePermutations(aitkShuffledPhrases(negative, rng), aitkMaxPermutations)
	var out [][2]string
	for _, a := range pos {
		for _, b := range neg {
			out = append(out, [2]string{a, b})
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out[:min(len(out), aitkMaxPermutations)]
}

// aitkShuffledPhrases is get_permutations' first half: the non-empty comma-separated phrases of s,
// trimmed, in random order.
func aitkShuffledPhrases(s string, rng *rand.Rand) []string {
	var phrases []string
	for _, ph := range strings.Split(s, ",") {
		if ph = strings.TrimSpace(ph); ph != "" {
			phrases = append(phrases, ph)
		}
	}
	rng.Shuffle(len(phrases), func(i, j int) { phrases[i], phrases[j] = phrases[j], phrases[i] })
	return phrases
}

// aitkPhrasePermutations is get_permutations' second half: the first max permutations of phrases in
// itertools.permutations order (lexicographic in the phrases' positions), each joined with ", ". No
// phrase gives one empty prompt, as itertools.permutations([]) yields one empty tuple.
func aitkPhrasePermutations(phrases []string, max int) []string {
	idx := make([]int, len(phrases))
	for i := range idx {
		idx[i] = i
	}
	var out []string
	for len(out) < max {
		words := make([]string, len(idx))
		for i, j := range idx {
			words[i] = phrases[j]
		}
		out = append(out, strings.Join(words, ", "))
		if !nextPermutation(idx) {
			break
		}
	}
	return out
}

// nextPermutation advances idx to the next permutation in lexicographic order; false after the last.
func nextPermutation(idx []int) bool {
	i := len(idx) - 2
	for i >= 0 && idx[i] >= idx[i+1] {
		i--
	}
	if i < 0 {
		return false
	}
	j := len(idx) - 1
	for idx[j] <= idx[i] {
		j--
	}
	idx[i], idx[j] = idx[j], idx[i]
	slices.Reverse(idx[i+1:])
	return true
}

// addAnchors maps SliderConfigAnchors onto U-LOBA anchors. ai-toolkit holds each anchor at its
// multiplier times the sign of the prompt pair's multiplier (anchor_scalar in
// hook_before_train_loop); a slider trains both signs, so each anchor becomes two LOBA anchors, at
// +|multiplier| and −|multiplier|. ai-toolkit has no anchor weight: anchor_weight keeps LOBA's default.
func (imp *aitkImport) addAnchors(anchors []aitkAnchor, path string, p *Preset) {
	for i, a := range anchors {
		m := math.Abs(deref(a.Multiplier, 1.0))
		if m == 0 {
			imp.warnAt(fmt.Sprintf("%s[%d].multiplier", path, i), "0: an anchor held at multiplier 0 is the frozen model itself and adds nothing to the loss; dropped")
			continue
		}
		for _, s := range []float64{m, -m} {
			p.Anchors = append(p.Anchors, Anchor{Prompt: a.Prompt, NegPrompt: a.NegPrompt, Multiplier: ptr(s)})
		}
	}
	if len(p.Anchors) == 0 {
		return
	}
	imp.warnAt(path, "imported as the config describes them, as U-LOBA anchors held to the frozen model, each at +|multiplier| and −|multiplier| (ai-toolkit matches the anchor's sign to the prompt pair's, and a slider trains both), with anchor_weight 1, LOBA's default: ai-toolkit has no anchor weight. TrainSliderProcess at 27a03a9 encodes the anchors but adds no anchor term to its loss; TrainSliderProcessOld added one random anchor's loss per step, unweighted (on average 1/%d of this preset's anchor term), and, its prompt arguments swapped, held neg_prompt's prediction, where LOBA holds prompt's", len(p.Anchors))
}
