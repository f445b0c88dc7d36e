package kernelsetup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
// ${PATH}), and with a CUDA plugin from go-xla, XLA_FLAGS naming its CUDA folder (GOMLX.md §3: go-xla
// v0.1.4 otherwise points XLA at a developer's home folder).
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
	if flags := e.xlaFlagsWanted(); flags != "" {
		env["XLA_FLAGS"] = flags
	}
	return env
}

// SetupKernel records KernelEnv(root) in the registered gonb kernel spec (other env entries stay).
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
		k.Env[key] = v
	}
	return k.Path(), k.Write()
}
