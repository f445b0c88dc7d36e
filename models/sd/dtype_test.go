package sd

import (
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
)

// fakeXLA is a backend that answers Name and PluginName as go-xla's does (nothing else is called).
type fakeXLA struct {
	compute.Backend
	plugin string
}

func (f fakeXLA) Name() string       { return "xla" }
func (f fakeXLA) PluginName() string { return f.plugin }

// TestResolveDType: auto is float32 on the Go backend and XLA's CPU plugin, bfloat16 on a GPU;
// float32 and bfloat16 are as named everywhere; float16 is a GPU option, a clear error on the CPU.
func TestResolveDType(t *testing.T) {
	goBackend := testutil.Backend(t)
	cuda, rocm := fakeXLA{plugin: "cuda"}, fakeXLA{plugin: "/opt/pjrt/pjrt_c_api_rocm_plugin.so"}
	cpu, cpuPath := fakeXLA{plugin: "cpu_v0.83.1"}, fakeXLA{plugin: "/opt/pjrt/pjrt_c_api_cpu_plugin.so"}
	for _, tc := range []struct {
		setting string
		b       compute.Backend
		want    dtypes.DType
	}{
		{"auto", goBackend, dtypes.Float32}, {"", goBackend, dtypes.Float32}, {"auto", cpu, dtypes.Float32},
		{"auto", cpuPath, dtypes.Float32}, {"auto", nil, dtypes.Float32},
		{"auto", cuda, dtypes.BFloat16}, {"auto", rocm, dtypes.BFloat16},
		{"float32", goBackend, dtypes.Float32}, {"float32", cuda, dtypes.Float32},
		{"bfloat16", goBackend, dtypes.BFloat16}, {"bfloat16", cuda, dtypes.BFloat16},
		{"float16", cuda, dtypes.Float16},
	} {
		got, err := ResolveDType(tc.setting, tc.b)
		require.NoError(t, err, "%q on %v", tc.setting, tc.b)
		require.Equal(t, tc.want, got, "%q on %v", tc.setting, tc.b)
	}
	require.False(t, Accelerator(goBackend))
	require.True(t, Accelerator(cuda))

	for _, b := range []compute.Backend{goBackend, cpu} {
		_, err := ResolveDType("float16", b)
		require.Error(t, err)
		for _, want := range []string{"float16", "bfloat16", "float32", "CPU"} {
			require.ErrorContains(t, err, want)
		}
	}
	_, err := ResolveDType("float16", goBackend)
	require.ErrorContains(t, err, "go backend")
	_, err = ResolveDType("fp8", cuda)
	require.ErrorContains(t, err, `"fp8"`)
}
