package rundir

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/lobanb/slider"
)

// TestLoadModelFloat16OnCPU: LoadModel resolves train.dtype as training does, so float16 on the Go
// backend fails before the model is looked for, naming the setting and the alternatives.
func TestLoadModelFloat16OnCPU(t *testing.T) {
	testutil.Backend(t) // GOMLX_BACKEND=go
	p := slider.Defaults()
	p.Model.NameOrPath = filepath.Join(t.TempDir(), "no-such-model")
	p.Train.DType = "float16"
	_, err := Dir(t.TempDir()).LoadModel(p, "", nil, nil)
	require.Error(t, err)
	for _, want := range []string{"train.dtype", "float16", "bfloat16", "float32"} {
		require.ErrorContains(t, err, want)
	}
	require.NotContains(t, err.Error(), "no-such-model")
}
