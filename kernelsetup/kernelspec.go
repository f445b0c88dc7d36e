package kernelsetup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loba-dev/loba/internal/atomicfile"
)

// KernelName is the Jupyter kernel name `gonb --install` registers.
const KernelName = "gonb"

// KernelSpec is a Jupyter kernel.json (the fields we read or write; others are kept verbatim).
type KernelSpec struct {
	Argv        []string          `json:"argv"`
	DisplayName string            `json:"display_name"`
	Language    string            `json:"language"`
	Env         map[string]string `json:"env,omitempty"`

	path string
	raw  map[string]json.RawMessage
}

// Path is the kernel.json the spec was read from.
func (k *KernelSpec) Path() string { return k.path }

// FindKernelSpec returns the gonb kernel spec Jupyter would use (the first of JupyterDataDirs that
// has kernels/gonb/kernel.json), or nil when none is registered. A kernel.json that is not valid JSON
// is an error naming the file.
func (e Env) FindKernelSpec() (*KernelSpec, error) {
	for _, d := range e.JupyterDataDirs() {
		p := filepath.Join(d, "kernels", KernelName, "kernel.json")
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		return ReadKernelSpec(p)
	}
	return nil, nil
}

// ReadKernelSpec reads one kernel.json.
func ReadKernelSpec(path string) (*KernelSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k := &KernelSpec{path: path}
	if err := json.Unmarshal(data, &k.raw); err != nil {
		return nil, fmt.Errorf("kernel spec %s: not valid JSON: %w", path, err)
	}
	if err := json.Unmarshal(data, k); err != nil {
		return nil, fmt.Errorf("kernel spec %s: %w", path, err)
	}
	return k, nil
}

// Write saves the spec back to its kernel.json atomically, keeping fields it does not know.
func (k *KernelSpec) Write() error {
	if k.path == "" {
		return errors.New("kernel spec: no path to write to")
	}
	out := map[string]any{}
	for key, v := range k.raw {
		out[key] = v
	}
	out["argv"], out["display_name"], out["language"] = k.Argv, k.DisplayName, k.Language
	if len(k.Env) > 0 {
		out["env"] = k.Env
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(k.path, append(data, '\n'))
}

// KernelEnv is what `loba setup kernel` records in the gonb kernel's environment: LOBA_ROOT (the
// folder a notebook's first cell points the loba module at), a PATH that starts with the Go
// toolchain and GOBIN (GoNB runs go, goimports and gopls from its PATH; Jupyter substitutes
// ${PATH}), and, where the toolchain can build with it (Go 1.26 or newer on amd64),
// GOEXPERIMENT=simd: GoNB builds each cell with `go build` in the kernel's environment
// (gonb v0.11.5 internal/goexec/execcode.go:265), so the cells get the Go backend's AVX2/AVX-512
// kernels.
//
// No XLA_FLAGS: go-xla v0.1.4 pointed XLA at a developer's home folder
// (pkg/pjrt/cuda_linux.go:98, cudaSetCUDADir("/home/janpf/.local/lib/go-xla/nvidia")), which LOBA
// overrode here with --xla_gpu_cuda_data_dir. go-xla v0.4.5 sets XLA_FLAGS itself to the nvidia/
// folder beside the CUDA plugin it loads (pjrt/cuda_linux.go:84-97 and :102-112, called from
// pjrt/dynamiclib_base.go:135; its CHANGELOG, v0.2.1: "Fixed CUDA library paths"), and SetupKernel
// removes the entry older LOBA versions wrote.
func (e Env) KernelEnv(root string) map[string]string {
	env := map[string]string{"LOBA_ROOT": root}
	var dirs []string
	if goCmd := e.LookPath("go"); goCmd != "" {
		dirs = append(dirs, filepath.Dir(goCmd))
	}
	dirs = append(dirs, e.GoBin())
	path := ""
	for _, d := range dirs {
		path += d + string(filepath.ListSeparator)
	}
	env["PATH"] = path + "${PATH}"
	if t, err := e.Toolchain(); err == nil && t.SIMDSupported() {
		env["GOEXPERIMENT"] = SIMDExperiment
	}
	return env
}

// withoutLegacyXLAFlags is flags less the --xla_gpu_cuda_data_dir=<...>/go-xla/nvidia entry that LOBA
// recorded for go-xla v0.1.4 (see KernelEnv); other flags stay.
func withoutLegacyXLAFlags(flags string) string {
	var keep []string
	for _, f := range strings.Fields(flags) {
		if dir, ok := strings.CutPrefix(f, "--xla_gpu_cuda_data_dir="); ok &&
			filepath.Base(dir) == "nvidia" && filepath.Base(filepath.Dir(dir)) == "go-xla" {
			continue
		}
		keep = append(keep, f)
	}
	return strings.Join(keep, " ")
}

// SetupKernel records KernelEnv(root) in the registered gonb kernel spec (other env entries stay,
// but for the XLA_FLAGS entry of older LOBA versions).
// It returns the kernel.json it changed; with no gonb kernel registered it says to run gonb --install.
func (e Env) SetupKernel(root string) (string, error) {
	if !IsRoot(root) {
		return "", fmt.Errorf("%s is not LOBA's folder (no go.mod of %s)", root, ModulePath)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	k, err := e.FindKernelSpec()
	if err != nil {
		return "", err
	}
	if k == nil {
		return "", fmt.Errorf("no gonb kernel registered: run `gonb --install` first (or ./install.sh)")
	}
	if k.Env == nil {
		k.Env = map[string]string{}
	}
	for key, v := range e.KernelEnv(abs) {
		if key == "GOEXPERIMENT" {
			v = WithSIMD(k.Env[key]) // other experiments already recorded stay
		}
		k.Env[key] = v
	}
	if flags, ok := k.Env["XLA_FLAGS"]; ok {
		if rest := withoutLegacyXLAFlags(flags); rest == "" {
			delete(k.Env, "XLA_FLAGS")
		} else {
			k.Env["XLA_FLAGS"] = rest
		}
	}
	return k.Path(), k.Write()
}

// InstallKernel does what install.sh does for the kernel: where the folder `gonb --install` writes
// to (gonbDataDir) has no gonb kernel, it runs `gonb --install` under e's environment (the gonb on
// e's PATH, else in GoBin), then it records LOBA's environment for root (SetupKernel). It returns the
// kernel.json it set up. Run under an environment whose HOME or JUPYTER_DATA_DIR is a temporary
// folder, it leaves the user's own kernels alone.
func (e Env) InstallKernel(root string) (string, error) {
	if !IsRoot(root) {
		return "", fmt.Errorf("%s is not LOBA's folder (no go.mod of %s)", root, ModulePath)
	}
	kpath := filepath.Join(e.gonbDataDir(), "kernels", KernelName, "kernel.json")
	if !fileExists(kpath) {
		gonb := e.LookPath("gonb")
		if gonb == "" && fileExists(filepath.Join(e.GoBin(), "gonb")) {
			gonb = filepath.Join(e.GoBin(), "gonb")
		}
		if gonb == "" {
			return "", fmt.Errorf("no gonb on PATH or in %s to register the kernel with: run ./install.sh (it builds gonb %s)", e.GoBin(), GonbVersion)
		}
		if real, err := filepath.EvalSymlinks(gonb); err == nil {
			gonb = real // gonb --install copies a gonb it was started as from under /tmp into the kernel folder
		}
		if _, err := e.output(time.Minute, gonb, "--install"); err != nil {
			return "", fmt.Errorf("%s --install (registering the gonb kernel in %s): %w", gonb, filepath.Dir(kpath), err)
		}
		if !fileExists(kpath) {
			return "", fmt.Errorf("%s --install succeeded but wrote no %s", gonb, kpath)
		}
	}
	return e.SetupKernel(root)
}

// gonbDataDir is where `gonb --install` (v0.11.5, internal/kernel/install.go:64-86) writes
// kernels/gonb: $JUPYTER_DATA_DIR, else ~/Library/Jupyter on macOS, else ~/.local/share/jupyter
// (it does not read XDG_DATA_HOME).
func (e Env) gonbDataDir() string {
	if d := e.Getenv("JUPYTER_DATA_DIR"); d != "" {
		return d
	}
	if e.goos() == "darwin" {
		return filepath.Join(e.Home(), "Library", "Jupyter")
	}
	return filepath.Join(e.Home(), ".local", "share", "jupyter")
}
