package clip

// Python string semantics that the CLIP text clean-up depends on: str.isspace / str.strip,
// str.lower (full case mapping with Final_Sigma), the `regex` module's \s, and UTF-8 decoding with
// errors="replace". Go's strings/unicode functions differ from Python's in each of these.

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// pyIsSpace is Python's str.isspace for one character (Py_UNICODE_ISSPACE: bidirectional class
// WS, B or S, or category Zs). Unlike Unicode White_Space it includes U+001C..U+001F.
func pyIsSpace(r rune) bool {
	switch {
	case r >= '\t' && r <= '\r', r >= 0x1C && r <= 0x20:
		return true
	case r < 0x85:
		return false
	}
	return r == 0x85 || r == 0xA0 || r == 0x1680 || (r >= 0x2000 && r <= 0x200A) ||
		r == 0x2028 || r == 0x2029 || r == 0x202F || r == 0x205F || r == 0x3000
}

// pyStrip is Python's str.strip() with no argument.
func pyStrip(s string) string { return strings.TrimFunc(s, pyIsSpace) }

// Regexp class bodies for the two meanings of \s in the Python code being ported.
const (
	// classPyReSpace is \s of Python's `re` module on str patterns (= str.isspace), as used by ftfy.
	classPyReSpace = `\t-\r\x{1c}-\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}`
	// classRegexSpace is \s of the third-party `regex` module (Unicode White_Space), as used by
	// openai/CLIP's simple_tokenizer: it does not include U+001C..U+001F.
	classRegexSpace = `\t-\r\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}`
)

// pyLower is Python's str.lower(): the full lowercase mapping, i.e. the simple mapping plus
// SpecialCasing's unconditional U+0130 → "i̇" and the Final_Sigma rule for U+03A3.
func pyLower(s string) string {
	if isASCIILower(s) {
		return s
	}
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range rs {
		switch r {
		case 0x130:
			b.WriteString("i\u0307")
		case 0x3A3:
			if finalSigma(rs, i) {
				b.WriteRune(0x3C2)
			} else {
				b.WriteRune(0x3C3)
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

func isASCIILower(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || (c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// finalSigma is CPython's handle_capital_sigma: U+03A3 at rs[i] becomes ς when it follows a cased
// letter and is not followed by one (case-ignorable characters skipped on both sides).
func finalSigma(rs []rune, i int) bool {
	j := i - 1
	for j >= 0 && isCaseIgnorable(rs[j]) {
		j--
	}
	if j < 0 || !isCased(rs[j]) {
		return false
	}
	j = i + 1
	for j < len(rs) && isCaseIgnorable(rs[j]) {
		j++
	}
	return j == len(rs) || !isCased(rs[j])
}

func isCased(r rune) bool {
	return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

func isCaseIgnorable(r rune) bool {
	switch r {
	// Word_Break = MidLetter, MidNumLet or Single_Quote.
	case 0x27, 0x2E, 0x3A, 0xB7, 0x387, 0x55F, 0x5F4, 0x2018, 0x2019, 0x2024, 0x2027,
		0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// pyUpperSpecial holds the SpecialCasing uppercase expansions that Python's str.upper() applies
// to the values of HTML5 entities with lowercase names (ftfy upper-cases them: &SZLIG; → "SS").
var pyUpperSpecial = map[rune]string{
	'ß': "SS", 'ŉ': "ʼN", 'ﬀ': "FF", 'ﬁ': "FI", 'ﬂ': "FL", 'ﬃ': "FFI", 'ﬄ': "FFL", 'ﬅ': "ST", 'ﬆ': "ST",
}

// pyUpper is Python's str.upper() for the characters ftfy upper-cases (see pyUpperSpecial).
func pyUpper(s string) string {
	var b strings.Builder
	for _, r := range s {
		if u, ok := pyUpperSpecial[r]; ok {
			b.WriteString(u)
		} else {
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

// pyDecodeUTF8Replace is Python's bytes.decode("utf-8", errors="replace"): each maximal
// ill-formed subpart becomes one U+FFFD (Unicode's recommended practice; Go's per-byte
// replacement differs on truncated sequences).
func pyDecodeUTF8Replace(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for i := 0; i < len(b); {
		if r, size := utf8.DecodeRune(b[i:]); r != utf8.RuneError || size > 1 {
			sb.WriteRune(r)
			i += size
			continue
		}
		i += validPrefixLen(b[i:])
		sb.WriteRune(utf8.RuneError)
	}
	return sb.String()
}

// validPrefixLen is the length (≥ 1) of the maximal prefix of b that starts a well-formed UTF-8
// sequence but does not complete one (Unicode Table 3-7).
func validPrefixLen(b []byte) int {
	lead := b[0]
	var n int
	lo, hi := byte(0x80), byte(0xBF) // allowed range of the second byte
	switch {
	case lead >= 0xC2 && lead <= 0xDF:
		n = 2
	case lead == 0xE0:
		n, lo = 3, 0xA0
	case lead == 0xED:
		n, hi = 3, 0x9F
	case lead >= 0xE1 && lead <= 0xEF:
		n = 3
	case lead == 0xF0:
		n, lo = 4, 0x90
	case lead == 0xF4:
		n, hi = 4, 0x8F
	case lead >= 0xF1 && lead <= 0xF3:
		n = 4
	default:
		return 1
	}
	k := 1
	for k < n && k < len(b) {
		c := b[k]
		if k == 1 && (c < lo || c > hi) || k > 1 && (c < 0x80 || c > 0xBF) {
			break
		}
		k++
	}
	return k
}
