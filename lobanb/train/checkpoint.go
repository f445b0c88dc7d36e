package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/internal/killpoint"
	"github.com/loba-dev/loba/models/safetensors"
)

// Checkpoint is what a run needs to resume exactly: the values of the trainable and optimizer
// variables (by scope path), the step reached and the host RNG state.
type Checkpoint struct {
	Step   int    `json:"step"`
	RNG    []byte `json:"rng"`
	Preset string `json:"preset_sha256"` // the preset the run was started with
	// Function are the preset's keys that decide the trained function (trainedFunction, resume.go): a
	// re-run must agree on them. TrainSteps is the train.steps the checkpoint was made with.
	Function   map[string]string          `json:"trained_function,omitempty"`
	TrainSteps int                        `json:"train_steps,omitempty"`
	Extra      map[string]string          `json:"extra,omitempty"`
	Dir        string                     `json:"-"`
	Variables  map[string]*tensors.Tensor `json:"-"`
}

const (
	ckptPrefix    = "step-"
	ckptTensors   = "state.safetensors"
	ckptStateJSON = "state.json"
)

// checkpointDir is the folder of the checkpoint at step under root.
func checkpointDir(root string, step int) string {
	return filepath.Join(root, fmt.Sprintf("%s%08d", ckptPrefix, step))
}

// variableKey is a variable's scope path and name, e.g. "/lora/unet/down_blocks/0/.../lora_down/weight".
func variableKey(v *model.Variable) string {
	return strings.TrimSuffix(v.Scope(), "/") + "/" + v.Name()
}

// SaveCheckpoint writes the checkpoint of vars at step into root/step-NNNNNNNN atomically: into a
// temporary folder first, renamed when complete, so an interruption never leaves a half checkpoint.
// It then removes all but the newest keep checkpoints (keep <= 0 keeps all).
func SaveCheckpoint(root string, vars []*model.Variable, c Checkpoint, keep int) (string, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(root, ".tmp-ckpt-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	ts := make(map[string]*tensors.Tensor, len(vars))
	for _, v := range vars {
		val, err := v.Value()
		if err != nil {
			return "", fmt.Errorf("checkpoint: reading %s: %w", variableKey(v), err)
		}
		ts[variableKey(v)] = val
	}
	if err := safetensors.Write(filepath.Join(tmp, ckptTensors), ts, map[string]string{"format": "loba-checkpoint"}); err != nil {
		return "", err
	}
	state, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, ckptStateJSON), state, 0o644); err != nil {
		return "", err
	}
	killpoint.Here("checkpoint") // the crash tests: the checkpoint written, not yet in place
	final := checkpointDir(root, c.Step)
	if err := os.RemoveAll(final); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	if keep > 0 {
		all, _ := ListCheckpoints(root)
		for i := 0; i < len(all)-keep; i++ {
			_ = os.RemoveAll(all[i])
		}
	}
	return final, nil
}

// ListCheckpoints lists the complete checkpoints under root, oldest first.
func ListCheckpoints(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var dirs []string
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), ckptPrefix) {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if _, err := os.Stat(filepath.Join(dir, ckptStateJSON)); err != nil {
			continue
		}
		dirs = append(dirs, dir)
	}
	sort.Strings(dirs)
	return dirs, nil
}

// LoadCheckpoint reads a checkpoint folder: its state (which must hold a valid RNG state) and its
// tensors, every value of which must be finite (a checkpoint holding NaN would stall the run).
func LoadCheckpoint(dir string) (*Checkpoint, error) {
	c, err := readCheckpointState(dir)
	if err != nil {
		return nil, err
	}
	if err := NewRNG(0).Restore(c.RNG); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %s: %w", dir, ckptStateJSON, err)
	}
	file := filepath.Join(dir, ckptTensors)
	if c.Variables, err = safetensors.ReadTensors(file, 0); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	if err := safetensors.CheckFinite(file, c.Variables); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	return c, nil
}

// readCheckpointState reads a checkpoint's state.json (no tensors).
func readCheckpointState(dir string) (*Checkpoint, error) {
	data, err := os.ReadFile(filepath.Join(dir, ckptStateJSON))
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	c := &Checkpoint{Dir: dir}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("checkpoint %s: bad %s: %w", dir, ckptStateJSON, err)
	}
	if c.Step < 1 {
		return nil, fmt.Errorf("checkpoint %s: bad %s: step = %d, want >= 1", dir, ckptStateJSON, c.Step)
	}
	return c, nil
}

// Restore sets the run's variables from the checkpoint. required are the variables the run has
// now (the adapter's): each must be in the checkpoint with its shape. The checkpoint's other
// variables (the optimizer state, created lazily when the step graph is first built) are created
// in ctx when they do not exist yet, non-trainable; an existing one must match in shape.
func (c *Checkpoint) Restore(ctx *model.Scope, required []*model.Variable) error {
	seen := map[string]bool{}
	for _, v := range required {
		key := variableKey(v)
		t, ok := c.Variables[key]
		if !ok {
			return fmt.Errorf("checkpoint %s: no value for %s (was it made by another preset?)", c.Dir, key)
		}
		if !t.Shape().Equal(v.Shape()) {
			return fmt.Errorf("checkpoint %s: %s has shape %s, the run wants %s", c.Dir, key, t.Shape(), v.Shape())
		}
		if err := v.SetValue(t); err != nil {
			return fmt.Errorf("checkpoint %s: setting %s: %w", c.Dir, key, err)
		}
		seen[key] = true
	}
	for key, t := range c.Variables {
		if seen[key] {
			continue
		}
		slash := strings.LastIndex(key, "/")
		scope, name := key[:slash], key[slash+1:]
		if scope == "" {
			scope = "/"
		}
		sub := ctx.Store().Scope(scope)
		if v := sub.GetVariable(name); v != nil {
			if !t.Shape().Equal(v.Shape()) {
				return fmt.Errorf("checkpoint %s: %s has shape %s, the run has %s", c.Dir, key, t.Shape(), v.Shape())
			}
			if err := v.SetValue(t); err != nil {
				return fmt.Errorf("checkpoint %s: setting %s: %w", c.Dir, key, err)
			}
			continue
		}
		sub.VariableWithValue(name, t).SetTrainable(false)
	}
	return nil
}
