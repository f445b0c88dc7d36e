package slider

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lineOf is the 1-based number of the first line of text containing needle.
func lineOf(t *testing.T, text, needle string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, needle) {
			return i + 1
		}
	}
	t.Fatalf("%q not in the config", needle)
	return 0
}

// TestAIToolkitErrors: each key that changes the trained result and LOBA cannot honour (or that
// ai-toolkit itself stops on) is an error naming the file, the line of the key and its path.
func TestAIToolkitErrors(t *testing.T) {
	const pp = "config.process[0]"
	base := aitkYAML("")
	train := "      train: {steps: 10, lr: 1e-4, max_denoising_steps: 10}"
	model := "      model: {name_or_path: some/model}"
	withTrain := func(extra string) string {
		return strings.Replace(base, train, "      train: {steps: 10, lr: 1e-4, max_denoising_steps: 10, "+extra+"}", 1)
	}
	for _, c := range []struct {
		name, text, needle, path, msg string
	}{
		{"job", strings.Replace(base, "job: train", "job: extension", 1), "job:", "job", `invalid value "extension"`},
		{"process type", strings.Replace(base, "type: slider", "type: slider_old", 1), "type:", pp + ".type", "TrainSliderProcessOld"},
		{"two processes", base + "    - type: slider # second\n", "# second", "config.process[1]", "one slider process per file"},
		{"network type", strings.Replace(base, "type: lora", "type: lokr", 1), "network:", pp + ".network.type", `"lokr" is not supported`},
		{"dropout", strings.Replace(base, "linear_alpha: 1}", "linear_alpha: 1, dropout: 0.1}", 1), "network:", pp + ".network.dropout", "no dropout"},
		{"network_kwargs", strings.Replace(base, "linear_alpha: 1}", "linear_alpha: 1, network_kwargs: {only_if_contains: [attn2]}}", 1), "network:", pp + ".network.network_kwargs", "selectors"},
		{"no network", strings.Replace(base, "      network: {type: lora, linear: 4, linear_alpha: 1}\n", "", 1), "- type: slider", pp, "LOBA trains adapters only"},
		{"optimizer", withTrain("optimizer: prodigy"), "train:", pp + ".train.optimizer", `"prodigy" is not supported`},
		{"optimizer param", withTrain("optimizer_params: {nesterov: true}"), "train:", pp + `.train.optimizer_params["nesterov"]`, `unsupported optimizer argument "nesterov"`},
		{"amsgrad", withTrain("optimizer_params: {amsgrad: true}"), "train:", pp + `.train.optimizer_params["amsgrad"]`, "amsgrad true is not supported"},
		{"lr scheduler", withTrain("lr_scheduler: linear"), "train:", pp + ".train.lr_scheduler", "LinearLR"},
		{"lr scheduler name", withTrain("lr_scheduler: wavy"), "train:", pp + ".train.lr_scheduler", `invalid value "wavy"`},
		{"lr scheduler param", withTrain("lr_scheduler: cosine, lr_scheduler_params: {T_max: 5}"), "train:", pp + `.train.lr_scheduler_params["T_max"]`, `unsupported argument "T_max" for cosine`},
		{"noise scheduler", withTrain("noise_scheduler: euler_a"), "train:", pp + ".train.noise_scheduler", `"euler_a" is not supported`},
		{"denoising steps", strings.Replace(base, "max_denoising_steps: 10", "max_denoising_steps: 2", 1), "train:", pp + ".train.max_denoising_steps", "want >= 3"},
		{"dtype", withTrain("dtype: fp8"), "train:", pp + ".train.dtype", `invalid value "fp8"`},
		{"ema", withTrain("ema_config: {use_ema: true}"), "train:", pp + ".train.ema_config.use_ema", "no EMA"},
		{"train_unet", withTrain("train_unet: false"), "train:", pp + ".train.train_unet", "trains no UNet module"},
		{"steps type", withTrain("batch_size: many"), "train:", pp + ".train.batch_size", `expected an integer, got "many"`},
		{"flux", strings.Replace(base, model, "      model: {name_or_path: some/model, is_flux: true}", 1), "model:", pp + ".model.is_flux", "SD 1.x/2.x and SDXL"},
		{"arch", strings.Replace(base, model, "      model: {name_or_path: some/model, arch: wan21}", 1), "model:", pp + ".model.arch", `invalid value "wan21"`},
		{"no model path", strings.Replace(base, model, "      model: {is_xl: true}", 1), "model:", "", `missing required key "` + pp + `.model.name_or_path"`},
		{"save_every", base + "      save: {save_every: 0}\n", "save:", pp + ".save.save_every", "want >= 1"},
		{"datasets", base + "      datasets: [{folder_path: imgs}]\n", "datasets:", pp + ".datasets", "trains on images"},
		{"empty targets", aitkYAML("\n      slider: {targets: []}\n"), "slider:", pp + ".slider.targets", "no prompt pair to train"},
		{"blank target", aitkYAML("\n      slider:\n        targets: [{target_class: person}]\n"), "targets:", pp + ".slider.targets[0]", "needs a positive or a negative"},
		{"zero multiplier", aitkYAML("\n      slider:\n        targets: [{target_class: c, positive: p, multiplier: 0}]\n"), "targets:", pp + ".slider.targets[0].multiplier", "nothing trains"},
		{"env", strings.Replace(base, "some/model", "${LOBA_AITK_TEST_UNSET_VAR}", 1), "model:", "", "environment variable LOBA_AITK_TEST_UNSET_VAR is not set"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeAITK(t, c.text)
			_, _, err := ImportAIToolkit(path)
			require.Error(t, err)
			want := fmt.Sprintf("%s:%d: %s", path, lineOf(t, c.text, c.needle), c.path)
			if c.path == "" {
				want = fmt.Sprintf("%s:%d: ", path, lineOf(t, c.text, c.needle))
			}
			assert.Contains(t, err.Error(), want)
			assert.Contains(t, err.Error(), c.msg)
		})
	}
}

// TestAIToolkitIgnoredKeys: every key of the ignored table warns with its reason, naming file, line
// and key; an unknown key warns with the key probably meant.
func TestAIToolkitIgnoredKeys(t *testing.T) {
	const pp = "config.process[0]"
	text := strings.Replace(aitkYAML(""), "max_denoising_steps: 10}", "max_denoising_steps: 10, max_grad_norm: 1, lr_schedular: cosine}", 1) +
		"      save: {push_to_hub: true}\n      trigger_word: sks\n"
	path := writeAITK(t, text)
	_, warnings, err := ImportAIToolkit(path)
	require.NoError(t, err)
	requireWarnings(t, path, warnings, pp+".train.max_grad_norm", pp+".train.lr_schedular", pp+".save.push_to_hub",
		pp+".trigger_word", pp+".slider.batch_full_slide")
	assert.Contains(t, warnings[0], "without clipping")
	assert.Contains(t, warnings[1], `(did you mean "lr_scheduler"?)`)
	assert.Contains(t, warnings[3], fmt.Sprintf("%s:%d: ", path, lineOf(t, text, "trigger_word")))

	// Every section of the table is a struct the import decodes, and none of its keys is a field of
	// that struct (a typo in a section, or a key both honoured and ignored, would never warn).
	for section, keys := range aitkIgnored {
		typ := reflect.TypeOf(aitkFile{})
		for _, seg := range strings.Split(section, ".") {
			if seg == "" {
				continue
			}
			f, ok := fieldsOf(typ).byName[seg]
			require.True(t, ok, "section %q: no field %q", section, seg)
			typ = typ.FieldByIndex(f.index).Type
			for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
				typ = typ.Elem()
			}
		}
		for key := range keys {
			_, both := fieldsOf(typ).byName[key]
			assert.False(t, both, "%s.%s is both a field and ignored", section, key)
		}
	}
}
