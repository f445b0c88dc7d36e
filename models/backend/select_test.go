package backend

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// unsetenv unsets key for the test (restored after it).
func unsetenv(t *testing.T, key string) {
	t.Helper()
	t.Setenv(key, "")
	require.NoError(t, os.Unsetenv(key))
}

// noNetwork points every proxy variable at a local listener and returns the number of connections
// it received: a download attempt (go-xla's installer uses net/http) shows up there instead of
// going out, or waiting on a server that does not answer.
func noNetwork(t *testing.T) *atomic.Int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			_ = c.Close()
		}
	}()
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		t.Setenv(k, "http://"+ln.Addr().String())
	}
	unsetenv(t, "NO_PROXY")
	unsetenv(t, "no_proxy")
	return &n
}

// timedCreate selects with p and creates the backend, which must take less than 2 s.
func timedCreate(t *testing.T, p Probe) (*Selection, error) {
	t.Helper()
	start := time.Now()
	s, err := create(Select(p))
	require.Less(t, time.Since(start), 2*time.Second)
	return s, err
}

// goAtOnce is timedCreate that must give the Go backend.
func goAtOnce(t *testing.T, p Probe) *Selection {
	t.Helper()
	s, err := timedCreate(t, p)
	require.NoError(t, err)
	require.Equal(t, "go", s.Backend.String())
	return s
}

// TestNoGPUPicksGoAtOnce: with GOMLX_BACKEND and GOMLX_NO_AUTO_INSTALL unset and no GPU, the Go
// backend is chosen and created at once (< 2 s), and nothing touches the network.
func TestNoGPUPicksGoAtOnce(t *testing.T) {
	unsetenv(t, EnvBackend)
	unsetenv(t, EnvNoAutoInstall)
	unsetenv(t, EnvAutoInstall)
	conns := noNetwork(t)
	p := Probe{DevDir: t.TempDir()} // this process's environment, no GPU device files
	s := goAtOnce(t, p)
	require.Equal(t, "no NVIDIA GPU", s.Reason)
	require.Empty(t, s.Warning)
	require.Zero(t, conns.Load(), "connections to the network")
}

// TestExplicitXLANoDownload: GOMLX_BACKEND=xla:cpu with no plugin installed fails at once (an error
// naming it, no download, no wait), since auto-install is off unless LOBA_AUTO_INSTALL=1.
func TestExplicitXLANoDownload(t *testing.T) {
	unsetenv(t, EnvNoAutoInstall)
	unsetenv(t, EnvAutoInstall)
	t.Setenv(EnvBackend, "xla:cpu")
	t.Setenv("HOME", t.TempDir()) // go-xla's installer would write under it
	conns := noNetwork(t)
	s, err := timedCreate(t, Probe{DevDir: t.TempDir()})
	require.Zero(t, conns.Load(), "connections to the network")
	if err == nil { // this machine has an XLA CPU plugin installed
		require.Contains(t, Describe(s.Backend), "xla:cpu")
		return
	}
	require.ErrorContains(t, err, "GOMLX_BACKEND=xla:cpu")
}

// TestSelect: the choice for each machine state, without loading anything.
func TestSelect(t *testing.T) {
	p, root := fakeMachine(t)
	require.Equal(t, Choice{Config: "go:parallelism=-1", Reason: "no NVIDIA GPU"}, Select(p))
	touch(t, filepath.Join(p.DevDir, "nvidia0"))
	ch := Select(p)
	require.Equal(t, "go:parallelism=-1", ch.Config)
	require.Contains(t, ch.Reason, "no CUDA PJRT plugin")

	site := filepath.Join(root, "usr", "local", "lib", "python3.12", "dist-packages")
	path := jaxPlugin(t, site, "12", "0.7.2")
	ch = Select(p)
	require.Equal(t, "xla:"+path+",preallocate=false", ch.Config)
	require.False(t, ch.Explicit)
	require.Equal(t, path, ch.Plugin.Path)
	require.Equal(t, "NVIDIA GPU; CUDA plugin jax-cuda12-pjrt 0.7.2 in "+site, ch.Reason)

	p.Env[EnvBackend] = "xla:cuda,tf32=false"
	ch = Select(p)
	require.Equal(t, "xla:"+path+",tf32=false", ch.Config)
	require.True(t, ch.Explicit)
	p.Env[EnvBackend] = "go"
	require.Equal(t, Choice{Config: "go:parallelism=-1", Reason: "GOMLX_BACKEND=go", Explicit: true}, Select(p))
	require.NoError(t, os.Remove(filepath.Join(p.DevDir, "nvidia0")))
	p.Env[EnvBackend] = "xla:cuda"
	require.Equal(t, "xla:cuda", Select(p).Config, "no GPU: left to go-xla")
}

// TestCUDAFallback: a CUDA plugin that does not load (a dummy .so) gives the Go backend at once with a
// one-line warning naming it; asked for by GOMLX_BACKEND it is an error instead.
func TestCUDAFallback(t *testing.T) {
	unsetenv(t, "XLA_FLAGS")
	unsetenv(t, "GOPJRT_CUDA_CHECKS")
	p, root := fakeMachine(t)
	touch(t, filepath.Join(p.DevDir, "nvidia0"))
	site := filepath.Join(root, "usr", "local", "lib", "python3.12", "dist-packages")
	path := jaxPlugin(t, site, "12", "")
	touch(t, filepath.Join(site, "nvidia", "cuda_nvcc", "bin", "ptxas"))
	s := goAtOnce(t, p)
	require.Equal(t, "CUDA plugin failed to load", s.Reason)
	require.Contains(t, s.Warning, path)
	require.Contains(t, s.Warning, "computing on the pure-Go backend")
	require.NotContains(t, s.Warning, "\n")
	// jax's layout: XLA pointed at its CUDA folder, go-xla's nvidia/ check off.
	require.Equal(t, "--xla_gpu_cuda_data_dir="+filepath.Join(site, "nvidia", "cuda_nvcc"), os.Getenv("XLA_FLAGS"))
	require.Equal(t, "0", os.Getenv("GOPJRT_CUDA_CHECKS"))

	p.Env[EnvBackend] = "xla:cuda"
	_, err := timedCreate(t, p)
	require.ErrorContains(t, err, "GOMLX_BACKEND=xla:cuda")
}

// TestPrepareCUDAKeepsUserSettings: what the user set in XLA_FLAGS and GOPJRT_CUDA_CHECKS stays.
func TestPrepareCUDAKeepsUserSettings(t *testing.T) {
	site := t.TempDir()
	touch(t, filepath.Join(site, "nvidia", "cuda_nvcc", "bin", "ptxas"))
	t.Setenv("XLA_FLAGS", "--xla_gpu_cuda_data_dir=/opt/cuda")
	t.Setenv("GOPJRT_CUDA_CHECKS", "1")
	prepareCUDA(Plugin{SitePackages: site, CUDA: "12"})
	require.Equal(t, "--xla_gpu_cuda_data_dir=/opt/cuda", os.Getenv("XLA_FLAGS"))
	require.Equal(t, "1", os.Getenv("GOPJRT_CUDA_CHECKS"))
	t.Setenv("XLA_FLAGS", "--xla_dump_to=/tmp/d")
	prepareCUDA(Plugin{SitePackages: site, CUDA: "12"})
	require.True(t, strings.HasPrefix(os.Getenv("XLA_FLAGS"), "--xla_dump_to=/tmp/d --xla_gpu_cuda_data_dir="))
	// go-xla's own layout needs nothing.
	t.Setenv("XLA_FLAGS", "")
	prepareCUDA(Plugin{Path: "/x/go-xla/nvidia/pjrt_c_api_cuda_plugin.so"})
	require.Empty(t, os.Getenv("XLA_FLAGS"))
}
