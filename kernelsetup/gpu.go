package kernelsetup

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gomlx/go-xla/installer"
)

// GPUs lists the NVIDIA GPUs (`nvidia-smi -L` names, e.g. "NVIDIA A100-SXM4-40GB"); with device files
// but no working nvidia-smi it returns one entry "NVIDIA GPU (nvidia-smi not found)". Empty: no GPU.
func (e Env) GPUs() []string {
	if smi := e.LookPath("nvidia-smi"); smi != "" {
		if out, err := e.output(20*time.Second, smi, "-L"); err == nil {
			var gpus []string
			for _, line := range strings.Split(out, "\n") {
				// "GPU 0: Tesla T4 (UUID: GPU-…)"
				if _, rest, ok := strings.Cut(line, ": "); ok && strings.HasPrefix(line, "GPU ") {
					name, _, _ := strings.Cut(rest, " (UUID")
					gpus = append(gpus, strings.TrimSpace(name))
				}
			}
			if len(gpus) > 0 {
				return gpus
			}
		}
	}
	dev := e.DevDir
	if dev == "" {
		dev = "/dev"
	}
	if _, err := os.Stat(filepath.Join(dev, "nvidia0")); err == nil {
		return []string{"NVIDIA GPU (nvidia-smi not found)"}
	}
	return nil
}

// PluginDirs lists the folders go-xla searches for PJRT plugins (go-xla v0.4.5
// pjrt/dynamiclib_base.go:73-81 and pjrt/dynamiclib_posix.go:63-80): only $PJRT_PLUGIN_LIBRARY_PATH
// when it is set, else ~/.local/lib/go-xla(/nvidia), ~/.local/lib/gomlx/pjrt and the same under
// /usr/local/lib (go-xla also searches the system's library folders, which LOBA's installs never use).
func (e Env) PluginDirs() []string {
	if p := e.Getenv("PJRT_PLUGIN_LIBRARY_PATH"); p != "" {
		return filepath.SplitList(p)
	}
	var dirs []string
	for _, base := range []string{filepath.Join(e.Home(), ".local", "lib"), "/usr/local/lib"} {
		dirs = append(dirs, filepath.Join(base, "go-xla"), filepath.Join(base, "go-xla", "nvidia"), filepath.Join(base, "gomlx", "pjrt"))
	}
	return dirs
}

// FindPlugin returns the path of the PJRT plugin called name ("cuda", "cpu") in PluginDirs, or "".
func (e Env) FindPlugin(name string) string {
	for _, d := range e.PluginDirs() {
		for _, f := range []string{"pjrt_c_api_" + name + "_plugin.so", "pjrt-plugin-" + name + ".so", "pjrt_plugin_" + name + ".so"} {
			if p := filepath.Join(d, f); fileExists(p) {
				return p
			}
		}
	}
	return ""
}

// CUDAInstallDir is where `loba setup cuda` installs the plugin: ~/.local/lib/go-xla (the plugin
// goes to its nvidia/ subfolder with the CUDA libraries).
func (e Env) CUDAInstallDir() string { return filepath.Join(e.Home(), ".local", "lib", "go-xla") }

// InstallCUDA downloads the pinned CUDA PJRT plugin (CUDAPlugin, CUDAPluginVersion) and its NVIDIA
// libraries from PyPI into CUDAInstallDir() (go-xla v0.4.5's installer.CudaInstall, installer/cuda.go:106;
// cached in ~/.cache/go-xla). The plugin lands in CUDAInstallDir()/nvidia/pjrt_c_api_cuda_plugin.so
// (installer/cuda.go:118-129), where go-xla looks for it (pjrt/dynamiclib_posix.go:70-71) and where its
// own auto-install finds it installed (installer/cuda.go:68-75), so that one never replaces LOBA's pin
// with its default, "cuda13" at "latest" (installer/cuda.go:91). The NVIDIA libraries are those the
// newest jax-<plugin>-plugin on PyPI depends on, whatever the version (installer/cuda.go:270-299).
func (e Env) InstallCUDA(verbose bool) error {
	v := installer.Quiet
	if verbose {
		v = installer.Normal
	}
	return installer.CudaInstall(CUDAPlugin, CUDAPluginVersion, e.CUDAInstallDir(), true, v)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
