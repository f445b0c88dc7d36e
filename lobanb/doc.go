// Package lobanb is LOBA in a notebook: thin, cell-friendly helpers over the trainer (lobanb/train),
// the presets (lobanb/slider) and the evaluation (lobanb/eval), displayed inline through GoNB.
//
//	lobanb.MustLoad("")                                             // "" = the embedded toy world
//	p := lobanb.MustSlider("", "size", "a shape", "a large shape", "a small shape")
//	res := lobanb.MustTrain(p, "runs/size")                        // live progress and loss chart
//	lobanb.MustGrid("runs/size", []string{"a red circle"}, -2, 0, 2) // inline PNG
//	lobanb.MustSave("runs/size", "size.safetensors")
//
// Every function returns an error; its Must twin panics instead, which GoNB shows as the cell's
// error. Outside a notebook (a Go program, a test) the helpers print plain text to Out and display
// nothing.
//
// # State lives in the run folder
//
// GoNB runs every cell as a new process, so nothing in memory survives from one cell to the next:
// weights, compiled graphs and variables are rebuilt per cell. The helpers are therefore designed
// around a run folder that holds all of a run's state:
//
//	runs/size/preset.yaml        the preset as trained (Train writes it; Grid, Eval, Chart read it)
//	runs/size/checkpoints/       adapter, optimizer and RNG state every train.checkpoint_every steps
//	runs/size/loss.csv           one row per step (Chart redraws it in any later cell)
//	runs/size/cache/             the prompts' text conditioning: a re-run skips the text encoders
//	runs/size/lora.safetensors   the trained adapter (kohya format)
//	runs/size/grid.png, eval.json
//
// Train resumes from the newest checkpoint, so re-running a cell that was interrupted (kernel
// interrupt: the step reached is checkpointed first) or that timed out continues where it stopped,
// and a cell that only looks at results (Chart, Grid, Eval, Save) takes the run folder, not a value
// from an earlier cell.
package lobanb
