package kernelsetup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loba-dev/loba/models/backend"
)

// withGPU is a bare machine with an NVIDIA device file and a PATH of only its own bin/ (no python3
// until a test puts one there).
func withGPU(t *testing.T) (Env, string) {
	t.Helper()
	e := bareEnv(t)
	home := e.Getenv("HOME")
	bin := filepath.Join(home, "bin")
	for i, kv := range e.Vars {
		if strings.HasPrefix(kv, "PATH=") {
			e.Vars[i] = "PATH=" + bin
		}
	}
	writeFile(t, filepath.Join(e.DevDir, "nvidia0"), "")
	return e, home
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestCUDAPluginCheckJax: jax's CUDA plugin in the user's site-packages satisfies the check (nothing
// to download), and the doctor says which plugin it found.
func TestCUDAPluginCheckJax(t *testing.T) {
	e, home := withGPU(t)
	if c := e.cudaPluginCheck(); c.OK || !strings.Contains(c.Fix, "loba setup cuda") {
		t.Fatalf("no plugin: %+v", c)
	}
	site := filepath.Join(home, ".local", "lib", "python3.12", "site-packages")
	plugin := filepath.Join(site, "jax_plugins", "xla_cuda12", "xla_cuda_plugin.so")
	writeFile(t, plugin, "")
	writeFile(t, filepath.Join(site, "jax_cuda12_pjrt-0.7.2.dist-info", "METADATA"), "")
	c := e.cudaPluginCheck()
	if !c.OK || c.Found != plugin+" (jax-cuda12-pjrt 0.7.2 in "+site+")" {
		t.Errorf("jax plugin: %+v", c)
	}
	// `loba setup cuda` still installs the pinned plugin when asked (which LOBA then prefers).
	if got := e.FindPlugin("cuda"); got != "" {
		t.Errorf("FindPlugin(cuda) = %q, want none in go-xla's folders", got)
	}
}

// TestCUDAPluginCheckPythonOnly: a jax plugin that only python3's own folder list shows is named,
// with the command that records it for loba; once recorded, the check passes.
func TestCUDAPluginCheckPythonOnly(t *testing.T) {
	e, home := withGPU(t)
	odd := filepath.Join(home, "odd place")
	plugin := filepath.Join(odd, "jax_plugins", "xla_cuda13", "xla_cuda_plugin.so")
	writeFile(t, plugin, "")
	writeFile(t, filepath.Join(home, "bin", "python3"), "#!/bin/sh\necho /nonexistent\necho '"+odd+"'\n")
	c := e.cudaPluginCheck()
	rec := backend.RecordFile(e.probe())
	if c.OK || !strings.Contains(c.Problem, plugin) || !strings.Contains(c.Fix, "echo "+shellQuote(plugin)+" > "+shellQuote(rec)) {
		t.Fatalf("python-only plugin: %+v", c)
	}
	writeFile(t, rec, plugin+"\n")
	if c := e.cudaPluginCheck(); !c.OK || !strings.Contains(c.Found, "recorded by install.sh") {
		t.Errorf("recorded plugin: %+v", c)
	}
}
