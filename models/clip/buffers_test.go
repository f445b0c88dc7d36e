package clip

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSavedBuffers(t *testing.T) {
	for _, tc := range []struct {
		version string
		saved   bool
	}{{"4.22.0.dev0", true}, {"4.30.2", true}, {"4.31.0", false}, {"4.32.0.dev0", false}, {"5.0.0", false}, {"3.9", true}, {"", false}, {"junk", false}} {
		c := DefaultConfig()
		c.TransformersVersion = tc.version
		c.MaxPositionEmbeddings = 33
		got := c.SavedBuffers()
		if !tc.saved {
			require.Empty(t, got, tc.version)
			continue
		}
		require.Equal(t, []int{1, 33}, got[PositionIDsKey].Dimensions, tc.version)
	}
}
