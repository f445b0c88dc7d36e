package slider

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSchemaDocumentParses: the schema in SCHEMA.md (which the README links to rather than repeats) is a
// valid preset: every key it documents is one the parser knows, and every value it shows is accepted.
func TestSchemaDocumentParses(t *testing.T) {
	data, err := os.ReadFile("SCHEMA.md")
	require.NoError(t, err)
	doc := string(data)
	start := strings.Index(doc, "```yaml\n")
	require.GreaterOrEqual(t, start, 0, "SCHEMA.md has a ```yaml block")
	body := doc[start+len("```yaml\n"):]
	end := strings.Index(body, "```")
	require.Greater(t, end, 0)
	p, err := ParsePreset([]byte(body[:end]), "SCHEMA.md")
	require.NoError(t, err)
	require.Equal(t, "area", p.Eval.Target, "the eval section is documented")
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	require.Contains(t, string(readme), "(lobanb/slider/SCHEMA.md#the-schema-with-every-default)", "the README links to SCHEMA.md's schema")
	require.NotContains(t, string(readme), body[:end], "the README links to SCHEMA.md's schema instead of repeating it")
}
