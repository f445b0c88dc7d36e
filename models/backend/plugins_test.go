package backend

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// touch creates an empty file (a dummy plugin .so) and its folders.
func touch(t *testing.T, path string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	return path
}

// fakeMachine is a Probe over a temporary folder: its own HOME, /dev and system folders, an empty
// PATH (no python3, no nvidia-smi) and no GPU until dev/nvidia0 is created.
func fakeMachine(t *testing.T) (Probe, string) {
	t.Helper()
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "dev"), 0o755))
	return Probe{Env: map[string]string{"HOME": filepath.Join(root, "home"), "PATH": ""}, DevDir: filepath.Join(root, "dev"), SysRoot: root}, root
}

// jaxPlugin creates jax's plugin for CUDA major cuda in the Python folder site, with the wheel's
// .dist-info when version is not "".
func jaxPlugin(t *testing.T, site, cuda, version string) string {
	t.Helper()
	if version != "" {
		require.NoError(t, os.MkdirAll(filepath.Join(site, "jax_cuda"+cuda+"_pjrt-"+version+".dist-info"), 0o755))
	}
	return touch(t, filepath.Join(site, "jax_plugins", "xla_cuda"+cuda, "xla_cuda_plugin.so"))
}

func paths(pls []Plugin) []string {
	var out []string
	for _, pl := range pls {
		out = append(out, pl.Path)
	}
	return out
}

// TestFindJaxPlugin: jax's plugin in the system's dist-packages (Colab's layout) is found, with its
// wheel and version, its site-packages and CUDA major version.
func TestFindJaxPlugin(t *testing.T) {
	p, root := fakeMachine(t)
	_, ok := FindCUDAPlugin(p)
	require.False(t, ok, "an empty machine has no plugin")
	site := filepath.Join(root, "usr", "local", "lib", "python3.12", "dist-packages")
	path := jaxPlugin(t, site, "12", "0.7.2")
	pl, ok := FindCUDAPlugin(p)
	require.True(t, ok)
	require.Equal(t, Plugin{Path: path, Source: "jax-cuda12-pjrt 0.7.2 in " + site, SitePackages: site, CUDA: "12"}, pl)
	require.Contains(t, SitePackagesDirs(p), site)
}

// TestCUDAPluginsOrder: PJRT_PLUGIN_LIBRARY_PATH, then go-xla's folder (`loba setup cuda`), then the
// plugin install.sh recorded, then jax's by Python folder: venv, user, system; CUDA 12 before 13.
func TestCUDAPluginsOrder(t *testing.T) {
	p, root := fakeMachine(t)
	home := p.Env["HOME"]
	system := jaxPlugin(t, filepath.Join(root, "usr", "lib", "python3", "dist-packages"), "12", "")
	user12 := jaxPlugin(t, filepath.Join(home, ".local", "lib", "python3.11", "site-packages"), "12", "")
	user13 := jaxPlugin(t, filepath.Join(home, ".local", "lib", "python3.11", "site-packages"), "13", "0.8.0")
	p.Env["VIRTUAL_ENV"] = filepath.Join(root, "venv")
	venv := jaxPlugin(t, filepath.Join(root, "venv", "lib", "python3.13", "site-packages"), "13", "")
	require.Equal(t, []string{venv, user12, user13, system}, paths(CUDAPlugins(p)))

	odd := jaxPlugin(t, filepath.Join(root, "odd", "lib", "python3.10", "site-packages"), "12", "")
	touch(t, RecordFile(p))
	require.NoError(t, os.WriteFile(RecordFile(p), []byte(odd+"\n"), 0o644))
	goxla := touch(t, filepath.Join(home, ".local", "lib", "go-xla", "nvidia", "pjrt_c_api_cuda_plugin.so"))
	userDir := filepath.Join(root, "mine")
	mine := touch(t, filepath.Join(userDir, "pjrt_c_api_cuda_plugin.so"))
	file := jaxPlugin(t, filepath.Join(root, "pinned", "site-packages"), "12", "")
	p.Env["PJRT_PLUGIN_LIBRARY_PATH"] = userDir + ":" + file
	all := CUDAPlugins(p)
	require.Equal(t, []string{mine, file, goxla, odd, venv, user12, user13, system}, paths(all))
	require.Equal(t, "from PJRT_PLUGIN_LIBRARY_PATH", all[0].Source)
	require.Contains(t, all[1].Source, "jax-cuda12-pjrt in ")
	require.Contains(t, all[2].Source, "`loba setup cuda`")
	require.Contains(t, all[3].Source, "recorded by install.sh")
	require.Equal(t, "13", all[4].CUDA)

	// A recorded plugin that is gone is skipped.
	require.NoError(t, os.Remove(odd))
	require.NotContains(t, paths(CUDAPlugins(p)), odd)
}

// TestRecordFile: install.sh's record lives in LOBA's data folder (XDG_DATA_HOME honoured).
func TestRecordFile(t *testing.T) {
	p := Probe{Env: map[string]string{"HOME": "/h"}}
	require.Equal(t, "/h/.local/share/loba/cuda-plugin", RecordFile(p))
	p.Env["XDG_DATA_HOME"] = "/x"
	require.Equal(t, "/x/loba/cuda-plugin", RecordFile(p))
	require.Empty(t, RecordFile(Probe{Env: map[string]string{}}))
}

// TestCUDADataDir: XLA's CUDA folder is jax's nvidia/cuda_nvcc (CUDA 12) or nvidia/cu13 (CUDA 13).
func TestCUDADataDir(t *testing.T) {
	site := t.TempDir()
	pl := Plugin{SitePackages: site, CUDA: "12"}
	require.Empty(t, pl.CUDADataDir())
	touch(t, filepath.Join(site, "nvidia", "cuda_nvcc", "bin", "ptxas"))
	require.Equal(t, filepath.Join(site, "nvidia", "cuda_nvcc"), pl.CUDADataDir())
	require.NoError(t, os.MkdirAll(filepath.Join(site, "nvidia", "cu13", "nvvm", "libdevice"), 0o755))
	pl.CUDA = "13"
	require.Equal(t, filepath.Join(site, "nvidia", "cu13"), pl.CUDADataDir())
	require.Empty(t, Plugin{}.CUDADataDir())
}
