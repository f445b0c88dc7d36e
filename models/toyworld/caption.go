package toyworld

import (
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
)

// OmitProbability is the chance that Caption leaves each attribute out, independently.
const OmitProbability = 0.2

var (
	// Words per class; the first is the canonical word (used by FullCaption and Prompt).
	shapeWords = map[string][]string{
		"circle":   {"circle", "disc"},
		"square":   {"square", "box"},
		"triangle": {"triangle"},
	}
	sizeWords = map[string][]string{
		"small":  {"small", "tiny", "little"},
		"medium": {"medium", "medium-sized", "mid-sized"},
		"large":  {"large", "big", "huge"},
	}
	colorWords = map[string][]string{
		"red": {"red"}, "green": {"green"}, "blue": {"blue"}, "yellow": {"yellow"},
	}
	backgroundWords = map[string][]string{"white": {"white"}, "black": {"black"}}

	// nounWords stand for the shape when the caption leaves it open.
	nounWords = []string{"shape", "object"}
	articles  = []string{"a", "a", "one", "the", ""}
	prefixes  = []string{"an image of", "a picture of", "a drawing of"}
	// bgPhrases: %s is the background word.
	bgPhrases = []string{" on a %s background", " on %s", ", %s background", " against a %s background", " on a %s backdrop"}
	// Function words used by the templates (kept in Vocabulary).
	functionWords = []string{"that", "is", "and", "in", "with", "an"}
)

// word picks a random synonym of one class.
func word(rng *rand.Rand, words map[string][]string, class string) string {
	ws := words[class]
	return ws[rng.IntN(len(ws))]
}

// withArticle prefixes phrase with art, turning "a" into "an" before a vowel.
func withArticle(art, phrase string) string {
	if art == "" {
		return phrase
	}
	if art == "a" && strings.ContainsRune("aeiou", rune(phrase[0])) {
		art = "an"
	}
	return art + " " + phrase
}

// joinNonEmpty joins the non-empty parts with single spaces.
func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

// Prompt is the canonical caption naming only the given classes; "" leaves an attribute open:
// Prompt("circle", "red", "large", "white") = "a large red circle on a white background",
// Prompt("", "red", "", "") = "a red shape", Prompt("circle", "", "", "black") = "a circle on a black
// background". Unknown classes are used verbatim.
func Prompt(shape, color, size, background string) string {
	canon := func(words map[string][]string, class string) string {
		if ws, ok := words[class]; ok {
			return ws[0]
		}
		return class
	}
	noun := nounWords[0]
	if shape != "" {
		noun = canon(shapeWords, shape)
	}
	p := withArticle("a", joinNonEmpty(canon(sizeWords, size), canon(colorWords, color), noun))
	if background != "" {
		p += " on a " + canon(backgroundWords, background) + " background"
	}
	return p
}

// FullCaption is the canonical caption naming every attribute of the scene,
// e.g. "a large red circle on a white background".
func FullCaption(s Scene) string { return Prompt(s.Shape, s.Color, s.Size, s.Background) }

// Caption returns a random caption of the scene: each attribute is left out with probability
// OmitProbability, synonyms and templates vary ("a big red circle", "red circle, white background",
// "a circle that is red", "an image of a tiny box in blue on black", ...). A caption never names a
// class other than the scene's. It consumes a variable number of rng values.
func Caption(s Scene, rng *rand.Rand) string {
	keep := func() bool { return rng.Float64() >= OmitProbability }
	var size, color, noun, bg string
	if keep() {
		size = word(rng, sizeWords, s.Size)
	}
	if keep() {
		color = word(rng, colorWords, s.Color)
	}
	if keep() {
		noun = word(rng, shapeWords, s.Shape)
	} else {
		noun = nounWords[rng.IntN(len(nounWords))]
	}
	if keep() {
		bg = word(rng, backgroundWords, s.Background)
	}
	art := articles[rng.IntN(len(articles))]

	var obj string
	switch rng.IntN(4) {
	case 1: // "a circle that is large and red"
		if size != "" || color != "" {
			adj := size
			if size != "" && color != "" {
				adj = size + " and " + color
			} else if color != "" {
				adj = color
			}
			obj = withArticle(art, noun) + " that is " + adj
		}
	case 2: // "a large circle in red"
		if color != "" {
			obj = withArticle(art, joinNonEmpty(size, noun)) + " in " + color
		}
	case 3: // "red circle" (no article)
		art = ""
	}
	if obj == "" {
		obj = withArticle(art, joinNonEmpty(size, color, noun))
	}
	if rng.IntN(5) == 0 {
		pre := prefixes[rng.IntN(len(prefixes))]
		if art == "" {
			obj = withArticle("a", obj)
		}
		obj = pre + " " + obj
	}
	if bg == "" {
		return obj
	}
	if rng.IntN(6) == 0 { // "a white background with a red circle"
		if art == "" {
			obj = withArticle("a", obj)
		}
		return "a " + bg + " background with " + obj
	}
	phrase := bgPhrases[rng.IntN(len(bgPhrases))]
	return obj + strings.Replace(phrase, "%s", bg, 1)
}

// Vocabulary lists, sorted, every word a caption can contain (synonyms, open-attribute nouns,
// articles, template words).
func Vocabulary() []string {
	set := map[string]bool{}
	add := func(text string) {
		for _, w := range splitWords(text) {
			set[w] = true
		}
	}
	for _, m := range []map[string][]string{shapeWords, sizeWords, colorWords, backgroundWords} {
		for _, ws := range m {
			for _, w := range ws {
				add(w)
			}
		}
	}
	for _, list := range [][]string{nounWords, articles, prefixes, bgPhrases, functionWords} {
		for _, w := range list {
			add(strings.ReplaceAll(w, "%s", ""))
		}
	}
	words := make([]string, 0, len(set))
	for w := range set {
		words = append(words, w)
	}
	sort.Strings(words)
	return words
}

// splitWords lower-cases text and splits it into words (letters and hyphens).
func splitWords(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r == '-')
	})
}

// Parse maps the words of a caption (or any prompt) to the classes they name, by attribute:
// "a big disc on black" → {size: large, shape: circle, background: black}. Synonyms map to the same
// class; attributes the caption leaves open are absent. When a caption names two classes of one
// attribute, the last one wins.
func Parse(caption string) map[string]string {
	out := map[string]string{}
	for _, w := range splitWords(caption) {
		for _, t := range []struct {
			attr  string
			words map[string][]string
		}{{AttrShape, shapeWords}, {AttrSize, sizeWords}, {AttrColor, colorWords}, {AttrBackground, backgroundWords}} {
			for class, ws := range t.words {
				if slices.Contains(ws, w) {
					out[t.attr] = class
				}
			}
		}
	}
	return out
}
