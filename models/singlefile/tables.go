package singlefile

import (
	"fmt"
	"sort"
	"strings"
)

// Op is the tensor operation from a single-file tensor to its diffusers tensor.
type Op int

const (
	// OpCopy: same tensor, renamed.
	OpCopy Op = iota
	// OpSqueeze1x1: a 1×1 conv kernel [O, I, 1, 1] used as a Linear weight [O, I] (VAE mid-block
	// attention q/k/v/proj_out). The data is unchanged; only the shape drops the two 1s.
	OpSqueeze1x1
	// OpTranspose: a 2-D matrix transposed (OpenCLIP text_projection [width, proj] is used as
	// x @ P; the Linear text_projection.weight is [proj, width] = Pᵀ).
	OpTranspose
	// OpSplitQKV: rows [Part·n/3, (Part+1)·n/3) of a fused OpenCLIP attn.in_proj_weight [3n, n] or
	// in_proj_bias [3n]; Part 0 = q_proj, 1 = k_proj, 2 = v_proj.
	OpSplitQKV
)

func (o Op) String() string {
	switch o {
	case OpCopy:
		return "copy"
	case OpSqueeze1x1:
		return "squeeze_1x1"
	case OpTranspose:
		return "transpose"
	case OpSplitQKV:
		return "split_qkv"
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Key is one row of a single-file table: the single-file tensor From becomes, after Op,
// the tensor To of the diffusers component Component. A fused tensor has several rows (one per
// OpSplitQKV part).
type Key struct {
	From      string // key in the single file, e.g. "model.diffusion_model.input_blocks.1.0.in_layers.0.weight"
	Component string // "unet", "vae", "text_encoder" or "text_encoder_2"
	To        string // diffusers/transformers key inside the component, e.g. "down_blocks.0.resnets.0.norm1.weight"
	Op        Op
	Part      int // OpSplitQKV only: 0 = q, 1 = k, 2 = v
}

func (k Key) String() string {
	op := k.Op.String()
	if k.Op == OpSplitQKV {
		op = fmt.Sprintf("%s:%d", op, k.Part)
	}
	return fmt.Sprintf("%s -> %s/%s [%s]", k.From, k.Component, k.To, op)
}

// ConvertShape returns the diffusers shape of a single-file tensor of shape from, or an error when
// the shape does not fit the operation.
func (k Key) ConvertShape(from []int) ([]int, error) {
	switch k.Op {
	case OpCopy:
		return append([]int(nil), from...), nil
	case OpSqueeze1x1:
		if len(from) != 4 || from[2] != 1 || from[3] != 1 {
			return nil, fmt.Errorf("singlefile: %s: want a [O, I, 1, 1] kernel, got %v", k.From, from)
		}
		return []int{from[0], from[1]}, nil
	case OpTranspose:
		if len(from) != 2 {
			return nil, fmt.Errorf("singlefile: %s: want a matrix to transpose, got %v", k.From, from)
		}
		return []int{from[1], from[0]}, nil
	case OpSplitQKV:
		if len(from) < 1 || from[0]%3 != 0 || k.Part < 0 || k.Part > 2 {
			return nil, fmt.Errorf("singlefile: %s: want a fused [3n, …] q/k/v tensor, got %v (part %d)", k.From, from, k.Part)
		}
		out := append([]int(nil), from...)
		out[0] /= 3
		return out, nil
	}
	return nil, fmt.Errorf("singlefile: %s: unknown operation %v", k.From, k.Op)
}

// ConvertTensor applies k.Op to a row-major tensor (any element type: float32, raw F16
// bits, …) and returns the diffusers data and shape. OpCopy/OpSqueeze1x1 return data itself; the
// other operations return a new slice.
func ConvertTensor[T any](k Key, data []T, shape []int) ([]T, []int, error) {
	out, err := k.ConvertShape(shape)
	if err != nil {
		return nil, nil, err
	}
	size := 1
	for _, d := range shape {
		size *= d
	}
	if len(data) != size {
		return nil, nil, fmt.Errorf("singlefile: %s: %d values for shape %v", k.From, len(data), shape)
	}
	switch k.Op {
	case OpTranspose:
		rows, cols := shape[0], shape[1]
		res := make([]T, len(data))
		for r := range rows {
			for c := range cols {
				res[c*rows+r] = data[r*cols+c]
			}
		}
		return res, out, nil
	case OpSplitQKV:
		part := size / 3
		return append([]T(nil), data[k.Part*part:(k.Part+1)*part]...), out, nil
	}
	return data, out, nil
}

// Ignore is a single-file key (or key prefix) that is not loaded on purpose.
type Ignore struct {
	Key    string
	Prefix bool // Key is a prefix
	Reason string
}

// ldmSchedule are the 12 DDPM schedule buffers CompVis' LatentDiffusion registers.
var ldmSchedule = []string{"betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
	"sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
	"sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
	"posterior_mean_coef1", "posterior_mean_coef2"}

// Table is the generated key table of one layout.
type Table struct {
	Kind   string
	Keys   []Key    // in generation order
	Ignore []Ignore // keys a file may hold that are skipped, with the reason
	byFrom map[string][]int
	byTo   map[string]int // Component + "/" + To
}

// Lookup returns the rows of a single-file key (nil when the table has none).
func (t *Table) Lookup(from string) []Key {
	var out []Key
	for _, i := range t.byFrom[from] {
		out = append(out, t.Keys[i])
	}
	return out
}

// Target returns the row producing the diffusers key to of component.
func (t *Table) Target(component, to string) (Key, bool) {
	i, ok := t.byTo[component+"/"+to]
	if !ok {
		return Key{}, false
	}
	return t.Keys[i], true
}

// Component returns the rows of one component ("unet", "vae", "text_encoder", "text_encoder_2").
func (t *Table) Component(component string) []Key {
	var out []Key
	for _, k := range t.Keys {
		if k.Component == component {
			out = append(out, k)
		}
	}
	return out
}

// Components lists the components of the table, sorted.
func (t *Table) Components() []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range t.Keys {
		if !seen[k.Component] {
			seen[k.Component] = true
			out = append(out, k.Component)
		}
	}
	sort.Strings(out)
	return out
}

// Ignored returns the reason a single-file key is skipped, if it is.
func (t *Table) Ignored(key string) (reason string, ok bool) {
	for _, ig := range t.Ignore {
		if key == ig.Key || (ig.Prefix && strings.HasPrefix(key, ig.Key)) {
			return ig.Reason, true
		}
	}
	return "", false
}

// Match compares the keys of a single file with the table: missing lists the table's single-file
// keys the file lacks; unexpected lists the file keys that are neither in the table nor ignored.
// Both are sorted.
func (t *Table) Match(fileKeys []string) (missing, unexpected []string) {
	have := make(map[string]bool, len(fileKeys))
	for _, k := range fileKeys {
		have[k] = true
		if _, ok := t.byFrom[k]; !ok {
			if _, ign := t.Ignored(k); !ign {
				unexpected = append(unexpected, k)
			}
		}
	}
	for from := range t.byFrom {
		if !have[from] {
			missing = append(missing, from)
		}
	}
	sort.Strings(missing)
	sort.Strings(unexpected)
	return missing, unexpected
}

// Table generates the key table of the layout. Every diffusers key is produced exactly once. The
// layout's configs are validated first (unet, vae and clip Validate), so a hand-built layout that
// does not fit gives an error.
func (l *Layout) Table() (*Table, error) {
	if err := l.validate(); err != nil {
		return nil, fmt.Errorf("single-file layout %q: %w", l.Kind, err)
	}
	t := &Table{Kind: l.Kind, byFrom: map[string][]int{}, byTo: map[string]int{}}
	var dup []string
	add := func(from, comp, to string, op Op, part int) {
		if _, ok := t.byTo[comp+"/"+to]; ok {
			dup = append(dup, comp+"/"+to)
			return
		}
		t.byTo[comp+"/"+to] = len(t.Keys)
		t.byFrom[from] = append(t.byFrom[from], len(t.Keys))
		t.Keys = append(t.Keys, Key{From: from, Component: comp, To: to, Op: op, Part: part})
	}
	unetRows(l.UNet, l.UNetPrefix, func(from, to string, op Op) { add(from, "unet", to, op, 0) })
	vaeRows(l.VAE, l.VAEPrefix, func(from, to string, op Op) { add(from, "vae", to, op, 0) })
	for _, te := range l.Text {
		te.rows(func(from, to string, op Op, part int) { add(from, te.Component, to, op, part) })
	}
	if len(dup) > 0 {
		return nil, fmt.Errorf("single-file layout %q: the table produces keys twice: %s", l.Kind, strings.Join(dup, ", "))
	}
	t.Ignore = l.ignored()
	return t, nil
}

// ignored lists the keys of the layout's files that are skipped on purpose.
func (l *Layout) ignored() []Ignore {
	var out []Ignore
	for _, k := range ldmSchedule {
		out = append(out, Ignore{Key: k,
			Reason: "CompVis DDPM schedule buffer [1000]; the scheduler recomputes it from scheduler_config.json"})
	}
	out = append(out,
		Ignore{Key: "model_ema.decay", Reason: "EMA bookkeeping scalar, not a weight"},
		Ignore{Key: "model_ema.num_updates", Reason: "EMA bookkeeping scalar, not a weight"},
		Ignore{Key: "model_ema.", Prefix: true, Reason: "EMA copies of the UNet (v1-5-pruned.safetensors, dots " +
			"removed from the names); the model.diffusion_model.* weights are loaded, as diffusers does without extract_ema"},
		Ignore{Key: "denoiser.sigmas", Reason: "SGM DiscreteDenoiser buffer [1000]; the scheduler recomputes the sigmas"},
	)
	for _, te := range l.Text {
		if te.OpenCLIP {
			out = append(out, Ignore{Key: te.Prefix + "logit_scale",
				Reason: "open_clip contrastive temperature (scalar), unused for text conditioning"})
			if !te.Config.WithProjection() {
				out = append(out, Ignore{Key: te.Prefix + "text_projection",
					Reason: "projection unused by a CLIPTextModel without projection"})
			}
		} else {
			out = append(out, Ignore{Key: te.Prefix + "text_model.embeddings.position_ids",
				Reason: "int64 arange buffer, persistent only in transformers < 4.31; current CLIP text models do not have it"})
		}
	}
	return out
}
