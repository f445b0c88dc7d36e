package hub

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDownloadProgress: downloads draw a bar on Options.Progress (the repository, the percentage,
// bytes done of the total, the rate), and without Logf the notes (retries) go there too, on
// their own lines.
func TestDownloadProgress(t *testing.T) {
	h, _, _, sum := setupBig(t)
	h.Mu.Lock()
	h.DropAt[sum] = 1_000_000
	h.Mu.Unlock()
	var out syncBuffer
	_, err := Resolve(context.Background(), repoBig, Options{Progress: &out, sleep: noSleep})
	require.NoError(t, err)
	text := out.String()
	t.Logf("%q", text)
	require.Contains(t, text, "hub: downloading "+repoBig+"@2222222222 "+fileBig+" (3.1 MB)\n")
	require.Regexp(t, `[\r\n]hub: .*retrying in .* \(attempt 2/5\): interrupted at byte 1000000`, text)
	last := text[strings.LastIndex(text, "\r")+1:]
	require.Contains(t, last, repoBig)
	require.Contains(t, last, "100%")
	require.Contains(t, last, "3.1/3.1 MB")
	require.Regexp(t, `[0-9.]+ [kMG]?B/s`, last)
	require.True(t, strings.HasSuffix(text, "\n"), "the bar ends its line")
}
