package eval

import "fmt"

// pacer reports an evaluation's progress and honours its stop request, one seed's images at a
// time (each seed is one sampling call: the images of a call share their batch, so that stopping or
// reporting inside one would change how they are sampled).
type pacer struct {
	progress       func(done, total int)
	stop           func() bool
	perSeed, seeds int // images per seed; seeds in all
}

// next is called before seed k's images: it reports 0 done before the first one, and returns an
// error wrapping ErrStopped when the evaluation was asked to stop.
func (p pacer) next(k int) error {
	if k == 0 && p.progress != nil {
		p.progress(0, p.perSeed*p.seeds)
	}
	if p.stop != nil && p.stop() {
		return fmt.Errorf("%w after %d of %d images", ErrStopped, k*p.perSeed, p.perSeed*p.seeds)
	}
	return nil
}

// done is called after seed k's images.
func (p pacer) done(k int) {
	if p.progress != nil {
		p.progress((k+1)*p.perSeed, p.perSeed*p.seeds)
	}
}
