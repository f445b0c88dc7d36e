package backend

import (
	"fmt"
	"path/filepath"

	"github.com/gomlx/compute"
	"github.com/gomlx/go-xla/compute/xla"
	"github.com/gomlx/go-xla/pjrt"
)

// Describe is a short account of b: "xla:cuda (plugin /…/xla_cuda_plugin.so, PJRT API v0.N,
// 1 device)", "go (pure Go, AVX-512)", "go (pure Go, no SIMD: built without GOEXPERIMENT=simd)".
func Describe(b compute.Backend) string {
	if b == nil {
		return "none"
	}
	if xb, ok := b.(*xla.Backend); ok {
		return describeXLA(xb)
	}
	if b.String() == "go" {
		return "go (pure Go, " + simdKernels() + ")"
	}
	return b.String()
}

// describeXLA names the plugin's platform (cuda, cpu, else the plugin's name), its file, the PJRT
// C API version it reports and the number of devices.
func describeXLA(b *xla.Backend) string {
	kind, name := filepath.Base(b.PluginName()), b.PluginName()
	switch {
	case b.IsFinalized():
		return "xla (finalized)"
	case b.IsCUDA():
		kind = "cuda"
	case b.IsCPU():
		kind = "cpu"
	}
	devices := fmt.Sprintf("%d devices", b.NumDevices())
	if b.NumDevices() == 1 {
		devices = "1 device"
	}
	pl, err := pjrt.GetPlugin(name) // loaded already: go-xla caches plugins by name
	if err != nil {
		return fmt.Sprintf("xla:%s (plugin %s, %s)", kind, name, devices)
	}
	major, minor := pl.Version()
	return fmt.Sprintf("xla:%s (plugin %s, PJRT API v%d.%d, %s)", kind, pl.Path(), major, minor, devices)
}
