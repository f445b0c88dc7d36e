package sd

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
)

// dtypeSettings are the values of a dtype setting (a preset's train.dtype) ResolveDType takes.
var dtypeSettings = []string{"auto", "float32", "bfloat16", "float16"}

// ResolveDType is the dtype of the frozen weights and activations (PipelineOptions.DType) for a
// dtype setting on backend b:
//   - "auto" (or ""): bfloat16 on a GPU (Accelerator), float32 elsewhere (the Go backend, XLA's
//     CPU plugin), so CPU runs keep their float32 results;
//   - "float32", "bfloat16": as named;
//   - "float16": for GPUs without bfloat16 (e.g. a T4); an error elsewhere, which names the
//     setting and the backend and suggests bfloat16 or float32.
//
// The trainable adapter, its optimizer state and the loss stay float32 whatever this gives.
func ResolveDType(setting string, b compute.Backend) (dtypes.DType, error) {
	switch setting {
	case "", "auto":
		if Accelerator(b) {
			return dtypes.BFloat16, nil
		}
		return dtypes.Float32, nil
	case "float32":
		return dtypes.Float32, nil
	case "bfloat16":
		return dtypes.BFloat16, nil
	case "float16":
		if !Accelerator(b) {
			return dtypes.InvalidDType, fmt.Errorf("dtype float16 is for GPUs without bfloat16 (e.g. a T4), but the %s backend "+
				"computes on the CPU: use bfloat16 (half the memory of float32) or float32", backendName(b))
		}
		return dtypes.Float16, nil
	}
	return dtypes.InvalidDType, fmt.Errorf("unknown dtype %q (valid: %s)", setting, strings.Join(dtypeSettings, ", "))
}

// Accelerator tells whether b computes on a GPU (or another accelerator): an XLA backend whose PJRT
// plugin is not the CPU one ("cuda", "rocm", a plugin path without "cpu" in its file name). The Go
// backend, XLA's CPU plugin, unknown backends and nil are not.
func Accelerator(b compute.Backend) bool {
	if b == nil || b.Name() != "xla" {
		return false
	}
	p, ok := b.(interface{ PluginName() string }) // go-xla's *xla.Backend
	if !ok {
		return false
	}
	name := strings.ToLower(filepath.Base(p.PluginName()))
	return name != "" && name != "." && !strings.Contains(name, "cpu")
}

// backendName is b's short name for messages ("go", "xla:cpu").
func backendName(b compute.Backend) string {
	if b == nil {
		return "(none)"
	}
	if p, ok := b.(interface{ PluginName() string }); ok {
		return b.Name() + ":" + filepath.Base(p.PluginName())
	}
	return b.String()
}
