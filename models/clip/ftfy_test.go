package clip

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFixTextFtfyCases runs ftfy's own regression cases (testdata/ftfy, copied from ftfy 6.3.1)
// as its tests/test_examples_in_json.py does: fix_text, fix_encoding, and fix_text after an
// extra layer of UTF-8-read-as-Latin-1 mojibake.
func TestFixTextFtfyCases(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "ftfy", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		var cases []struct {
			Label         string  `json:"label"`
			Original      string  `json:"original"`
			Fixed         string  `json:"fixed"`
			FixedEncoding *string `json:"fixed-encoding"`
			Expect        string  `json:"expect"`
		}
		require.NoError(t, json.Unmarshal(raw, &cases))
		for _, c := range cases {
			require.Contains(t, []string{"pass", "fail"}, c.Expect)
			if c.Expect != "pass" { // ftfy's known failures: its heuristic does not fix them either
				continue
			}
			t.Run(filepath.Base(file)+"/"+c.Label, func(t *testing.T) {
				require.Equal(t, c.Fixed, FixText(c.Original), "fix_text")
				wantEnc := c.Fixed
				if c.FixedEncoding != nil {
					wantEnc = *c.FixedEncoding
				}
				require.Equal(t, wantEnc, fixEncoding(c.Original), "fix_encoding")
				extraBad := latin1.decode([]byte(c.Original))
				require.Equal(t, c.Fixed, FixText(extraBad), "fix_text of the extra-bad text")
			})
		}
	}
}

// TestUnescapeHTML ports the assertions of ftfy's tests/test_entities.py that use the default
// configuration, plus Python html.unescape behaviours Go's html.UnescapeString does not share.
func TestUnescapeHTML(t *testing.T) {
	require.Equal(t, "&\n<html>\n&amp;", FixText("&amp;\n<html>\n&amp;"))
	require.Equal(t, "<>", FixText("&lt;&gt;"))
	require.Equal(t, "jednocześnie", FixText("jednocze&sacute;nie"))
	require.Equal(t, "JEDNOCZEŚNIE", FixText("JEDNOCZE&Sacute;NIE"))
	require.Equal(t, "broken\u0081", FixText("broken&#x81;"))
	require.Equal(t, "&", FixText("&amp;amp;amp;"))
	require.Equal(t, "this is just informal english &not html", FixText("this is just informal english &not html"))
	for in, want := range map[string]string{
		"euro &#x80;":                         "euro €",
		"EURO &EURO;":                         "EURO €",
		"not an entity &#20x6;":               "not an entity &#20x6;",
		"JEDNOCZE&SACUTE;NIE":                 "JEDNOCZEŚNIE",
		"V&SCARON;ICHNI":                      "VŠICHNI",
		"&#xffff;":                            "",
		"&#xffffffff;":                        "\ufffd",
		"BUNDESSTRA&SZLIG;E":                  "BUNDESSTRASSE",
		"&ntilde; &Ntilde; &NTILDE; &nTILDE;": "ñ Ñ Ñ &nTILDE;",
		"&Jscr;ohn &HilbertSpace;ancock":      "𝒥ohn ℋancock",
		"&nGt; &nLt;":                         "≫⃒ ≪⃒",
	} {
		require.Equal(t, want, ftfyUnescapeHTML(in), "unescape_html(%q)", in)
	}
	// Python's html.unescape: entities without ";", invalid code points dropped, &#13; → "\r".
	for in, want := range map[string]string{
		"&amp &notin &notin; &ampx; &#65 &#x41;": "& ¬in ∉ &x; A A",
		"a&#1;b&#13;c&#0;d&#xD800;e&#1114112;f":  "ab\rc\ufffdd\ufffde\ufffdf",
		"&#128;&#x9d;&lt":                        "€\u009d<",
		"&unknown; & &#; &#x;":                   "&unknown; & &#; &#x;",
	} {
		require.Equal(t, want, pyHTMLUnescape(in), "html.unescape(%q)", in)
	}
}

// TestPythonStrings checks the Python string semantics CleanText depends on.
func TestPythonStrings(t *testing.T) {
	require.Equal(t, "ὀδυσσεύς", pyLower("ὈΔΥΣΣΕΎΣ"))
	require.Equal(t, "σ aς a.ς", pyLower("Σ AΣ A.Σ"))
	require.Equal(t, "i\u0307stanbul", pyLower("İstanbul"))
	require.Equal(t, "x", pyStrip("\x1c\u3000x\u2029\u0085"))
	require.Equal(t, "a\ufffdb\ufffd", pyDecodeUTF8Replace([]byte("a\xe2\x82b\xf0\x9f")))
	require.Equal(t, "a\ufffd\ufffdb", pyDecodeUTF8Replace([]byte("a\xc0\x80b")))
	// \x1c is Python whitespace (str.strip) but not regex-module \s; ftfy removes it anyway.
	require.Equal(t, "a b", CleanText(" A\x1c\u00a0\u2003B "))
}
