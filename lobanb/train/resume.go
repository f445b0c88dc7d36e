package train

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/loba-dev/loba/lobanb/slider"
)

// Resuming a run folder. A checkpoint records the keys of its preset that decide the trained function
// (trainedFunction): the model, the objective and mode, the prompts, the network, the optimizer and
// its schedule, the loss, the noise, the resolution, the seed. A re-run whose preset differs in any of
// them is refused before any model loads, naming the keys. The other keys (scheduleNeutral) change how
// long a run goes, how it is saved, sampled or evaluated, but not the function the steps already done
// trained: raising train.steps extends a finished run from its last checkpoint.

// scheduleNeutral are the preset keys (a key or a whole section) that may differ between a run's
// checkpoint and its re-run. train.steps is one: extending a run is the commonest "train a bit more".
// gradient_checkpointing and attention choose how the same function is computed (memory against time).
var scheduleNeutral = []string{
	"train.steps", "train.checkpoint_every", "train.keep_checkpoints", "train.save_every",
	"train.save_dtype", "train.save_layout", "train.gradient_checkpointing", "train.attention",
	"sample", "eval", "output",
}

// neutral tells whether the flattened key is schedule-neutral (is or lies under one of scheduleNeutral).
func neutral(key string) bool {
	for _, n := range scheduleNeutral {
		if key == n || strings.HasPrefix(key, n+".") {
			return true
		}
	}
	return false
}

// trainedFunction flattens p's JSON to dotted keys ("prompts.0.target", "network.rank") with their
// JSON values, less the schedule-neutral keys.
func trainedFunction(p *slider.Preset) (map[string]string, error) {
	var v any
	if err := json.Unmarshal([]byte(p.JSON()), &v); err != nil {
		return nil, fmt.Errorf("preset %s: %w", p.File(), err)
	}
	out := map[string]string{}
	flatten("", v, out)
	maps.DeleteFunc(out, func(k, _ string) bool { return neutral(k) })
	return out, nil
}

// flatten writes v's leaves into out under dotted keys. Empty objects and arrays are leaves, so that
// "no prompts" and "one prompt" differ.
func flatten(prefix string, v any, out map[string]string) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		if len(x) > 0 {
			for k, e := range x {
				flatten(join(k), e, out)
			}
			return
		}
	case []any:
		if len(x) > 0 {
			for i, e := range x {
				flatten(join(strconv.Itoa(i)), e, out)
			}
			return
		}
	}
	b, _ := json.Marshal(v)
	out[prefix] = string(b)
}

// differingKeys are the keys whose values differ between a and b (one missing counts), sorted.
func differingKeys(a, b map[string]string) []string {
	var keys []string
	for k, va := range a {
		if vb, ok := b[k]; !ok || va != vb {
			keys = append(keys, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// describeDiff names the differing keys with both values, at most 8 of them.
func describeDiff(keys []string, was, now map[string]string) string {
	show := func(m map[string]string, k string) string {
		if v, ok := m[k]; ok {
			return v
		}
		return "(unset)"
	}
	var parts []string
	for i, k := range keys {
		if i == 8 {
			parts = append(parts, fmt.Sprintf("and %d more", len(keys)-8))
			break
		}
		parts = append(parts, fmt.Sprintf("%s: %s → %s", k, show(was, k), show(now, k)))
	}
	return strings.Join(parts, "; ")
}

// checkResumable refuses a re-run whose preset changes the trained function of the newest checkpoint
// under root (read from its state.json only: no tensor and no model is loaded), and a train.steps
// below the step that checkpoint reached. It returns the message to show when the re-run extends the
// run ("" when there is nothing to say). Called before any model loads.
func checkResumable(root string, p *slider.Preset, sched ScheduleConfig) (string, error) {
	all, err := ListCheckpoints(root)
	if err != nil || len(all) == 0 {
		return "", err
	}
	var c *Checkpoint
	for i := len(all) - 1; i >= 0 && c == nil; i-- { // the newest whose state.json reads
		c, _ = readCheckpointState(all[i])
	}
	if c == nil {
		return "", nil // every checkpoint is unreadable: the run starts again (selectCheckpoint says so)
	}
	now, err := trainedFunction(p)
	if err != nil {
		return "", err
	}
	if err := c.compatible(now, p); err != nil {
		return "", err
	}
	if c.Step > p.Train.Steps {
		return "", fmt.Errorf("%s is at step %d, past train.steps = %d: raise train.steps to extend the run, "+
			"or use another --out (a LoRA of an earlier step: train.save_every)", c.Dir, c.Step, p.Train.Steps)
	}
	return extendMessage(c, p.Train.Steps, sched)
}

// compatible checks that the checkpoint's trained function is now's (p's); a checkpoint of an older
// LOBA, without the keys, must have been made by the very same preset.
func (c *Checkpoint) compatible(now map[string]string, p *slider.Preset) error {
	if c.Function == nil {
		if c.Preset == presetHash(p) {
			return nil
		}
		return fmt.Errorf("%s was made by another preset (a checkpoint of an older LOBA, which recorded no keys): "+
			"remove %s or use another --out", c.Dir, filepath.Dir(c.Dir))
	}
	if diff := withoutNewDefaults(differingKeys(c.Function, now), c.Function, now); len(diff) > 0 {
		return fmt.Errorf("%s was trained with another preset: %s. These keys change the trained function, so "+
			"the run cannot resume with them; put them back, or use another --out (or remove %s) to start afresh. "+
			"train.steps and the sample, eval, output and saving settings may change",
			c.Dir, describeDiff(diff, c.Function, now), filepath.Dir(c.Dir))
	}
	return nil
}

// withoutNewDefaults drops from diff the keys the checkpoint lacks whose value now is the default: a
// setting a later LOBA added, which the checkpoint's run had at its default by construction.
func withoutNewDefaults(diff []string, was, now map[string]string) []string {
	d := slider.Defaults()
	d.Prompts = []slider.Prompt{{Target: "x"}}
	if d.Normalize() != nil {
		return diff
	}
	defaults, err := trainedFunction(d)
	if err != nil {
		return diff
	}
	var out []string
	for _, k := range diff {
		if _, had := was[k]; !had && now[k] == defaults[k] {
			continue
		}
		out = append(out, k)
	}
	return out
}

// extendMessage says what continuing c's run to steps does: nothing when the step count is the one the
// checkpoint was made with; else that the run extends, and, when the learning-rate schedule depends on
// train.steps, that the steps already done followed the shorter schedule.
func extendMessage(c *Checkpoint, steps int, sched ScheduleConfig) (string, error) {
	if c.TrainSteps == 0 || c.TrainSteps == steps {
		return "", nil
	}
	msg := fmt.Sprintf("extending the run from train.steps = %d to %d: it continues from step %d", c.TrainSteps, steps, c.Step)
	was := sched
	was.TotalSteps = c.TrainSteps
	lrWas, err := NewSchedule(was)
	if err != nil {
		return "", err
	}
	lrNow, err := NewSchedule(sched)
	if err != nil {
		return "", err
	}
	for s := 0; s < c.Step; s++ {
		if lrWas(s) != lrNow(s) {
			return msg + fmt.Sprintf(". train.lr_scheduler %s depends on train.steps: steps 1–%d followed its %d-step "+
				"curve and steps %d–%d follow the %d-step one (the learning rate goes from %.3g at step %d to %.3g at step %d), "+
				"so the LoRA differs from one trained for %d steps at once; a constant schedule extends exactly",
				sched.Name, c.Step, c.TrainSteps, c.Step+1, steps, steps, lrWas(c.Step-1), c.Step, lrNow(c.Step), c.Step+1, steps), nil
		}
	}
	return msg + " (the learning-rate schedule is the same over the steps done, so the LoRA is the one a single " +
		strconv.Itoa(steps) + "-step run gives)", nil
}

// selectCheckpoint loads the newest usable checkpoint under root: one whose state and tensors read and
// whose values are all finite. Each unusable one is renamed corrupt-step-N (kept for inspection, no
// longer listed) and said on logf; nil when there is none (the run starts from step 0).
func selectCheckpoint(root string, logf func(string, ...any)) (*Checkpoint, error) {
	all, err := ListCheckpoints(root)
	if err != nil {
		return nil, err
	}
	for _, dir := range slices.Backward(all) {
		c, err := LoadCheckpoint(dir)
		if err == nil {
			return c, nil
		}
		aside := filepath.Join(root, "corrupt-"+filepath.Base(dir))
		_ = os.RemoveAll(aside)
		if rerr := os.Rename(dir, aside); rerr != nil {
			return nil, fmt.Errorf("%w (and it could not be set aside: %v)", err, rerr)
		}
		logf("warning: %v; set aside as %s, falling back to the previous checkpoint", err, aside)
	}
	if len(all) > 0 {
		logf("warning: no usable checkpoint left in %s: the run starts from step 0", root)
	}
	return nil, nil
}
