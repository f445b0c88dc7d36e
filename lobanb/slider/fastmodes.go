package slider

// The fast modes of docs/ALGORITHMS.md §4: what each training step draws its (x_t, t*) from instead
// of a partial denoise from fresh noise.
const (
	// DenoisePartial is the partial denoise of §1 (every step, or from the trajectory cache).
	DenoisePartial = "partial"
	// DenoiseNone draws x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε with x₀ from a pool the base model generated once.
	DenoiseNone = "none"
)

var validDenoise = []string{DenoisePartial, DenoiseNone}

// TrajectoryCache keeps the partial denoise's trajectories (mode loba, denoise partial): Size
// trajectories of every group (each one batch, from its own initial noise) are generated together up
// front and every step samples (x_t, t*) from them instead of denoising. RefreshEvery > 0 generates
// them again every that many steps (from the current adapter when denoise_with_adapter, on-policy);
// 0 never. Size 0 (default) is off.
type TrajectoryCache struct {
	Size         int `yaml:"size" json:"size"`
	RefreshEvery int `yaml:"refresh_every" json:"refresh_every"`
}

// X0Pool is denoise none's pool of clean latents: Size batches of every group, generated once by the
// frozen base model: Steps sampler steps (denoise_scheduler at denoise_guidance).
type X0Pool struct {
	Size  int `yaml:"size" json:"size"`   // default 4
	Steps int `yaml:"steps" json:"steps"` // default max_denoising_steps
	// Prompt is the prompt each entry's x₀ are sampled for: target (default: the partial denoise's
	// prompt) | neutral. An erase converges to latents like its neutral prompt's (a red shape erased
	// is a shape of another colour), the ones an on-policy partial denoise trains on (ESD, LECO's
	// denoise_with_adapter); the frozen model's samples of the neutral prompt stand in for them.
	Prompt string `yaml:"prompt" json:"prompt"`
	// Timesteps is how t is drawn: uniform (default: any integer timestep in timestep_range, as iLECO
	// and docs/ALGORITHMS.md §4) | partial (the t* the partial denoise would reach, its k drawn as
	// there: only the sampler's own timesteps).
	Timesteps string `yaml:"timesteps" json:"timesteps"`
}

// X0Pool.Prompt and X0Pool.Timesteps values.
const (
	PoolTarget  = "target"
	PoolNeutral = "neutral"

	PoolPartialTimesteps = "partial"
	PoolUniformTimesteps = "uniform"
)

// fillFastDefaults sets denoise and the pool size.
func (p *Preset) fillFastDefaults() {
	setStr(&p.Denoise, DenoisePartial)
	if p.Denoise == DenoiseNone {
		setInt(&p.X0Pool.Size, 4)
		setInt(&p.X0Pool.Steps, p.MaxDenoisingSteps)
		setStr(&p.X0Pool.Prompt, PoolTarget)
		setStr(&p.X0Pool.Timesteps, PoolUniformTimesteps)
	}
}

// validateFast checks denoise, trajectory_cache and x0_pool.
func (p *Preset) validateFast(v *validator) {
	v.enum("denoise", p.Denoise, validDenoise)
	c := p.TrajectoryCache
	v.check(c.Size >= 0, "trajectory_cache.size", c.Size, ">= 0 (0 = off)")
	v.check(c.RefreshEvery >= 0, "trajectory_cache.refresh_every", c.RefreshEvery, ">= 0 (0 = never)")
	if c.Size > 0 && p.Mode == ModeLECO {
		v.add("trajectory_cache", "is a mode loba option: mode leco reproduces the anchors' partial denoise at every step")
	}
	if c.Size == 0 && c.RefreshEvery > 0 {
		v.add("trajectory_cache.refresh_every", "%d without a size: set trajectory_cache.size (> 0) to use the cache", c.RefreshEvery)
	}
	if p.Denoise == DenoiseNone {
		if p.Mode == ModeLECO {
			v.add("denoise", "none is a mode loba option: mode leco reproduces the anchors' partial denoise")
		}
		if c.Size > 0 {
			v.add("trajectory_cache", "has nothing to cache with denoise none (there is no partial denoise); remove one of them")
		}
		if *p.DenoiseWithAdapter {
			v.add("denoise_with_adapter", "true with denoise none, which has no partial denoise (its x₀ pool is the frozen model's); set it to false, or use trajectory_cache with refresh_every for on-policy latents")
		}
		v.check(p.X0Pool.Size >= 1, "x0_pool.size", p.X0Pool.Size, ">= 1")
		v.check(p.X0Pool.Steps >= 1, "x0_pool.steps", p.X0Pool.Steps, ">= 1")
		v.enum("x0_pool.prompt", p.X0Pool.Prompt, []string{PoolTarget, PoolNeutral})
		v.enum("x0_pool.timesteps", p.X0Pool.Timesteps, []string{PoolUniformTimesteps, PoolPartialTimesteps})
	} else if p.X0Pool != (X0Pool{}) {
		v.add("x0_pool", "is denoise none's pool; denoise is %s", p.Denoise)
	}
}
