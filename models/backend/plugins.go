package backend

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Plugin is a CUDA PJRT plugin found on this machine.
type Plugin struct {
	// Path is the plugin's .so file.
	Path string
	// Source says where it comes from, in a few words: "from PJRT_PLUGIN_LIBRARY_PATH",
	// "go-xla's plugin folder, …", "jax-cuda12-pjrt 0.7.2 in /usr/…/dist-packages", …
	Source string
	// SitePackages is the Python folder of jax's plugin (its NVIDIA libraries are in nvidia/
	// there); "" for go-xla's layout.
	SitePackages string
	// CUDA is the CUDA major version of jax's plugin ("12", "13"; "" unknown).
	CUDA string
}

// CUDADataDir is the CUDA folder (bin/ptxas, nvvm/libdevice) of jax's NVIDIA wheels beside the
// plugin: nvidia/cuda_nvcc (CUDA 12) or nvidia/cu13 (CUDA 13); "" when there is none.
func (pl Plugin) CUDADataDir() string {
	if pl.SitePackages == "" {
		return ""
	}
	cands := []string{"cuda_nvcc", "cu13"}
	if pl.CUDA == "13" {
		cands = []string{"cu13", "cuda_nvcc"}
	}
	for _, c := range cands {
		dir := filepath.Join(pl.SitePackages, "nvidia", c)
		if isFile(filepath.Join(dir, "bin", "ptxas")) || isDir(filepath.Join(dir, "nvvm", "libdevice")) {
			return dir
		}
	}
	return ""
}

// PluginFileNames are the file names go-xla accepts for the plugin called name
// (go-xla v0.4.5 pjrt/dynamiclib_base.go:148-151).
func PluginFileNames(name string) []string {
	return []string{"pjrt_c_api_" + name + "_plugin.so", "pjrt-plugin-" + name + ".so", "pjrt_plugin_" + name + ".so"}
}

// jaxPluginFile is the file name of jax's CUDA plugin (jax_plugins/xla_cuda12/xla_cuda_plugin.so).
const jaxPluginFile = "xla_cuda_plugin.so"

// PluginDirs lists the folders go-xla searches for PJRT plugins (go-xla v0.4.5
// pjrt/dynamiclib_base.go:73-81 and pjrt/dynamiclib_posix.go:63-80): only $PJRT_PLUGIN_LIBRARY_PATH
// when it is set, else GoXLADirs (go-xla also searches the system's library folders, which LOBA's
// installs never use).
func PluginDirs(p Probe) []string {
	if v := p.Getenv("PJRT_PLUGIN_LIBRARY_PATH"); v != "" {
		return filepath.SplitList(v)
	}
	return GoXLADirs(p)
}

// GoXLADirs are go-xla's default plugin folders: ~/.local/lib/go-xla(/nvidia),
// ~/.local/lib/gomlx/pjrt and the same under /usr/local/lib. `loba setup cuda` installs into
// ~/.local/lib/go-xla/nvidia.
func GoXLADirs(p Probe) []string {
	var dirs []string
	bases := []string{p.sys("/usr/local/lib")}
	if h := p.home(); h != "" {
		bases = append([]string{filepath.Join(h, ".local", "lib")}, bases...)
	}
	for _, base := range bases {
		dirs = append(dirs, filepath.Join(base, "go-xla"), filepath.Join(base, "go-xla", "nvidia"), filepath.Join(base, "gomlx", "pjrt"))
	}
	return dirs
}

// FindPluginIn returns the first file in dirs named as go-xla names the plugin called name ("").
func FindPluginIn(dirs []string, name string) string {
	for _, d := range dirs {
		for _, f := range PluginFileNames(name) {
			if p := filepath.Join(d, f); isFile(p) {
				return p
			}
		}
	}
	return ""
}

// FindCUDAPlugin returns the CUDA PJRT plugin LOBA uses, the first of CUDAPlugins.
func FindCUDAPlugin(p Probe) (Plugin, bool) {
	all := CUDAPlugins(p)
	if len(all) == 0 {
		return Plugin{}, false
	}
	return all[0], true
}

// CUDAPlugins lists the CUDA PJRT plugins on this machine, in the order LOBA prefers them:
//  1. those PJRT_PLUGIN_LIBRARY_PATH names (a folder holding pjrt_c_api_cuda_plugin.so or jax's
//     xla_cuda_plugin.so, or the .so file itself);
//  2. go-xla's folders (GoXLADirs), where install.sh / `loba setup cuda` installs the pinned one;
//  3. the jax plugin install.sh recorded in RecordFile (found with Python's own site-packages list);
//  4. jax's (jax_plugins/xla_cuda12 before xla_cuda13) in the Python folders SitePackagesDirs
//     lists.
//
// It only stats and globs files: no Python is run, no plugin loaded.
func CUDAPlugins(p Probe) []Plugin {
	var out []Plugin
	seen := map[string]bool{}
	add := func(pl Plugin) {
		if !seen[pl.Path] {
			seen[pl.Path] = true
			out = append(out, pl)
		}
	}
	for _, entry := range filepath.SplitList(p.Getenv("PJRT_PLUGIN_LIBRARY_PATH")) {
		if entry != "" && isFile(entry) && strings.Contains(filepath.Base(entry), "cuda") {
			add(describeFile(entry, "from PJRT_PLUGIN_LIBRARY_PATH"))
		}
		for _, f := range append(PluginFileNames("cuda"), jaxPluginFile) {
			if path := filepath.Join(entry, f); entry != "" && isFile(path) {
				add(describeFile(path, "from PJRT_PLUGIN_LIBRARY_PATH"))
			}
		}
	}
	if path := FindPluginIn(GoXLADirs(p), "cuda"); path != "" {
		add(Plugin{Path: path, Source: "go-xla's plugin folder, where `loba setup cuda` installs"})
	}
	if data, err := os.ReadFile(RecordFile(p)); err == nil {
		if path := strings.TrimSpace(string(data)); path != "" && isFile(path) {
			add(describeFile(path, "recorded by install.sh in "+RecordFile(p)))
		}
	}
	for _, pl := range JaxCUDAPlugins(SitePackagesDirs(p)) {
		add(pl)
	}
	return out
}

// RecordFile is where install.sh records the jax plugin Python's site-packages list showed it
// (for Python folders SitePackagesDirs does not glob): $XDG_DATA_HOME/loba/cuda-plugin, else
// ~/.local/share/loba/cuda-plugin ("" without either).
func RecordFile(p Probe) string {
	if x := p.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "loba", "cuda-plugin")
	}
	if h := p.home(); h != "" {
		return filepath.Join(h, ".local", "share", "loba", "cuda-plugin")
	}
	return ""
}

// reJaxPlugin matches jax's plugin path: <site-packages>/jax_plugins/xla_cuda<N>/xla_cuda_plugin.so.
var reJaxPlugin = regexp.MustCompile(`^(.*)/jax_plugins/xla_cuda(\d+)/xla_cuda_plugin\.so$`)

// describeFile is the Plugin at path: jax's (SitePackages, CUDA and its wheel's version in Source,
// then source) when the path is laid out as jax installs it, else source alone.
func describeFile(path, source string) Plugin {
	m := reJaxPlugin.FindStringSubmatch(filepath.ToSlash(path))
	if m == nil {
		return Plugin{Path: path, Source: source}
	}
	pl := Plugin{Path: path, SitePackages: filepath.FromSlash(m[1]), CUDA: m[2]}
	pl.Source = jaxWheel(pl.SitePackages, pl.CUDA) + " in " + pl.SitePackages
	if source != "" {
		pl.Source += ", " + source
	}
	return pl
}

// jaxWheel names the jax-cuda<N>-pjrt wheel installed in site, with its version when its
// .dist-info folder is there ("jax-cuda12-pjrt 0.7.2").
func jaxWheel(site, cuda string) string {
	name := "jax-cuda" + cuda + "-pjrt"
	m, _ := filepath.Glob(filepath.Join(site, "jax_cuda"+cuda+"_pjrt-*.dist-info"))
	if len(m) == 0 {
		return name
	}
	v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m[len(m)-1]), "jax_cuda"+cuda+"_pjrt-"), ".dist-info")
	return name + " " + v
}

// JaxCUDAPlugins lists jax's CUDA plugins (jax_plugins/xla_cuda*/xla_cuda_plugin.so) in the
// Python folders sites, in order (within one folder CUDA 12 before 13).
func JaxCUDAPlugins(sites []string) []Plugin {
	var out []Plugin
	for _, site := range sites {
		m, _ := filepath.Glob(filepath.Join(site, "jax_plugins", "xla_cuda*", jaxPluginFile))
		for _, path := range m {
			if isFile(path) {
				out = append(out, describeFile(path, ""))
			}
		}
	}
	return out
}

// SitePackagesDirs lists the Python package folders that exist on this machine, most specific
// first: $VIRTUAL_ENV's and $CONDA_PREFIX's, $PYTHONPATH, the user's (~/.local/lib/python3*,
// pyenv, conda in the home folder), those of the python3 on PATH, then the system's
// (/usr/local/lib/python3*/dist-packages as on Colab and Debian, /usr/lib/python3*, /opt/conda).
// It globs; it does not run Python.
func SitePackagesDirs(p Probe) []string {
	var pats []string
	sitePats := func(prefix string) []string {
		return []string{filepath.Join(prefix, "lib", "python3*", "site-packages"), filepath.Join(prefix, "lib", "python3*", "dist-packages")}
	}
	for _, v := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if prefix := p.Getenv(v); prefix != "" {
			pats = append(pats, sitePats(prefix)...)
		}
	}
	pats = append(pats, filepath.SplitList(p.Getenv("PYTHONPATH"))...)
	if h := p.home(); h != "" {
		pats = append(pats, filepath.Join(h, ".local", "lib", "python3*", "site-packages"))
		for _, d := range []string{".pyenv/versions/*", "miniconda3", "miniforge3", "anaconda3"} {
			pats = append(pats, sitePats(filepath.Join(h, d))...)
		}
	}
	if py := LookPath(p.Getenv("PATH"), "python3"); py != "" {
		if real, err := filepath.EvalSymlinks(py); err == nil {
			pats = append(pats, sitePats(filepath.Dir(filepath.Dir(real)))...)
		}
	}
	pats = append(pats, sitePats(p.sys("/usr/local"))...)
	pats = append(pats, p.sys("/usr/lib/python3/dist-packages"))
	pats = append(pats, sitePats(p.sys("/usr"))...)
	pats = append(pats, sitePats(p.sys("/opt/conda"))...)
	return globDirs(pats)
}

// globDirs expands the patterns into the folders that exist, each once, in order.
func globDirs(pats []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, pat := range pats {
		if pat == "" {
			continue
		}
		m, _ := filepath.Glob(pat)
		for _, d := range m {
			if !seen[d] && isDir(d) {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
