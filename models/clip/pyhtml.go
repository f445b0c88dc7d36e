package clip

// Ports Python's html.unescape (CPython Lib/html/__init__.py) and ftfy's unescape_html
// (ftfy/fixes.py). Go's html.UnescapeString differs from Python's html.unescape on numeric
// references (Python drops "invalid code points" such as &#1; and maps &#13; to "\r", reads up to
// 32 non-separator characters as an entity name, …); Go's WHATWG table (the same 2231 names as
// Python's html.entities.html5) is used only as the entity dictionary, through html5Entity.

import (
	"html"
	"regexp"
	"strconv"
	"strings"
)

// html5Entity looks name up in the HTML5 named character references, exactly as
// `name in html.entities.html5` / `html5[name]` in Python. name is the part after "&", with or
// without the trailing ";" (only a few legacy names exist without it).
func html5Entity(name string) (string, bool) {
	if v, ok := html5Missing[name]; ok {
		return v, true
	}
	body := strings.TrimSuffix(name, ";")
	if body == "" || !isASCIIAlnum(body) {
		return "", false
	}
	ref := "&" + name
	r := html.UnescapeString(ref)
	if r == ref {
		return "", false
	}
	// html.UnescapeString falls back to the longest legacy name that prefixes name (e.g. "&ampx;"
	// → "&x;"); such results end with the rest of name, which is what tells them apart.
	if len(body) != len(name) { // with ";"
		if r == ";" || !strings.HasSuffix(r, ";") {
			return r, true
		}
		return "", false
	}
	if isASCIIAlnum(r[len(r)-1:]) {
		return "", false
	}
	return r, true
}

// html5Missing are the HTML5 names that Go's table leaves out (their values are longer than the
// names, which its in-place unescaping cannot handle).
var html5Missing = map[string]string{"nLt;": "\u226A\u20D2", "nGt;": "\u226B\u20D2"}

func isASCIIAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// pyCharrefRE is html._charref.
var pyCharrefRE = regexp.MustCompile(`&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)`)

// pyInvalidCharrefs is html._invalid_charrefs: numeric references remapped as browsers do.
var pyInvalidCharrefs = map[int64]string{
	0x00: "\ufffd", 0x0d: "\r", 0x80: "\u20ac", 0x81: "\u0081", 0x82: "\u201a", 0x83: "\u0192",
	0x84: "\u201e", 0x85: "\u2026", 0x86: "\u2020", 0x87: "\u2021", 0x88: "\u02c6", 0x89: "\u2030",
	0x8a: "\u0160", 0x8b: "\u2039", 0x8c: "\u0152", 0x8d: "\u008d", 0x8e: "\u017d", 0x8f: "\u008f",
	0x90: "\u0090", 0x91: "\u2018", 0x92: "\u2019", 0x93: "\u201c", 0x94: "\u201d", 0x95: "\u2022",
	0x96: "\u2013", 0x97: "\u2014", 0x98: "\u02dc", 0x99: "\u2122", 0x9a: "\u0161", 0x9b: "\u203a",
	0x9c: "\u0153", 0x9d: "\u009d", 0x9e: "\u017e", 0x9f: "\u0178",
}

// pyInvalidCodepoint is html._invalid_codepoints: numeric references that decode to nothing.
func pyInvalidCodepoint(n int64) bool {
	return n >= 0x1 && n <= 0x8 || n == 0xb || n >= 0xe && n <= 0x1f || n >= 0x7f && n <= 0x9f ||
		n >= 0xfdd0 && n <= 0xfdef || n&0xfffe == 0xfffe && n <= 0x10ffff
}

// pyHTMLUnescape is Python's html.unescape.
func pyHTMLUnescape(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	return pyCharrefRE.ReplaceAllStringFunc(s, func(m string) string { return pyReplaceCharref(m[1:]) })
}

// pyReplaceCharref is html._replace_charref; s is the reference without its "&".
func pyReplaceCharref(s string) string {
	if s[0] == '#' {
		digits, base := s[1:], 10
		if digits[0] == 'x' || digits[0] == 'X' {
			digits, base = digits[1:], 16
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(digits, ";"), base, 64)
		if err != nil { // out of range: any value > 0x10FFFF gives U+FFFD
			n = 0x110000
		}
		if r, ok := pyInvalidCharrefs[n]; ok {
			return r
		}
		if n >= 0xD800 && n <= 0xDFFF || n > 0x10FFFF {
			return "\ufffd"
		}
		if pyInvalidCodepoint(n) {
			return ""
		}
		return string(rune(n))
	}
	if v, ok := html5Entity(s); ok {
		return v
	}
	// The longest prefix (of at least 2 characters) that is a name, as the standard defines.
	rs := []rune(s)
	for x := len(rs) - 1; x > 1; x-- {
		if v, ok := html5Entity(string(rs[:x])); ok {
			return v + string(rs[x:])
		}
	}
	return "&" + s
}

// ftfyEntityRE is ftfy's HTML_ENTITY_RE.
var ftfyEntityRE = regexp.MustCompile(`&#?[0-9A-Za-z]{1,24};`)

// ftfyUnescapeHTML ports ftfy.fixes.unescape_html: it decodes only references ending in ";" —
// the HTML5 names, the upper-cased forms of lower-case names when those are not names themselves
// (&EACUTE; → "É") and numeric references — and leaves everything else as is.
func ftfyUnescapeHTML(s string) string {
	return ftfyEntityRE.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := ftfyEntity(m); ok {
			return v
		}
		if strings.HasPrefix(m, "&#") {
			if u := pyHTMLUnescape(m); !strings.Contains(u, ";") {
				return u
			}
		}
		return m
	})
}

// ftfyEntity is the lookup in ftfy's chardata.HTML_ENTITIES; m is "&name;".
func ftfyEntity(m string) (string, bool) {
	name := m[1:]
	if strings.HasPrefix(name, "#") {
		return "", false
	}
	if v, ok := html5Entity(name); ok {
		return v, true
	}
	lower := strings.ToLower(name)
	if lower == name || strings.ToUpper(lower) != name {
		return "", false
	}
	v, ok := html5Entity(lower)
	if !ok || pyHTMLUnescape(m) != m {
		return "", false
	}
	return pyUpper(v), true
}
