package eval

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures/tinypipe"
	"github.com/loba-dev/loba/lobanb/rundir"
	"github.com/loba-dev/loba/lobanb/slider"
	"github.com/loba-dev/loba/models/toyworld"
)

// TestCheckModel (issue 15 item 7): a toy-world eval on a model that is not the toy world is an
// error naming the preset key and the model; on the toy world, or without an eval section, it passes.
func TestCheckModel(t *testing.T) {
	p := slider.Defaults()
	p.Eval = slider.Eval{Kind: "slider", Target: "area", Prompts: []string{"a red cube"}}
	other := tinypipe.First(t, false).Dir
	err := CheckModel(p, other)
	require.ErrorContains(t, err, "eval.kind slider")
	require.ErrorContains(t, err, other)
	require.ErrorContains(t, CheckModel(p, other+"/model.safetensors"), "not a toy-world model")
	toy, err := toyworld.BaseDir()
	require.NoError(t, err)
	require.NoError(t, CheckModel(p, toy))
	p.Eval = slider.Eval{}
	require.NoError(t, CheckModel(p, other))
}

// TestEvaluateChecksModel: Evaluate (lobanb.Eval, `loba eval`) refuses a toy-world eval of another
// model before loading it, and writes nothing.
func TestEvaluateChecksModel(t *testing.T) {
	p := slider.Defaults()
	p.Model.NameOrPath = tinypipe.First(t, false).Dir
	p.Prompts = []slider.Prompt{{Target: "a red cube", Action: slider.ActionErase}}
	p.Eval = slider.Eval{Kind: "slider", Target: "area", Prompts: []string{"a red cube"}}
	require.NoError(t, p.Normalize())
	out := filepath.Join(t.TempDir(), "run")
	_, err := Evaluate(rundir.Dir(out), Options{Preset: p, LoRA: filepath.Join(out, "missing.safetensors")})
	require.ErrorContains(t, err, "is not a toy-world model")
	require.NoDirExists(t, out)
}
