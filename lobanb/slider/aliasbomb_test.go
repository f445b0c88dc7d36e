package slider

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// billionLaughs returns the classic alias bomb: nine levels, each a list of nine aliases to the level
// below, 9^9 (387 million) scalars once expanded, in under 1 KB.
func billionLaughs() string {
	var b strings.Builder
	b.WriteString("objective: slider\n")
	b.WriteString(`l0: &l0 ["x","x","x","x","x","x","x","x","x"]` + "\n")
	for i := 1; i <= 8; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d,", i-1), 9), ",")
		fmt.Fprintf(&b, "l%d: &l%d [%s]\n", i, i, refs)
	}
	return b.String()
}

// wideBomb returns a preset that the strict decoder would really expand: k targets (aliases of the
// first), each with k neutrals (aliases of one string), k² values from about 6k bytes. At k = 3000
// (18 KB) it loaded, before the alias budget, in 10 s and 1.2 GB.
func wideBomb(k int) string {
	return "objective: slider\ntargets: [&t {target_class: &s a, positive: b, negative: c, neutrals: [" +
		strings.TrimSuffix(strings.Repeat("*s,", k), ",") + "]},\n  " +
		strings.TrimSuffix(strings.Repeat("*t,", k), ",") + "]\n"
}

// requireCheapRejection loads text from a file and requires an alias-budget error naming the file and
// wantLine, reached in under 2 s and 100 MB of allocations.
func requireCheapRejection(t *testing.T, text string, wantLine int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bomb.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, _, err := Load(path)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d bytes rejected in %v, %d KB allocated: %v", len(text), elapsed, alloc>>10, err)
	require.Error(t, err)
	require.Contains(t, err.Error(), "alias")
	require.Contains(t, err.Error(), fmt.Sprintf("%s:%d:", path, wantLine))
	require.Contains(t, err.Error(), fmt.Sprintf("more than %d nodes", aliasBudget))
	require.Less(t, elapsed, 2*time.Second)
	require.Less(t, alloc, uint64(100<<20))

	_, err = ParsePreset([]byte(text), "inline.yaml")
	require.ErrorContains(t, err, fmt.Sprintf("inline.yaml:%d: YAML aliases expand", wantLine))
}

func TestAliasBombBillionLaughs(t *testing.T) {
	// l0..l4 add 90+819+7380+66429 = 74718 nodes; the first alias of l5 (line 7) adds 66430 more.
	requireCheapRejection(t, billionLaughs(), 7)
}

func TestAliasBombWide(t *testing.T) {
	// Each *t adds 1+8+3000 = 3009 nodes (the 3000 *s inside already count 3000 on line 2): the
	// 33rd *t (line 3) passes 100,000.
	requireCheapRejection(t, wideBomb(3000), 3)
}

// TestAliasBudgetIgnoresPlainDocuments: a large document without aliases is not limited.
func TestAliasBudgetIgnoresPlainDocuments(t *testing.T) {
	text := "[" + strings.TrimSuffix(strings.Repeat("x,", 2*aliasBudget), ",") + "]"
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(text), &root))
	require.NoError(t, checkAliasBudget(&root, "big.yaml"))
}

// aliasedToySize is notebooks/presets/toy-size.yaml written with anchors and aliases.
const aliasedToySize = `objective: slider
max_denoising_steps: 5
targets:
  - target_class: &shape a shape
    positive: a large shape
    negative: a small shape
    neutrals: [*shape]
network: {targets: lierla, rank: &rank 4, alpha: *rank}
train: {steps: 100, lr: 1.0e-3, resolution: 32, seed: 1, checkpoint_every: 25}
eval:
  kind: slider
  target: area
  prompts: &evalPrompts
    - a red circle on a white background
    - a blue square on a black background
    - a green triangle on a white background
    - a yellow circle on a black background
  seeds: [0, 1, 2]
  strengths: [-2, -1, 0, 1, 2]
`

// TestAliasesInRealPresetStillLoad: a preset using a few anchors and aliases loads and normalizes to
// the same preset as its spelled-out original.
func TestAliasesInRealPresetStillLoad(t *testing.T) {
	orig, _, err := Load(filepath.Join("..", "..", "notebooks", "presets", "toy-size.yaml"))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "aliased.yaml")
	require.NoError(t, os.WriteFile(path, []byte(aliasedToySize), 0o644))
	got, _, err := Load(path)
	require.NoError(t, err)
	want, err := orig.Marshal()
	require.NoError(t, err)
	have, err := got.Marshal()
	require.NoError(t, err)
	require.Equal(t, string(want), string(have))
}

// TestMergeKeyStillReported: a merge key (<<: *base) is within the alias budget and still gets the
// decoder's own "merge keys are not supported" error, not the alias one.
func TestMergeKeyStillReported(t *testing.T) {
	text := "objective: slider\nbase: &base {rank: 4, alpha: 4}\nnetwork:\n  <<: *base\n  targets: lierla\n"
	_, err := ParsePreset([]byte(text), "merge.yaml")
	require.ErrorContains(t, err, "merge keys (<<) are not supported")
	require.NotContains(t, err.Error(), "YAML aliases expand")
}
