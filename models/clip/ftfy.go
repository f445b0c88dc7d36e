package clip

// Ports ftfy 6.3.1's fix_text (ftfy/__init__.py) with its default TextFixerConfig, and the
// character-level fixers of ftfy/fixes.py. openai/CLIP's tokenizer runs every prompt through it.

import (
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// ftfyMaxDecodeLength is TextFixerConfig.max_decode_length (in characters).
const ftfyMaxDecodeLength = 1_000_000

// FixText ports ftfy.fix_text(text) with the default configuration (ftfy 6.3.1), which the CLIP
// tokenizer applies to every prompt. The text is fixed line by line; each line is repeatedly run
// through these steps until it stops changing:
//
//	unescape_html        HTML5 entities ending in ";" (&amp; &EACUTE; &#x2019;), skipped from the
//	                     first line that contains "<" onwards (config "auto")
//	fix_encoding         mojibake repair: the badness heuristic, re-encoding in latin-1,
//	                     sloppy-windows-1250/1/2/3/4/7, iso-8859-2, macroman, cp437 and decoding as
//	                     UTF-8 / utf-8-variants (CESU-8), with restore_byte_a0,
//	                     replace_lossy_sequences, decode_inconsistent_utf8 and fix_c1_controls
//	fix_c1_controls      U+0080..U+009F read as Windows-1252
//	fix_latin_ligatures  ﬁ → fi, Ĳ → IJ, …
//	fix_character_width  full-width and half-width forms → NFKC, U+3000 → space
//	uncurl_quotes        ‘ ’ ‚ ‛ ʼ → ', “ ” „ ‟ → "
//	fix_line_breaks      \r\n, \r, U+2028, U+2029, U+0085 → \n
//	fix_surrogates       (see below)
//	remove_terminal_escapes  ANSI escape sequences
//	remove_control_chars C0 controls but \t \n \f \r, DEL, U+206A..U+206F, U+FEFF, U+FFF9..U+FFFC
//	normalization        NFC
//
// A Go string cannot hold UTF-16 surrogates the way a Python str can; invalid UTF-8 is decoded
// first instead: CESU-8 surrogate pairs become their character (what fix_surrogates does to a
// surrogate pair) and every other ill-formed sequence becomes U+FFFD.
func FixText(text string) string {
	text = decodeLenient(text)
	unescape := true
	var out strings.Builder
	for rest := text; rest != ""; {
		n := strings.IndexByte(rest, '\n') + 1
		if n == 0 {
			n = len(rest)
		}
		if i := runeOffset(rest, ftfyMaxDecodeLength); i < n {
			n = i
		}
		segment := rest[:n]
		rest = rest[n:]
		if strings.Contains(segment, "<") {
			unescape = false // fix_text keeps the changed config for the following segments
		}
		out.WriteString(fixSegment(segment, unescape))
	}
	return out.String()
}

// runeOffset is the byte offset of the n-th rune of s, or len(s).
func runeOffset(s string, n int) int {
	if len(s) <= n {
		return len(s)
	}
	for i := range s {
		if n == 0 {
			return i
		}
		n--
	}
	return len(s)
}

// fixSegment ports ftfy.fix_and_explain's loop for one segment.
func fixSegment(text string, unescape bool) string {
	for {
		orig := text
		if unescape {
			text = ftfyUnescapeHTML(text)
		}
		text = fixEncoding(text)
		text = fixC1Controls(text)
		text = fixLatinLigatures(text)
		text = fixCharacterWidth(text)
		text = uncurlQuotes(text)
		text = fixLineBreaks(text)
		text = removeTerminalEscapes(text)
		text = removeControlChars(text)
		text = norm.NFC.String(text)
		if text == orig {
			return text
		}
	}
}

// latinLigatures is ftfy.chardata.LIGATURES.
var latinLigatures = map[rune]string{
	'Ĳ': "IJ", 'ĳ': "ij", 'ŉ': "ʼn", 'Ǳ': "DZ", 'ǲ': "Dz", 'ǳ': "dz", 'Ǆ': "DŽ", 'ǅ': "Dž", 'ǆ': "dž",
	'Ǉ': "LJ", 'ǈ': "Lj", 'ǉ': "lj", 'Ǌ': "NJ", 'ǋ': "Nj", 'ǌ': "nj",
	'ﬀ': "ff", 'ﬁ': "fi", 'ﬂ': "fl", 'ﬃ': "ffi", 'ﬄ': "ffl", 'ﬅ': "ſt", 'ﬆ': "st",
}

func fixLatinLigatures(text string) string {
	return translate(text, func(r rune) (string, bool) { s, ok := latinLigatures[r]; return s, ok })
}

// widthMap is ftfy.chardata.WIDTH_MAP: U+3000 → " " and every character of U+FF01..U+FFEF that
// NFKC changes → its NFKC form.
var widthMap = sync.OnceValue(func() map[rune]string {
	m := map[rune]string{0x3000: " "}
	for r := rune(0xFF01); r < 0xFFF0; r++ {
		if alt := norm.NFKC.String(string(r)); alt != string(r) {
			m[r] = alt
		}
	}
	return m
})

func fixCharacterWidth(text string) string {
	m := widthMap()
	return translate(text, func(r rune) (string, bool) { s, ok := m[r]; return s, ok })
}

// uncurlQuotes ports ftfy.fixes.uncurl_quotes.
func uncurlQuotes(text string) string {
	return translate(text, func(r rune) (string, bool) {
		switch {
		case r == 0x2BC || r >= 0x2018 && r <= 0x201B:
			return "'", true
		case r >= 0x201C && r <= 0x201F:
			return `"`, true
		}
		return "", false
	})
}

var lineBreaks = strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u2028", "\n", "\u2029", "\n", "\u0085", "\n")

// fixLineBreaks ports ftfy.fixes.fix_line_breaks.
func fixLineBreaks(text string) string { return lineBreaks.Replace(text) }

// ansiRE is ftfy.fixes.ANSI_RE ("\d" of Python's re is any decimal digit).
var ansiRE = regexp.MustCompile(`\x1b\[((?:\p{Nd}|;)*)([a-zA-Z])`)

func removeTerminalEscapes(text string) string {
	if !strings.Contains(text, "\x1b") {
		return text
	}
	return ansiRE.ReplaceAllString(text, "")
}

// removeControlChars ports ftfy.fixes.remove_control_chars (chardata.CONTROL_CHARS).
func removeControlChars(text string) string {
	return translate(text, func(r rune) (string, bool) {
		if r <= 0x08 || r == 0x0B || r >= 0x0E && r <= 0x1F || r == 0x7F || r >= 0x206A && r <= 0x206F ||
			r == 0xFEFF || r >= 0xFFF9 && r <= 0xFFFC {
			return "", true
		}
		return "", false
	})
}

// translate is Python's str.translate with a mapping function: f returns the replacement and
// whether r is mapped at all.
func translate(text string, f func(r rune) (string, bool)) string {
	var b *strings.Builder
	for i, r := range text {
		rep, ok := f(r)
		if b == nil {
			if !ok {
				continue
			}
			b = &strings.Builder{}
			b.Grow(len(text))
			b.WriteString(text[:i])
		}
		if ok {
			b.WriteString(rep)
		} else {
			b.WriteRune(r)
		}
	}
	if b == nil {
		return text
	}
	return b.String()
}

// decodeLenient turns invalid UTF-8 into text: CESU-8 surrogate pairs become their character
// and any other ill-formed sequence (lone surrogates included) becomes U+FFFD, as
// ftfy.fixes.fix_surrogates treats surrogates.
func decodeLenient(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := []byte(s)
	var sb strings.Builder
	for i := 0; i < len(b); {
		if i+6 <= len(b) && b[i] == 0xED && b[i+1] >= 0xA0 && b[i+1] <= 0xAF && isCont(b[i+2]) &&
			b[i+3] == 0xED && b[i+4] >= 0xB0 && b[i+4] <= 0xBF && isCont(b[i+5]) {
			r := rune(b[i+1]&0x0F)<<16 | rune(b[i+2]&0x3F)<<10 | rune(b[i+4]&0x0F)<<6 | rune(b[i+5]&0x3F)
			sb.WriteRune(r + 0x10000)
			i += 6
			continue
		}
		if r, size := utf8.DecodeRune(b[i:]); r != utf8.RuneError || size > 1 {
			sb.WriteRune(r)
			i += size
			continue
		}
		if i+3 <= len(b) && b[i] == 0xED && b[i+1] >= 0xA0 && b[i+1] <= 0xBF && isCont(b[i+2]) {
			i += 3 // one lone surrogate
		} else {
			i += validPrefixLen(b[i:])
		}
		sb.WriteRune(utf8.RuneError)
	}
	return sb.String()
}
