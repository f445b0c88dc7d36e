package toybase

import (
	"fmt"
	"image"
	"math/rand/v2"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/sd"
	"github.com/loba-dev/loba/models/toyworld"
)

// CheckReport is the base model's accuracy: the fraction of generated images whose read-out
// matches the attribute the full caption asked for.
type CheckReport struct {
	ColorAccuracy      float64 `json:"color_accuracy"`
	SizeAccuracy       float64 `json:"size_accuracy"`
	ShapeAccuracy      float64 `json:"shape_accuracy"`
	BackgroundAccuracy float64 `json:"background_accuracy"`
	Samples            int     `json:"samples"`
	// Confusion counts, per attribute, the read-out class for each asked class:
	// confusion["size"]["small"]["medium"] = small shapes asked for that read as medium.
	Confusion     map[string]map[string]map[string]int `json:"confusion"`
	Steps         int                                  `json:"steps"`
	GuidanceScale float64                              `json:"guidance_scale"`
	// Coupling is the colour–size coupling (CheckOptions.Coupling scenes; nil when 0).
	Coupling *Coupling `json:"color_size_coupling,omitempty"`
}

// CheckOptions configures Check.
type CheckOptions struct {
	Samples       int     // default 200
	Seed          uint64  // scenes and latents
	Steps         int     // sampler steps (default 20)
	GuidanceScale float64 // default 3
	// Coupling > 0 also measures the colour–size coupling on that many scenes (five images each).
	Coupling int
	// CouplingSized names a size (drawn per scene) in every coupling prompt.
	CouplingSized bool
	Backend       compute.Backend
}

// Check samples one image per random scene from its full caption and reads the attributes back.
func Check(dir string, o CheckOptions) (*CheckReport, error) {
	c, err := NewChecker(dir, o)
	if err != nil {
		return nil, err
	}
	return c.Run()
}

// Checker runs Check repeatedly on one loaded pipeline (its sampling graphs compile once), e.g. on
// the weights of a model in training, copied in by Refresh.
type Checker struct {
	p *sd.Pipeline
	o CheckOptions
}

// NewChecker loads the toy model in dir for checking.
func NewChecker(dir string, o CheckOptions) (*Checker, error) {
	if o.Samples <= 0 {
		o.Samples = 200
	}
	if o.Steps <= 0 {
		o.Steps = 20
	}
	if o.GuidanceScale == 0 {
		o.GuidanceScale = 3
	}
	p, err := sd.LoadPipeline(dir, sd.PipelineOptions{Backend: o.Backend})
	if err != nil {
		return nil, err
	}
	if !p.ToyLatents() {
		return nil, fmt.Errorf("toybase: %s is not a toy-world model", dir)
	}
	return &Checker{p: p, o: o}, nil
}

// Refresh copies every weight of the checked model from src, where the weight at scope S is found
// at srcRoot+S (e.g. srcRoot "/ema" for the trainer's EMA weights).
func (c *Checker) Refresh(src *model.Scope, srcRoot string) error {
	for v := range c.p.Ctx.IterVariables() {
		sv := src.Store().GetVariable(model.JoinPath(srcRoot+v.Scope(), v.Name()))
		if sv == nil {
			return fmt.Errorf("toybase: check: no weight %s/%s in the trained model", srcRoot+v.Scope(), v.Name())
		}
		t, err := sv.Value()
		if err != nil {
			return err
		}
		if t, err = t.LocalClone(); err != nil {
			return err
		}
		if err := v.SetValue(t); err != nil {
			return err
		}
	}
	return nil
}

// Run samples o.Samples scenes (seeded by o.Seed) and scores the read-outs.
func (c *Checker) Run() (*CheckReport, error) {
	scenes, imgs, err := c.generate()
	if err != nil {
		return nil, err
	}
	r := score(scenes, imgs)
	r.Steps, r.GuidanceScale = c.o.Steps, c.o.GuidanceScale
	if c.o.Coupling > 0 {
		if r.Coupling, err = c.coupling(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// generate draws the scenes and samples one image for each from its full caption.
func (c *Checker) generate() ([]toyworld.Scene, []image.Image, error) {
	o := c.o
	rng := rand.New(rand.NewPCG(o.Seed, 0x70b))
	scenes := make([]toyworld.Scene, o.Samples)
	prompts := make([]string, o.Samples)
	for i := range scenes {
		scenes[i] = toyworld.Sample(rng)
		prompts[i] = toyworld.FullCaption(scenes[i])
	}
	imgs, err := c.sample(prompts)
	return scenes, imgs, err
}

// sample draws one image per prompt with the check's sampler settings; prompt i draws its noise from
// PCG(Seed, i), whatever the prompts.
func (c *Checker) sample(prompts []string) ([]image.Image, error) {
	return c.p.Sample(sd.SampleRequest{Prompts: prompts, Width: ImageSize, Height: ImageSize, Steps: c.o.Steps,
		GuidanceScale: c.o.GuidanceScale, Seed: c.o.Seed, BatchSize: 50})
}

func score(scenes []toyworld.Scene, imgs []image.Image) *CheckReport {
	r := &CheckReport{Samples: len(scenes), Confusion: map[string]map[string]map[string]int{}}
	for i, img := range imgs {
		got := toyworld.Read(img)
		s := scenes[i]
		gs := toyworld.Scene{Shape: got.Shape, Color: got.Color, Size: got.Size, Background: got.Background}
		for _, a := range toyworld.Attributes() {
			asked, read := s.Attr(a), gs.Attr(a)
			if r.Confusion[a] == nil {
				r.Confusion[a] = map[string]map[string]int{}
			}
			if r.Confusion[a][asked] == nil {
				r.Confusion[a][asked] = map[string]int{}
			}
			r.Confusion[a][asked][read]++
		}
		if got.Color == s.Color {
			r.ColorAccuracy++
		}
		if got.Size == s.Size {
			r.SizeAccuracy++
		}
		if got.Shape == s.Shape {
			r.ShapeAccuracy++
		}
		if got.Background == s.Background {
			r.BackgroundAccuracy++
		}
	}
	n := float64(len(scenes))
	r.ColorAccuracy /= n
	r.SizeAccuracy /= n
	r.ShapeAccuracy /= n
	r.BackgroundAccuracy /= n
	return r
}
