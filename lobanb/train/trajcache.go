package train

// The fast modes of docs/ALGORITHMS.md §4. A LOBA step spends ~90% of its time in the partial denoise:
// k frozen-model sampler steps from fresh noise, thrown away after one optimizer step. Two ways out:
//
//   - the trajectory cache (trajectory_cache: {size, refresh_every}): Size partial-denoise trajectories
//     of every group are generated together up front — every latent after k = 0 … maxK steps kept —
//     and each step samples (x_t, t*) from them; every refresh_every steps they are generated again,
//     from the current adapter when the run denoises with it (on-policy);
//   - denoise none: x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε (the scheduler's add_noise), x₀ from a pool of Size
//     batches per group that the frozen base model sampled once (x0_pool.steps sampler steps), t
//     uniform in the timestep range (or, x0_pool.timesteps partial, the t* the partial denoise would
//     reach).
//
// Both are generated as ONE batch per latent shape — every group's prompts and every trajectory —
// so a generation costs maxK (or N) denoise calls whatever the number of groups, and both are
// written to the run folder (DIR/cache/trajectories.safetensors), so a resumed run or a later cell
// reads them instead of generating them again. They draw their noise from a stream of their own:
// the run's RNG (checkpointed) draws the same values whether a generation is generated or read.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/loba-dev/loba/models/safetensors"
	"github.com/loba-dev/loba/models/sd"
)

const (
	trajKeyMeta  = "loba.trajectory_key"
	trajGenMeta  = "loba.generation"
	trajKindMeta = "loba.kind"
	// trajVersion is part of the key: bump it when what a generation holds changes.
	trajVersion = "1"
)

// trajectories holds what the fast modes sample from.
type trajectories struct {
	pool bool // denoise none's x₀ pool; else the trajectory cache
	// poolNeutral samples the pool for the entries' neutral prompts (x0_pool.prompt neutral);
	// uniformT draws the pool's t uniformly in the timestep range (x0_pool.timesteps uniform).
	poolNeutral, uniformT bool
	// size is the number of trajectories (pool batches) of every group; refreshEvery > 0 generates
	// them again every that many steps.
	size, refreshEvery int
	// steps are the sampler steps a generation takes: max k (the cache), or the pool's sampler's.
	steps     int
	path, key string
	seed      uint64
	// gen is the generation held (-1: none); x[gi] are group gi's latents, [size, depth, B, C, H, W]
	// flat.
	gen int
	x   [][]float32
	// generated and read count the generations made and read from the run folder (tests, log).
	generated, read int
}

// depth is the number of latents kept per trajectory: x after k = 0 … steps (the cache), or x₀
// alone (the pool).
func (c *trajectories) depth() int {
	if c.pool {
		return 1
	}
	return c.steps + 1
}

// kind names the two in the run folder's file and the log.
func (c *trajectories) kind() string {
	if c.pool {
		return "x0_pool"
	}
	return "trajectory_cache"
}

// genFor is the generation in use at optimizer step step (1-based): generation g serves steps
// g·R+1 … (g+1)·R and is made from the adapter after g·R steps.
func (c *trajectories) genFor(step int) int {
	if c.pool || c.refreshEvery <= 0 {
		return 0
	}
	return (step - 1) / c.refreshEvery
}

// at is trajectory j of group gi after k steps (the cache) or pool batch j's x₀ (k = 0), dims [B, C,
// H, W].
func (c *trajectories) at(gi, j, k int, dims []int) []float32 {
	n := 1
	for _, d := range dims {
		n *= d
	}
	off := (j*c.depth() + k) * n
	return append([]float32(nil), c.x[gi][off:off+n]...)
}

// trajectoryKey identifies what a generation depends on: the trained function (trainedFunction: the
// model settings, prompts, network, seed, the fast-mode settings …) and the model folder.
func trajectoryKey(function map[string]string, modelDir string) (string, error) {
	abs, err := filepath.Abs(modelDir)
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(struct {
		Version, Model string
		Function       map[string]string
	}{trajVersion, abs, function})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// ensureTrajectories makes generation gen current: held, else read from the run folder, else generated
// (and written there).
func (l *loop) ensureTrajectories(gen int) error {
	c := l.traj
	if c.gen == gen {
		return nil
	}
	if ok, why := l.readTrajectories(gen); ok {
		c.read++
		l.logf("%s generation %d read from %s", c.kind(), gen, c.path)
		return nil
	} else if why != "" {
		l.logf("%s %s not used (%s): generating again", c.kind(), c.path, why)
	}
	if err := l.generateTrajectories(gen); err != nil {
		return fmt.Errorf("generating the %s (generation %d): %w", c.kind(), gen, err)
	}
	c.generated++
	if err := l.writeTrajectories(); err != nil {
		return fmt.Errorf("writing the %s: %w", c.kind(), err)
	}
	return nil
}

// generateTrajectories generates generation gen: for each latent shape, one batch holding every
// group's batch size times, each with initial noise of its own, denoised c.steps steps with the
// adapter at the groups' multipliers (the cache, when the run denoises with it) or off.
func (l *loop) generateTrajectories(gen int) error {
	c := l.traj
	rng := NewRNG(c.seed + uint64(gen+1)*0x9e3779b97f4a7c15) // a stream of its own (see the file comment)
	byShape := map[[2]int][]int{}
	var shapes [][2]int
	for gi, g := range l.groups {
		s := [2]int{g[0].LatentH, g[0].LatentW}
		if byShape[s] == nil {
			shapes = append(shapes, s)
		}
		byShape[s] = append(byShape[s], gi)
	}
	x := make([][]float32, len(l.groups))
	for _, s := range shapes {
		if err := l.generateShape(rng, byShape[s], s[0], s[1], x); err != nil {
			return err
		}
	}
	c.x, c.gen = x, gen
	return nil
}

// generateShape generates the groups gis of latent size h×w into out.
func (l *loop) generateShape(rng *RNG, gis []int, h, w int, out [][]float32) error {
	c := l.traj
	ch := l.latentChannels
	var unc, tgt []*sd.Conditioning
	var uncIDs, tgtIDs [][]*tensors.Tensor // per trajectory, one [B, S] per text encoder
	var mult, x0 []float32
	rows := 0
	for _, gi := range gis {
		batch, err := l.batch(gi)
		if err != nil {
			return err
		}
		m, err := tensors.CopyFlatData[float32](batch.multiplier)
		if err != nil {
			return err
		}
		if c.pool || !l.draw.denoiseWithAdapter {
			m = make([]float32, batch.size) // the frozen base model
		}
		for j := 0; j < c.size; j++ {
			noise, err := l.initialLatentsFrom(rng, batch.size, h, w)
			if err != nil {
				return err
			}
			x0 = append(x0, noise...)
			prompt := &batch.target
			if c.poolNeutral {
				prompt = &batch.neutral
			}
			unc, tgt = append(unc, &batch.unconditional), append(tgt, prompt)
			uncIDs, tgtIDs = append(uncIDs, batch.uncondIDs), append(tgtIDs, batch.targetIDs)
			mult = append(mult, m...)
		}
		out[gi] = make([]float32, c.size*c.depth()*batch.size*ch*h*w)
		rows += c.size * batch.size
	}
	u, err := sd.ConcatConditionings(unc...)
	if err != nil {
		return err
	}
	t, err := sd.ConcatConditionings(tgt...)
	if err != nil {
		return err
	}
	record := func(k int, flat []float32) {
		off := 0
		for _, gi := range gis {
			b := l.batches[gi].size * ch * h * w
			for j := 0; j < c.size; j++ {
				copy(out[gi][(j*c.depth()+k)*b:], flat[off:off+b])
				off += b
			}
		}
	}
	if !c.pool {
		record(0, x0)
	}
	var ids []*tensors.Tensor // the unconditional then the target ids, one [rows, S] per text encoder
	if l.denoiseText && !c.pool {
		for _, perEncoder := range append(byEncoder(uncIDs), byEncoder(tgtIDs)...) {
			stacked, err := sd.ConcatRows[int32](perEncoder)
			if err != nil {
				return err
			}
			ids = append(ids, stacked)
		}
	}
	xt := tensors.FromFlatDataAndDimensions(x0, rows, ch, h, w)
	multT := tensors.FromFlatDataAndDimensions(mult, rows)
	timesteps := l.draw.genSched.Timesteps()
	for i := 0; i < c.steps; i++ {
		var stepNoise *tensors.Tensor
		if l.graphs.denoise.NeedsNoise {
			stepNoise = tensors.FromFlatDataAndDimensions(rng.Normal(rows*ch*h*w), rows, ch, h, w)
		}
		if xt, err = l.graphs.denoise.Run(xt, int64(timesteps[i]), *u, *t, multT, stepNoise, ids...); err != nil {
			return err
		}
		if !c.pool || i == c.steps-1 {
			flat, err := tensors.CopyFlatData[float32](xt)
			if err != nil {
				return err
			}
			k := i + 1
			if c.pool {
				k = 0
			}
			record(k, flat)
		}
	}
	return nil
}

// trajName is group gi's tensor in the run folder's file.
func trajName(gi int) string { return "group." + strconv.Itoa(gi) }

// trajDims is group gi's tensor shape: [size, depth, B, C, H, W].
func (l *loop) trajDims(gi int) ([]int, error) {
	b, err := l.batch(gi)
	if err != nil {
		return nil, err
	}
	g := l.groups[gi][0]
	return []int{l.traj.size, l.traj.depth(), b.size, l.latentChannels, g.LatentH, g.LatentW}, nil
}

// writeTrajectories writes the generation held to the run folder (atomically).
func (l *loop) writeTrajectories() error {
	c := l.traj
	ts := make(map[string]*tensors.Tensor, len(c.x))
	for gi, flat := range c.x {
		dims, err := l.trajDims(gi)
		if err != nil {
			return err
		}
		ts[trajName(gi)] = tensors.FromFlatDataAndDimensions(flat, dims...)
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return err
	}
	return safetensors.Write(c.path, ts, map[string]string{trajKeyMeta: c.key, trajGenMeta: strconv.Itoa(c.gen), trajKindMeta: c.kind()})
}

// readTrajectories reads generation gen from the run folder: ok false when the file is absent, holds
// another generation, was made for another key, or cannot be read (why says which, "" when absent).
func (l *loop) readTrajectories(gen int) (ok bool, why string) {
	c := l.traj
	if _, err := os.Stat(c.path); err != nil {
		return false, ""
	}
	f, err := safetensors.Open(c.path)
	if err != nil {
		return false, err.Error()
	}
	defer f.Close()
	meta := f.Metadata()
	switch {
	case meta[trajKindMeta] != c.kind() || meta[trajKeyMeta] != c.key:
		return false, "made for another model or preset"
	case meta[trajGenMeta] != strconv.Itoa(gen):
		return false, fmt.Sprintf("it holds generation %s, this step needs %d", meta[trajGenMeta], gen)
	}
	x := make([][]float32, len(l.groups))
	for gi := range l.groups {
		dims, err := l.trajDims(gi)
		if err != nil {
			return false, err.Error()
		}
		t, err := f.FiniteTensor(trajName(gi), dtypes.Float32)
		if err != nil {
			return false, err.Error()
		}
		if got := t.Shape().Dimensions; fmt.Sprint(got) != fmt.Sprint(dims) {
			return false, fmt.Sprintf("%s has shape %v, want %v", trajName(gi), got, dims)
		}
		if x[gi], err = tensors.CopyFlatData[float32](t); err != nil {
			return false, err.Error()
		}
	}
	c.x, c.gen = x, gen
	return true, ""
}

// byEncoder regroups per-trajectory id tensors (each one [B, S] per text encoder) by text encoder:
// out[e] lists encoder e's tensors in trajectory order.
func byEncoder(perTrajectory [][]*tensors.Tensor) [][]*tensors.Tensor {
	if len(perTrajectory) == 0 {
		return nil
	}
	out := make([][]*tensors.Tensor, len(perTrajectory[0]))
	for _, ts := range perTrajectory {
		for e, t := range ts {
			out[e] = append(out[e], t)
		}
	}
	return out
}
