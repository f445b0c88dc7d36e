package clip

// Ports ftfy 6.3.1's mojibake repair: fix_encoding / _fix_encoding_one_step_and_explain
// (ftfy/__init__.py), the badness heuristic (ftfy/badness.py), restore_byte_a0,
// replace_lossy_sequences, decode_inconsistent_utf8 and fix_c1_controls (ftfy/fixes.py), the
// "sloppy" single-byte codecs (ftfy/bad_codecs/sloppy.py) and the "utf-8-variants" decoder
// (ftfy/bad_codecs/utf8_variants.py). The character classes come from ftfy_tables.go.
//
// Byte-level regular expressions (Python bytes patterns) run here on "byte strings": a string
// whose runes are the byte values 0..255, so that Go's UTF-8 regexp engine sees one rune per byte.

import (
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"
)

// charmap is one of ftfy's single-byte encodings.
type charmap struct {
	name string
	high string // the characters bytes 0x80..0xFF decode to
	sub  rune   // the character byte 0x1A decodes to (U+FFFD in the sloppy codecs)

	once sync.Once
	dec  [256]rune
	enc  map[rune]byte
}

func (c *charmap) init() {
	c.once.Do(func() {
		c.enc = make(map[rune]byte, 256)
		for b := 0; b < 0x80; b++ {
			c.dec[b] = rune(b)
		}
		c.dec[0x1A] = c.sub
		i := 0x80
		for _, r := range c.high {
			c.dec[i] = r
			i++
		}
		for b, r := range c.dec {
			c.enc[r] = byte(b)
		}
	})
}

// encode is text.encode(c.name); ok is false when a character has no byte (possible_encoding).
func (c *charmap) encode(s string) ([]byte, bool) {
	c.init()
	out := make([]byte, 0, len(s))
	for _, r := range s {
		b, ok := c.enc[r]
		if !ok {
			return nil, false
		}
		out = append(out, b)
	}
	return out, true
}

func (c *charmap) decode(b []byte) string {
	c.init()
	var sb strings.Builder
	for _, x := range b {
		sb.WriteRune(c.dec[x])
	}
	return sb.String()
}

func charmapByName(name string) *charmap {
	for _, c := range charmapEncodings {
		if c.name == name {
			return c
		}
	}
	panic("clip: unknown charmap " + name)
}

var (
	latin1       = charmapByName("latin-1")
	sloppyCP1252 = charmapByName("sloppy-windows-1252")
)

// badnessRE is ftfy.badness.BADNESS_RE, one alternative per line of the Python source.
var badnessRE = func() *regexp.Regexp {
	const (
		c1, bad, law, currency, startP, endP  = mojiC1, mojiBad, mojiLaw, mojiCurrency, mojiStartPunctuation, mojiEndPunctuation
		numeric, kaomoji, upperAcc, lowerAcc  = mojiNumeric, mojiKaomoji, mojiUpperAccented, mojiLowerAccented
		upperCommon, lowerCommon, box, common = mojiUpperCommon, mojiLowerCommon, mojiBox, mojiCommon
	)
	arabic := `[` + common + currency + bad + numeric + startP + `ŸŠ®°µ»]`
	return regexp.MustCompile(strings.Join([]string{
		`[` + c1 + `]`,
		`[` + bad + lowerAcc + upperAcc + box + startP + endP + currency + numeric + law + `][` + bad + `]`,
		`[a-zA-Z][` + lowerCommon + upperCommon + `][` + bad + `]`,
		`[` + bad + `][` + lowerAcc + upperAcc + box + startP + endP + currency + numeric + law + `]`,
		`[` + lowerAcc + lowerCommon + box + endP + currency + numeric + `][` + upperAcc + `]`,
		`[` + box + endP + currency + numeric + `][` + lowerAcc + `]`,
		`[` + lowerAcc + box + endP + `][` + currency + `]`,
		`[` + classPyReSpace + `][` + upperAcc + `][` + currency + `]`,
		`[` + upperAcc + box + `][` + numeric + law + `]`,
		`[` + lowerAcc + upperAcc + box + currency + endP + `][` + startP + `][` + numeric + `]`,
		`[` + lowerAcc + upperAcc + currency + numeric + box + law + `][` + endP + `][` + startP + `]`,
		`[` + currency + numeric + box + `][` + startP + `]`,
		`[a-z][` + upperAcc + `][` + startP + currency + `]`,
		`[` + box + `][` + kaomoji + `]`,
		`[` + lowerAcc + upperAcc + currency + numeric + startP + endP + law + `][` + box + `]`,
		`[` + box + `][` + endP + `]`,
		`[` + lowerAcc + upperAcc + `][` + startP + endP + `][\p{L}\p{N}_]`,
		`[Œœ][^A-Za-z]`,       // the ligature œ when not followed by an unaccented Latin letter
		`[` + upperAcc + `]°`, // degree signs after capital letters
		`[ÂÃÎÐ][€œŠš¢£Ÿž\x{a0}\x{ad}®©°·»` + startP + endP + `–—´]`, // common Windows-1252 2-character mojibake
		`×[²³]`,
		`[ØÙ]` + arabic + `[ØÙ]` + arabic, // Windows-1252 mojibake of Arabic words
		`à[²µ¹¼½¾]`,                       // 3-character sequences of South Asian alphabets
		`√[±∂†≠®™´≤≥¥µø]`,                 // MacRoman mojibake
		`≈[°¢]`,
		`‚Ä[ìîïòôúùû†°¢π]`,
		`‚[âó][àä°ê]`,
		`вЂ`, // Windows-1251 mojibake of characters in the U+2000 range
		`[ВГРС][` + c1 + bad + startP + endP + currency + `°µ][ВГРС]`,
		`ГўВЂВ.[A-Za-z ]`,
		`Ã[\x{a0}¡]`, // Windows-1252 encodings of 'à' and 'á', and of \xa0 itself
		`[a-z][` + classPyReSpace + `]?[ÃÂ][ ]`,
		`^[ÃÂ][ ]`,
		`[a-z.,?!` + endP + `]Â[ ` + startP + endP + `]`,
		`β€[™\x{a0}Ά\x{ad}®°]`, // Windows-1253 mojibake of characters in the U+2000 range
		`[ΒΓΞΟ][` + c1 + bad + startP + endP + currency + `°][ΒΓΞΟ]`,
		`ā€`, // Windows-1257 mojibake of characters in the U+2000 range
	}, "|"))
}()

// isBad is ftfy.badness.is_bad: whether text looks like it contains mojibake.
func isBad(text string) bool { return badnessRE.MatchString(text) }

// utf8DetectorRE is ftfy.chardata.UTF8_DETECTOR_RE without its lookbehind
// (?<![utf8_continuation_strict]), which decodeInconsistentUTF8 checks by hand.
var utf8DetectorRE = regexp.MustCompile(`(?:[` + clueUtf8FirstOf2 + `][` + clueUtf8Continuation + `]|[` +
	clueUtf8FirstOf3 + `][` + clueUtf8Continuation + `]{2}|[` + clueUtf8FirstOf4 + `][` +
	clueUtf8Continuation + `]{3})+`)

var utf8ContinuationStrictRE = regexp.MustCompile(`^[` + clueUtf8ContinuationStrict + `]$`)

// Byte-level patterns of ftfy/chardata.py and ftfy/fixes.py, over byte strings.
var (
	alteredUTF8RE = regexp.MustCompile(`[\x{c2}\x{c3}\x{c5}\x{ce}\x{d0}\x{d9}][ ]` +
		`|[\x{e2}\x{e3}][ ][\x{80}-\x{84}\x{86}-\x{9f}\x{a1}-\x{bf}]` +
		`|[\x{e0}-\x{e3}][\x{80}-\x{84}\x{86}-\x{9f}\x{a1}-\x{bf}][ ]` +
		`|[\x{f0}][ ][\x{80}-\x{bf}][\x{80}-\x{bf}]` +
		`|[\x{f0}][\x{80}-\x{bf}][ ][\x{80}-\x{bf}]` +
		`|[\x{f0}][\x{80}-\x{bf}][\x{80}-\x{bf}][ ]`)
	lossyUTF8RE = regexp.MustCompile(`[\x{c2}-\x{df}][\x{1a}]` +
		`|[\x{c2}-\x{c3}][?]` +
		`|\x{ed}[\x{a0}-\x{af}][\x{1a}?]\x{ed}[\x{b0}-\x{bf}][\x{1a}?\x{80}-\x{bf}]` +
		`|\x{ed}[\x{a0}-\x{af}][\x{1a}?\x{80}-\x{bf}]\x{ed}[\x{b0}-\x{bf}][\x{1a}?]` +
		`|[\x{e0}-\x{ef}][\x{1a}?][\x{1a}\x{80}-\x{bf}]` +
		`|[\x{e0}-\x{ef}][\x{1a}\x{80}-\x{bf}][\x{1a}?]` +
		`|[\x{f0}-\x{f4}][\x{1a}?][\x{1a}\x{80}-\x{bf}][\x{1a}\x{80}-\x{bf}]` +
		`|[\x{f0}-\x{f4}][\x{1a}\x{80}-\x{bf}][\x{1a}?][\x{1a}\x{80}-\x{bf}]` +
		`|[\x{f0}-\x{f4}][\x{1a}\x{80}-\x{bf}][\x{1a}\x{80}-\x{bf}][\x{1a}?]` +
		`|\x{1a}`)
	c1ControlRE = regexp.MustCompile(`[\x{80}-\x{9f}]`)
)

// byteString maps bytes to a string with one rune per byte value (Latin-1), and back.
func byteString(b []byte) string { return latin1.decode(b) }

func fromByteString(s string) []byte {
	out, _ := latin1.encode(s)
	return out
}

// restoreByteA0 ports ftfy.fixes.restore_byte_a0 (on a byte string): spaces that stand for a
// lost 0xA0 inside would-be UTF-8 sequences are put back.
func restoreByteA0(s string) string {
	// A_GRAVE_WORD_RE = b"\xc3 (?! |quele|quela|quilo|s )" → b"\xc3\xa0 ".
	var b strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "\u00c3 ") {
			rest := s[i+len("\u00c3 "):]
			if !(strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "quele") || strings.HasPrefix(rest, "quela") ||
				strings.HasPrefix(rest, "quilo") || strings.HasPrefix(rest, "s ")) {
				b.WriteString("\u00c3\u00a0 ")
				i += len("\u00c3 ")
				continue
			}
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		b.WriteString(s[i : i+size])
		i += size
	}
	return alteredUTF8RE.ReplaceAllStringFunc(b.String(), func(m string) string {
		return strings.ReplaceAll(m, " ", "\u00a0")
	})
}

// replaceLossySequences ports ftfy.fixes.replace_lossy_sequences (on a byte string).
func replaceLossySequences(s string) string {
	return lossyUTF8RE.ReplaceAllLiteralString(s, "\u00ef\u00bf\u00bd") // "\ufffd".encode()
}

// decodeUTF8 is bytes.decode("utf-8") (strict); ok is false on any ill-formed sequence.
func decodeUTF8(b []byte) (string, bool) {
	if !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

// decodeUTF8Variants is bytes.decode("utf-8-variants"): UTF-8 that may also contain CESU-8
// surrogate pairs (ED A0-AF xx ED B0-BF xx) and Java's two-byte NUL (C0 80).
func decodeUTF8Variants(b []byte) (string, bool) {
	var sb strings.Builder
	for i := 0; i < len(b); {
		if i+6 <= len(b) && b[i] == 0xED && b[i+1] >= 0xA0 && b[i+1] <= 0xAF && isCont(b[i+2]) &&
			b[i+3] == 0xED && b[i+4] >= 0xB0 && b[i+4] <= 0xBF && isCont(b[i+5]) {
			r := rune(b[i+1]&0x0F)<<16 | rune(b[i+2]&0x3F)<<10 | rune(b[i+4]&0x0F)<<6 | rune(b[i+5]&0x3F)
			sb.WriteRune(r + 0x10000)
			i += 6
			continue
		}
		if i+2 <= len(b) && b[i] == 0xC0 && b[i+1] == 0x80 {
			sb.WriteByte(0)
			i += 2
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return "", false
		}
		sb.WriteRune(r)
		i += size
	}
	return sb.String(), true
}

func isCont(c byte) bool { return c >= 0x80 && c <= 0xBF }

// fixEncoding ports ftfy.fix_encoding: repeat one step of mojibake repair until nothing changes.
func fixEncoding(text string) string {
	for {
		fixed := fixEncodingOneStep(text)
		if fixed == text {
			return text
		}
		text = fixed
	}
}

// fixEncodingOneStep ports ftfy._fix_encoding_one_step_and_explain with the default config.
func fixEncodingOneStep(text string) string {
	if text == "" || isASCII(text) || !isBad(text) {
		return text
	}
	// Text that was UTF-8 but decoded with a single-byte encoding: re-encode, decode as UTF-8.
	latin1Possible := false
	for _, enc := range charmapEncodings {
		encoded, ok := enc.encode(text)
		if !ok {
			continue
		}
		if enc == latin1 {
			latin1Possible = true
		}
		bs := byteString(encoded)
		if enc.name != "macroman" && alteredUTF8RE.MatchString(bs) {
			bs = restoreByteA0(bs)
		}
		if strings.HasPrefix(enc.name, "sloppy") {
			bs = replaceLossySequences(bs)
		}
		encoded = fromByteString(bs)
		var fixed string
		if strings.ContainsAny(bs, "\u00ed\u00c0") { // bytes 0xED or 0xC0
			fixed, ok = decodeUTF8Variants(encoded)
		} else {
			fixed, ok = decodeUTF8(encoded)
		}
		if ok {
			return fixed
		}
	}
	// A-hat-euro sequences embedded in otherwise fine text are fixed in isolation.
	if utf8DetectorRE.MatchString(text) {
		if fixed := decodeInconsistentUTF8(text); fixed != text {
			return fixed
		}
	}
	// Latin-1 meant as Windows-1252. ftfy checks `"windows-1252" in possible_1byte_encodings`,
	// which never holds (only "sloppy-windows-1252" is ever listed), so it always tries the strict
	// Windows-1252 decoding, which fails on the bytes Windows-1252 leaves undefined.
	if latin1Possible {
		encoded, _ := latin1.encode(text)
		if !hasUndefinedCP1252(encoded) {
			if fixed := strings.ReplaceAll(sloppyCP1252.decode(encoded), "\ufffd", "\x1a"); fixed != text {
				return fixed
			}
		}
	}
	if c1ControlRE.MatchString(text) {
		return fixC1Controls(text)
	}
	return text
}

// hasUndefinedCP1252 reports bytes that strict Windows-1252 leaves undefined. (Strict
// Windows-1252 is sloppy-windows-1252 without its byte 0x1A → U+FFFD; the text was Latin-1
// encodable, so it holds no U+FFFD that the replacement above could confuse.)
func hasUndefinedCP1252(b []byte) bool {
	for _, c := range b {
		switch c {
		case 0x81, 0x8D, 0x8F, 0x90, 0x9D:
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// decodeInconsistentUTF8 ports ftfy.fixes.decode_inconsistent_utf8: each run of UTF-8-looking
// mojibake that is not preceded by a strict continuation character, is shorter than the text and
// looks bad is fixed on its own.
func decodeInconsistentUTF8(text string) string {
	textLen := utf8.RuneCountInString(text)
	var b strings.Builder
	pos := 0 // copied up to here
	for start := 0; start < len(text); {
		loc := utf8DetectorRE.FindStringIndex(text[start:])
		if loc == nil {
			break
		}
		ms, me := start+loc[0], start+loc[1]
		if prev, _ := utf8.DecodeLastRuneInString(text[:ms]); ms > 0 && utf8ContinuationStrictRE.MatchString(string(prev)) {
			_, size := utf8.DecodeRuneInString(text[ms:])
			start = ms + size // the lookbehind fails here: retry one character later
			continue
		}
		sub := text[ms:me]
		b.WriteString(text[pos:ms])
		if utf8.RuneCountInString(sub) < textLen && isBad(sub) {
			b.WriteString(fixEncoding(sub))
		} else {
			b.WriteString(sub)
		}
		pos, start = me, me
	}
	b.WriteString(text[pos:])
	return b.String()
}

// fixC1Controls ports ftfy.fixes.fix_c1_controls: C1 control characters are read as the
// Windows-1252 characters of the same byte, as browsers do.
func fixC1Controls(text string) string {
	return c1ControlRE.ReplaceAllStringFunc(text, func(m string) string {
		encoded, _ := latin1.encode(m)
		return sloppyCP1252.decode(encoded)
	})
}
