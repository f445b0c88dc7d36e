// Package train is LOBA's trainer: the objectives of docs/ALGORITHMS.md (LECO §1, concept sliders §2,
// prediction types and schedules §3) compiled as XLA graphs, the loop around them, optimizers,
// learning-rate schedules, checkpoints that resume exactly, and NaN guards.
//
// A run is planned, then run:
//
//	plan, err := train.NewPlan(preset, train.Options{OutDir: "runs/size"}) // every default; no I/O
//	run, err := train.NewRun(plan)   // the model, the prompts' cached conditioning, the adapter
//	res, err := run.Train()          // steps, checkpoints, loss.csv, lora.safetensors, eval
//
// The run folder's files are named by lobanb/rundir; the evaluation is lobanb/eval.Evaluate.
//
// Two graphs run per step, each compiled once per shape and never rebuilt in the loop:
//
//   - the partial denoise step (denoise.go): x ← scheduler.step(ε_u + g_d·(ε_c − ε_u)), called k times
//     from the host with the adapter on or off;
//   - the train step (step.go): the frozen teacher's three reference predictions in ONE batched UNet
//     call (3B, no unconditional halves), the student's prediction with the adapter at per-sample
//     multipliers, the target and loss (objective.go), the gradients of the adapter weights, and the
//     optimizer update.
//
// All randomness (prompt entry, k, noise) is drawn on the host from one PCG generator whose state is
// checkpointed, so an interrupted run resumes bit for bit.
package train
