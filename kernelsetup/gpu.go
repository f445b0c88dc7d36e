package kernelsetup

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gomlx/go-xla/installer"

	"github.com/loba-dev/loba/models/backend"
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

// probe is the environment as models/backend's plugin discovery sees it.
func (e Env) probe() backend.Probe {
	p := backend.Probe{DevDir: e.DevDir, SysRoot: e.SysRoot}
	if e.Vars != nil {
		p.Env = map[string]string{}
		for _, kv := range e.Vars {
			if k, v, ok := strings.Cut(kv, "="); ok {
				p.Env[k] = v
			}
		}
	}
	return p
}

// PluginDirs lists the folders go-xla searches for PJRT plugins (backend.PluginDirs): only
// $PJRT_PLUGIN_LIBRARY_PATH when it is set, else ~/.local/lib/go-xla(/nvidia),
// ~/.local/lib/gomlx/pjrt and the same under /usr/local/lib.
func (e Env) PluginDirs() []string { return backend.PluginDirs(e.probe()) }

// FindPlugin returns the path of the PJRT plugin called name ("cuda", "cpu") in PluginDirs, or "":
// what `loba setup cuda` installed (it installs when this is ""). The CUDA plugin LOBA's commands
// load may also be jax's: backend.FindCUDAPlugin, which the doctor checks.
func (e Env) FindPlugin(name string) string { return backend.FindPluginIn(e.PluginDirs(), name) }

// pythonSitesCode prints Python's own list of package folders, one a line (install.sh runs the same).
const pythonSitesCode = `import site,sys; print("\n".join([*getattr(site,"getsitepackages",list)(), site.getusersitepackages(), *sys.path]))`

// PythonJaxPlugins lists jax's CUDA plugins in the package folders the python3 on PATH reports
// (none without python3): those in folders backend.SitePackagesDirs does not glob are what
// install.sh records for loba (backend.RecordFile).
func (e Env) PythonJaxPlugins() []backend.Plugin {
	py := e.LookPath("python3")
	if py == "" {
		return nil
	}
	out, err := e.output(20*time.Second, py, "-c", pythonSitesCode)
	if err != nil {
		return nil
	}
	var dirs []string
	for _, d := range strings.Split(out, "\n") {
		if d = strings.TrimSpace(d); filepath.IsAbs(d) {
			dirs = append(dirs, d)
		}
	}
	return backend.JaxCUDAPlugins(dirs)
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
