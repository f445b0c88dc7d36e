package slider

import (
	"slices"
	"strconv"
	"strings"
)

// mapOptimizer maps train.optimizer (train_util.get_optimizer, lower-cased): adamw, adam and lion are
// honoured; adam8bit and lion8bit train with float32 states (a warning: the same update without the
// quantization error); the learning-rate-free dadaptadam, dadaptlion and prodigy are errors (LOBA has
// none), and so is every other name, which LECO stops on too (adamw8bit among them).
func (imp *importer) mapOptimizer(t *lecoTrain, p *Preset) error {
	name := strings.ToLower(orDefault(t.Optimizer, "adamw"))
	tr := &p.Train
	switch name {
	case "adamw":
		tr.Optimizer = "adamw" // torch.optim.AdamW defaults: weight decay 1e-2
	case "adam", "adam8bit":
		tr.Optimizer, tr.WeightDecay = "adamw", ptr(0.0) // Adam without weight decay = AdamW with 0
		if name == "adam8bit" {
			imp.warnAt("train.optimizer", "%s: bitsandbytes' 8-bit optimizer states are not ported; imported as Adam with float32 states (the same update without the 8-bit rounding)", t.Optimizer)
		}
	case "lion", "lion8bit":
		tr.Optimizer = "lion"
		if name == "lion8bit" {
			imp.warnAt("train.optimizer", "%s: bitsandbytes' 8-bit optimizer states are not ported; imported as Lion with float32 states (the same update without the 8-bit rounding)", t.Optimizer)
		}
	case "dadaptadam", "dadaptlion", "prodigy":
		return imp.errAt("train.optimizer", "%q is not supported: LOBA has no learning-rate-free optimizer (D-Adaptation, Prodigy), and their step sizes change the trained result; valid values: adamw, adam, adam8bit, lion, lion8bit", t.Optimizer)
	case "adamw8bit":
		return imp.errAt("train.optimizer", "%q: LECO stops on it (its get_optimizer knows the 8-bit adam8bit and lion8bit only); valid values: adamw, adam, adam8bit, lion, lion8bit", t.Optimizer)
	default:
		return imp.errAt("train.optimizer", "invalid value %q (LECO stops on it too); valid values: adamw, adam, adam8bit, lion, lion8bit", t.Optimizer)
	}
	if strings.TrimSpace(t.OptimizerArgs) == "" {
		return nil
	}
	for _, arg := range strings.Fields(t.OptimizerArgs) {
		key, value, ok := strings.Cut(arg, "=")
		if !ok {
			return imp.errAt("train.optimizer_args", "%q is not key=value (LECO stops on it too)", arg)
		}
		if err := imp.optimizerArg(tr, name, key, value); err != nil {
			return err
		}
	}
	return nil
}

// optimizerArg maps one of train.optimizer_args (values are Python literals, as train_lora.py reads
// them with ast.literal_eval, passed as keyword arguments to the optimizer): weight_decay, betas and
// (Adam) eps are honoured; torch's implementation switches (foreach, fused, capturable, differentiable)
// and lion-pytorch's use_triton change nothing in the result (a warning); amsgrad and maximize are
// honoured when false and errors when true; anything else is an error.
func (imp *importer) optimizerArg(tr *Train, optimizer, key, value string) error {
	const path = "train.optimizer_args"
	adam := optimizer == "adam" || optimizer == "adamw" || optimizer == "adam8bit"
	switch {
	case key == "weight_decay" || key == "eps" && adam:
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return imp.errAt(path, "%s=%s: not a number", key, value)
		}
		if key == "eps" {
			tr.Eps = f
		} else {
			tr.WeightDecay = ptr(f)
		}
	case key == "betas":
		betas, err := parsePair(value)
		if err != nil {
			return imp.errAt(path, "betas=%s: %v; want two numbers, e.g. betas=(0.9,0.999)", value, err)
		}
		tr.Betas = betas
	case (key == "amsgrad" || key == "maximize") && adam:
		if value != "False" {
			return imp.errAt(path, "%s=%s is not supported: it changes the update and LOBA's AdamW has no %s; leave it out", key, value, key)
		}
	case slices.Contains([]string{"foreach", "fused", "capturable", "differentiable"}, key) && (optimizer == "adam" || optimizer == "adamw"),
		key == "use_triton" && optimizer == "lion":
		imp.warnAt(path, "%s=%s ignored: it picks how torch computes the update, not the update; LOBA compiles its own", key, value)
	default:
		return imp.errAt(path, "unsupported optimizer argument %q for %s; valid arguments: %s", key, optimizer, strings.Join(validOptimizerArgs(adam), ", "))
	}
	return nil
}

func validOptimizerArgs(adam bool) []string {
	if adam {
		return []string{"weight_decay", "betas", "eps", "amsgrad=False", "maximize=False", "foreach", "fused", "capturable", "differentiable"}
	}
	return []string{"weight_decay", "betas", "use_triton"}
}

// parsePair reads a Python tuple or list of two numbers: "(0.9,0.999)", "[0.9,0.99]".
func parsePair(value string) ([]float64, error) {
	parts := strings.Split(strings.Trim(value, "()[]"), ",")
	if len(parts) != 2 {
		return nil, strconv.ErrSyntax
	}
	out := make([]float64, 2)
	for i, s := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, err
		}
		out[i] = f
	}
	return out, nil
}
