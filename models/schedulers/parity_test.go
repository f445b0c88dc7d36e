package schedulers

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/safetensors"
)

const parityTol = 1e-5

// caseFile is the part of a fixture's case.json the parity test reads.
type caseFile struct {
	Computation       string   `json:"computation"`
	StepIndices       []int    `json:"step_indices"`
	NumInferenceSteps *int     `json:"num_inference_steps"`
	Eta               *float64 `json:"eta"`
	SChurn            *float64 `json:"s_churn"`
	STMin             *float64 `json:"s_tmin"`
	STMax             *float64 `json:"s_tmax"`
	SNoise            *float64 `json:"s_noise"`
}

var (
	reSetTimesteps = regexp.MustCompile(`set_timesteps\(\s*(?:num_inference_steps\s*=\s*)?(\d+)\s*\)`)
	reStepKey      = regexp.MustCompile(`^out\.step(\d+)\.(prev_sample|pred_original_sample|scaled_model_input)$`)
)

// kwarg finds `name=<number>` in the computation string.
func kwarg(computation, name string) (float64, bool) {
	re := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\s*=\s*([-+0-9.eE]+|float\("inf"\)|inf)`)
	m := re.FindStringSubmatch(computation)
	if m == nil {
		return 0, false
	}
	if strings.Contains(m[1], "inf") {
		return math.Inf(1), true
	}
	v, err := strconv.ParseFloat(strings.TrimRight(m[1], "."), 64)
	return v, err == nil
}

// stepOptions reads eta / s_churn / s_tmin / s_tmax / s_noise from case.json fields or, failing
// that, from the computation string.
func (c *caseFile) stepOptions() StepOptions {
	get := func(field *float64, name string) float64 {
		if field != nil {
			return *field
		}
		v, _ := kwarg(c.Computation, name)
		return v
	}
	return StepOptions{
		Eta:    get(c.Eta, "eta"),
		SChurn: get(c.SChurn, "s_churn"),
		STMin:  get(c.STMin, "s_tmin"),
		STMax:  get(c.STMax, "s_tmax"),
		SNoise: get(c.SNoise, "s_noise"),
	}
}

// numInferenceSteps is num_inference_steps from case.json, else from `set_timesteps(n)` in the
// computation, else from the length of out.timesteps (or out.sigmas minus one); 0 when the case
// never calls set_timesteps.
func (c *caseFile) numInferenceSteps(f *safetensors.File) (int, string) {
	if c.NumInferenceSteps != nil {
		return *c.NumInferenceSteps, "case.json num_inference_steps"
	}
	if m := reSetTimesteps.FindStringSubmatch(c.Computation); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, "computation " + m[0]
	}
	if info, ok := f.Info("out.timesteps"); ok && len(info.Shape) == 1 {
		return info.Shape[0], "len(out.timesteps)"
	}
	if info, ok := f.Info("out.sigmas"); ok && len(info.Shape) == 1 {
		return info.Shape[0] - 1, "len(out.sigmas)-1"
	}
	return 0, ""
}

// ioReader reads io tensors and records which inputs were used.
type ioReader struct {
	t    *testing.T
	f    *safetensors.File
	used map[string]bool
}

func (r *ioReader) has(name string) bool { _, ok := r.f.Info(name); return ok }

func (r *ioReader) floats(name string) ([]float32, []int) {
	r.t.Helper()
	r.used[name] = true
	v, shape, err := r.f.Float32s(name)
	if err != nil {
		r.t.Fatalf("reading %s: %v", name, err)
	}
	return v, shape
}

// tensor returns name as a tensor of its own dtype (int64 for integer tensors, float32 otherwise)
// and its values as float64.
func (r *ioReader) tensor(name string) (*tensors.Tensor, []float64) {
	r.t.Helper()
	r.used[name] = true
	info, ok := r.f.Info(name)
	if !ok {
		r.t.Fatalf("io.safetensors has no %s", name)
	}
	if info.DType.IsInt() {
		v, shape, err := r.f.Int64s(name)
		if err != nil {
			r.t.Fatalf("reading %s: %v", name, err)
		}
		return tensors.FromFlatDataAndDimensions(v, shape...), toFloat64s(v)
	}
	v, shape := r.floats(name)
	return tensors.FromFlatDataAndDimensions(v, shape...), toFloat64s(v)
}

func checkClose(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d values, want %d", what, len(got), len(want))
		return
	}
	rel := testutil.RelErr(got, want)
	exact := slices.Equal(got, want)
	if rel >= parityTol || math.IsNaN(rel) {
		t.Errorf("%s: relative L2 error %.3g >= %g", what, rel, parityTol)
		return
	}
	t.Logf("%s: rel %.3g (bit-exact %v)", what, rel, exact)
}

// runGraph builds and runs fn once on the test backend, turning panics into test failures.
func runGraph(t *testing.T, backend compute.Backend, fn func(in []*Node) []*Node, args ...any) [][]float32 {
	t.Helper()
	var outs []*tensors.Tensor
	err := exceptions.TryCatch[error](func() { outs = MustExecOnceN(backend, fn, args...) })
	if err != nil {
		t.Fatalf("graph: %+v", err)
	}
	res := make([][]float32, len(outs))
	for i, o := range outs {
		res[i] = tensors.MustCopyFlatData[float32](o)
	}
	return res
}

func TestParity(t *testing.T) {
	backend := testutil.Backend(t)
	for _, dir := range fixtures.Cases(t, "scheduler") {
		t.Run(filepath.Base(dir), func(t *testing.T) { runCase(t, backend, dir) })
	}
}

func runCase(t *testing.T, backend compute.Backend, dir string) {
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var cf caseFile
	data, err := os.ReadFile(filepath.Join(dir, "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cf); err != nil {
		t.Fatalf("case.json: %v", err)
	}
	f, err := safetensors.Open(filepath.Join(dir, "io.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &ioReader{t: t, f: f, used: map[string]bool{}}

	n, source := cf.numInferenceSteps(f)
	if n > 0 {
		t.Logf("num_inference_steps %d (from %s)", n, source)
		if err := s.SetTimesteps(n); err != nil {
			t.Fatal(err)
		}
	}

	steps := map[int][]string{} // step index -> output names
	for _, name := range f.Names() {
		switch {
		case strings.HasPrefix(name, "in."):
			continue
		case strings.HasPrefix(name, "dbg."):
			t.Logf("ignoring debug tensor %s", name)
			continue
		case !strings.HasPrefix(name, "out."):
			t.Errorf("io tensor %s is neither in.*, out.* nor dbg.*", name)
			continue
		}
		if m := reStepKey.FindStringSubmatch(name); m != nil {
			i, _ := strconv.Atoi(m[1])
			steps[i] = append(steps[i], name)
			continue
		}
		checkTable(t, s, r, name)
	}

	for _, i := range cf.StepIndices {
		if _, ok := steps[i]; !ok {
			t.Errorf("case.json step_indices lists %d but io.safetensors has no out.step%d.*", i, i)
		}
	}
	indices := make([]int, 0, len(steps))
	for i := range steps {
		indices = append(indices, i)
	}
	sort.Ints(indices)
	for _, i := range indices {
		if n == 0 {
			t.Errorf("out.step%d.* present but the number of inference steps is unknown", i)
			continue
		}
		checkStep(t, backend, s, r, i, steps[i], cf.stepOptions())
	}
	checkAddNoise(t, backend, s, r, f)

	for _, name := range f.Names() {
		if strings.HasPrefix(name, "in.") && !r.used[name] {
			t.Errorf("input %s was not used by any recognised output", name)
		}
	}
}

// checkTable compares one schedule-table output (betas, alphas_cumprod, timesteps, ...).
func checkTable(t *testing.T, s Scheduler, r *ioReader, name string) {
	t.Helper()
	switch name {
	case "out.noisy_samples", "out.velocity":
		return // checkAddNoise
	case "out.betas":
		want, _ := r.floats(name)
		checkClose(t, name, s.Betas(), want)
	case "out.alphas_cumprod":
		want, _ := r.floats(name)
		checkClose(t, name, s.AlphasCumprod(), want)
	case "out.final_alpha_cumprod":
		d, ok := s.(*DDIMScheduler)
		if !ok {
			t.Errorf("%s: only DDIMScheduler has final_alpha_cumprod, this is %T", name, s)
			return
		}
		want, _ := r.floats(name)
		checkClose(t, name, []float32{d.FinalAlphaCumprod()}, want)
	case "out.init_noise_sigma":
		want, _ := r.floats(name)
		checkClose(t, name, []float32{s.InitNoiseSigma()}, want)
	case "out.sigmas":
		e, ok := s.(*EulerDiscreteScheduler)
		if !ok {
			t.Errorf("%s: only EulerDiscreteScheduler has sigmas, this is %T", name, s)
			return
		}
		want, _ := r.floats(name)
		checkClose(t, name, e.Sigmas(), want)
	case "out.timesteps":
		info, _ := r.f.Info(name)
		got := s.Timesteps()
		if info.DType.IsInt() {
			want, _, err := r.f.Int64s(name)
			if err != nil {
				t.Fatal(err)
			}
			gotInt := make([]int64, len(got))
			for i, v := range got {
				gotInt[i] = int64(v)
			}
			if !slices.Equal(gotInt, want) {
				t.Errorf("%s: got %v, want %v", name, gotInt, want)
			}
			return
		}
		want, _ := r.floats(name)
		got32 := make([]float32, len(got))
		for i, v := range got {
			got32[i] = float32(v)
		}
		checkClose(t, name, got32, want)
	default:
		t.Errorf("output %s is not recognised by this test", name)
	}
}

// checkStep runs step (and scale_model_input) at s.Timesteps()[i] on the host and in a graph (with a
// scalar timestep and with one timestep per batch item).
func checkStep(t *testing.T, backend compute.Backend, s Scheduler, r *ioReader, i int, outs []string, opts StepOptions) {
	t.Helper()
	ts := s.Timesteps()
	if i >= len(ts) {
		t.Errorf("step index %d out of range: %d timesteps", i, len(ts))
		return
	}
	timestep := ts[i]
	prefix := fmt.Sprintf("in.step%d.", i)
	if r.has(prefix + "timestep") { // an explicit timestep input, if a case provides one
		_, v := r.tensor(prefix + "timestep")
		if len(v) != 1 {
			t.Fatalf("%stimestep: want one value, got %d", prefix, len(v))
		}
		if v[0] != timestep {
			t.Logf("%stimestep %g differs from timesteps[%d] = %g; using the input", prefix, v[0], i, timestep)
		}
		timestep = v[0]
	}
	sample, shape := r.floats(prefix + "sample")
	var noise []float32
	for _, name := range []string{"noise", "variance_noise"} {
		if r.has(prefix + name) {
			noise, _ = r.floats(prefix + name)
		}
	}
	wants := map[string][]float32{}
	for _, name := range outs {
		wants[name], _ = r.floats(name)
	}
	timestepTensor := func(batch int) *tensors.Tensor {
		if _, isEuler := s.(*EulerDiscreteScheduler); isEuler {
			if batch == 0 {
				return tensors.FromScalar(float32(timestep))
			}
			return tensors.FromFlatDataAndDimensions(slices.Repeat([]float32{float32(timestep)}, batch), batch)
		}
		if batch == 0 {
			return tensors.FromScalar(int64(timestep))
		}
		return tensors.FromFlatDataAndDimensions(slices.Repeat([]int64{int64(timestep)}, batch), batch)
	}
	sampleT := tensors.FromFlatDataAndDimensions(sample, shape...)

	outName := func(kind string) string { return fmt.Sprintf("out.step%d.%s", i, kind) }
	if want, ok := wants[outName("scaled_model_input")]; ok {
		got, err := s.ScaleModelInput(sample, timestep)
		if err != nil {
			t.Fatal(err)
		}
		checkClose(t, outName("scaled_model_input")+" (host)", got, want)
		for _, batch := range []int{0, shape[0]} {
			res := runGraph(t, backend, func(in []*Node) []*Node {
				return []*Node{s.ScaleModelInputGraph(in[0], in[1])}
			}, sampleT, timestepTensor(batch))
			checkClose(t, fmt.Sprintf("%s (graph, timestep dims %d)", outName("scaled_model_input"), min(batch, 1)), res[0], want)
		}
	}

	wantPrev, hasPrev := wants[outName("prev_sample")]
	wantX0, hasX0 := wants[outName("pred_original_sample")]
	if !hasPrev && !hasX0 {
		return
	}
	modelOutput, _ := r.floats(prefix + "model_output")
	got, err := s.Step(modelOutput, timestep, sample, noise, opts)
	if err != nil {
		t.Fatal(err)
	}
	if hasPrev {
		checkClose(t, outName("prev_sample")+" (host)", got.PrevSample, wantPrev)
	}
	if hasX0 {
		checkClose(t, outName("pred_original_sample")+" (host)", got.PredOriginalSample, wantX0)
	}
	modelT := tensors.FromFlatDataAndDimensions(modelOutput, shape...)
	for _, batch := range []int{0, shape[0]} {
		args := []any{modelT, timestepTensor(batch), sampleT}
		if noise != nil {
			args = append(args, tensors.FromFlatDataAndDimensions(noise, shape...))
		}
		res := runGraph(t, backend, func(in []*Node) []*Node {
			var nz *Node
			if len(in) > 3 {
				nz = in[3]
			}
			prev, x0 := s.StepGraph(in[0], in[1], in[2], nz, opts)
			return []*Node{prev, x0, s.PredOriginalGraph(in[0], in[1], in[2])}
		}, args...)
		dims := min(batch, 1)
		if hasPrev {
			checkClose(t, fmt.Sprintf("%s (graph, timestep dims %d)", outName("prev_sample"), dims), res[0], wantPrev)
		}
		if hasX0 {
			checkClose(t, fmt.Sprintf("%s (graph, timestep dims %d)", outName("pred_original_sample"), dims), res[1], wantX0)
			if !s.Config().ClipSample || s.Config().ClassName == ClassEulerDiscrete {
				checkClose(t, fmt.Sprintf("%s (PredOriginalGraph, timestep dims %d)", outName("pred_original_sample"), dims), res[2], wantX0)
			}
		}
	}
}

// checkAddNoise checks out.noisy_samples = add_noise(in.original_samples, in.noise, in.timesteps)
// and out.velocity = get_velocity(in.original_samples, in.noise, in.timesteps), host and graph.
func checkAddNoise(t *testing.T, backend compute.Backend, s Scheduler, r *ioReader, f *safetensors.File) {
	t.Helper()
	for _, kind := range []string{"noisy_samples", "velocity"} {
		name := "out." + kind
		if !r.has(name) {
			continue
		}
		want, _ := r.floats(name)
		x0, shape := r.floats("in.original_samples")
		noise, _ := r.floats("in.noise")
		tsT, ts := r.tensor("in.timesteps")
		var got []float32
		var err error
		if kind == "velocity" {
			got, err = s.GetVelocity(x0, noise, ts)
		} else {
			got, err = s.AddNoise(x0, noise, ts)
		}
		if err != nil {
			t.Fatal(err)
		}
		checkClose(t, name+" (host)", got, want)
		res := runGraph(t, backend, func(in []*Node) []*Node {
			if kind == "velocity" {
				return []*Node{s.GetVelocityGraph(in[0], in[1], in[2])}
			}
			return []*Node{s.AddNoiseGraph(in[0], in[1], in[2])}
		}, tensors.FromFlatDataAndDimensions(x0, shape...), tensors.FromFlatDataAndDimensions(noise, shape...), tsT)
		checkClose(t, name+" (graph)", res[0], want)
	}
}
