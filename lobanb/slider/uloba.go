package slider

import (
	"strings"
	"unicode"
)

// Anchor is a U-LOBA anchor prompt (docs/ALGORITHMS.md §5), in ai-toolkit's form (toolkit/
// config_modules.py SliderConfigAnchors: prompt, neg_prompt, multiplier 1.0 by default): a related
// concept the adapter must leave alone, held to the frozen teacher's prediction in the same loss.
type Anchor struct {
	Prompt string `yaml:"prompt" json:"prompt" slider:"required"`
	// NegPrompt is the anchor's negative (unconditional) prompt; default "".
	NegPrompt string `yaml:"neg_prompt" json:"neg_prompt"`
	// Multiplier is the adapter multiplier at which the anchor's prediction is held to the teacher's
	// (signed, non-zero; default 1).
	Multiplier *float64 `yaml:"multiplier" json:"multiplier"`
}

// ConceptMask is U-LOBA's automatic concept mask: W of an erase entry without a mask of its own, from
// the cross-attention maps of the erased concept's tokens, normalised to [0, 1], thresholded and
// blurred, so that the pixels the concept does not own are preserved (weighted by the entry's
// preserve, λ_keep).
type ConceptMask struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Threshold on the normalised attention map, in (0, 1) (default 0.5).
	Threshold *float64 `yaml:"threshold" json:"threshold"`
	// Blur is the blur radius in latent pixels, >= 0 (default 1; 0 = none).
	Blur *int `yaml:"blur" json:"blur"`
	// Tokens are the words of the erased concept; default (empty): per entry, the words of its
	// positive prompt that are not in its neutral prompt (TokensFor).
	Tokens []string `yaml:"tokens,omitempty" json:"tokens,omitempty"`
}

// fillDefaults sets the concept mask's threshold and blur.
func (c *ConceptMask) fillDefaults() {
	setPtr(&c.Threshold, 0.5)
	if c.Blur == nil {
		c.Blur = ptr(1)
	}
	if len(c.Tokens) == 0 {
		c.Tokens = nil
	}
}

// TokensFor returns the words whose cross-attention maps make entry e's concept mask: Tokens when
// given, else the words of e's positive prompt that its neutral prompt lacks (compared without
// case; words are runs of letters and digits), in order and without repeats.
func (c *ConceptMask) TokensFor(e Entry) []string {
	if len(c.Tokens) > 0 {
		return c.Tokens
	}
	neutral := map[string]bool{}
	for _, w := range words(e.Neutral) {
		neutral[strings.ToLower(w)] = true
	}
	var out []string
	for _, w := range words(e.Positive) {
		if lw := strings.ToLower(w); !neutral[lw] {
			neutral[lw] = true
			out = append(out, w)
		}
	}
	return out
}

func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}
