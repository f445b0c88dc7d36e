package clip

// Ports the text clean-up and pre-tokenization of openai/CLIP clip/simple_tokenizer.py
// (basic_clean, whitespace_clean, SimpleTokenizer.pat).

import (
	"regexp"
)

// Special tokens of the CLIP vocabulary.
const (
	StartOfText = "<|startoftext|>"
	EndOfText   = "<|endoftext|>"
)

// CleanText is the text normalisation openai/CLIP's SimpleTokenizer.encode applies before
// splitting: whitespace_clean(basic_clean(text)).lower(), that is
//
//	ftfy.fix_text(text)  (FixText)
//	html.unescape(html.unescape(text)).strip()  (Python's html.unescape, twice)
//	re.sub(r"\s+", " ", text).strip()  (\s of the regex module: Unicode White_Space)
//	text.lower()  (Python's full lowercase mapping)
func CleanText(text string) string {
	text = FixText(text)
	text = pyStrip(pyHTMLUnescape(pyHTMLUnescape(text)))
	text = pyStrip(whitespaceRE.ReplaceAllLiteralString(text, " "))
	return pyLower(text)
}

var whitespaceRE = regexp.MustCompile(`[` + classRegexSpace + `]+`)

// pretokenizeRE is SimpleTokenizer.pat, compiled by the regex module with IGNORECASE:
//
//	<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//
// Case folding matters only for the literal alternatives ("'ſ" matches 's, as in the regex
// module). Under IGNORECASE the regex module matches U+0345 COMBINING GREEK YPOGEGRAMMENI (which
// folds to ι) with neither [\p{L}] nor [^\s\p{L}\p{N}], so it is dropped; U+0345 is the only code
// point whose class membership IGNORECASE changes.
var pretokenizeRE = regexp.MustCompile(`(?i:<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d)` +
	`|\p{L}+|\p{N}|[^` + classRegexSpace + `\p{L}\p{N}\x{345}]+`)

// pretokenize is regex.findall(SimpleTokenizer.pat, text) on cleaned text.
func pretokenize(text string) []string { return pretokenizeRE.FindAllString(text, -1) }
