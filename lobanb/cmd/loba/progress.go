package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/loba-dev/loba/lobanb/train"
)

// newBar is a progress bar of total items on w (count, rate and time left), described by desc. It
// draws every update it is given (callers throttle).
func newBar(w io.Writer, total int, desc string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(int64(max(total, 1)),
		progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(desc), progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(0))
}

// stepEvery is how often the training bar is redrawn at most.
const stepEvery = 200 * time.Millisecond

// trainWatch shows a training run on w: a bar of its steps that starts at the step the run
// continues from, the run's phases (compiling, training, evaluating …) and log lines above it,
// and then a bar of the evaluation's images. As an io.Writer it is the run's log (train.Options.Log).
type trainWatch struct {
	w             io.Writer
	quiet         bool
	steps, images *progressbar.ProgressBar
	open          bool      // the cursor is at the end of a bar's line
	drawn         time.Time // when the step bar was last drawn
}

// start hooks the watch into run's OnStep, OnPhase and OnEval (nothing when quiet), the step bar
// starting at run.StepsDone() of steps.
func (t *trainWatch) start(run *train.Run, steps int) {
	if t.quiet {
		return
	}
	t.steps = newBar(t.w, steps, "train")
	if from := run.StepsDone(); from > 0 {
		_ = t.steps.Set(min(from, steps))
		t.open = true
	}
	run.OnStep = func(step int, o train.StepOutputs, lr float64, _ time.Duration) {
		if time.Since(t.drawn) < stepEvery && step < steps {
			return
		}
		t.steps.Describe(fmt.Sprintf("loss %.4g lr %.2g", o.Loss, lr))
		_ = t.steps.Set(min(step, steps))
		t.open, t.drawn = true, time.Now()
	}
	run.OnPhase = func(phase string) { t.above(func() { fmt.Fprintln(t.w, phase) }) }
	run.OnEval = t.eval
}

// Write prints the run's log lines above the bar in progress.
func (t *trainWatch) Write(b []byte) (int, error) {
	var n int
	var err error
	t.above(func() { n, err = t.w.Write(b) })
	return n, err
}

// above prints a line above the bar in progress (drawn again below it), or below a finished one.
func (t *trainWatch) above(print func()) {
	bar := t.steps
	if t.images != nil {
		bar = t.images
	}
	switch {
	case !t.open:
		print()
	case bar.IsFinished():
		fmt.Fprintln(t.w)
		print()
		t.open = false
	default:
		_ = bar.Clear()
		print()
		fmt.Fprint(t.w, bar.String()) // its next update rewrites this line
	}
}

// eval draws the evaluation's images, on a bar of their own.
func (t *trainWatch) eval(done, total int) {
	if t.images == nil {
		if t.open {
			fmt.Fprintln(t.w)
		}
		t.images = newBar(t.w, total, "evaluating")
	}
	_ = t.images.Set(done)
	t.open = true
}

// close ends the line of the last bar.
func (t *trainWatch) close() {
	if t.open {
		fmt.Fprintln(t.w)
		t.open = false
	}
}

// imagesBar returns a progress function (done of total images) drawing a bar on w, nil when quiet,
// and the function that ends the bar's line.
func imagesBar(w io.Writer, desc string, quiet bool) (progress func(done, total int), end func()) {
	if quiet {
		return nil, func() {}
	}
	var bar *progressbar.ProgressBar
	return func(done, total int) {
			if bar == nil {
				bar = newBar(w, total, desc)
			}
			_ = bar.Set(done)
		}, func() {
			if bar != nil {
				fmt.Fprintln(w)
			}
		}
}

// sayOnInterrupt prints msg on w when the first Ctrl-C (SIGINT or SIGTERM) arrives, so that the
// stop train.StopOnSignal asks for is seen at once; the returned function undoes it.
func sayOnInterrupt(w io.Writer, msg string) (release func()) {
	ch := make(chan os.Signal, 1)
	done, finished := make(chan struct{}), make(chan struct{})
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		defer close(finished)
		select {
		case <-ch:
		case <-done:
			select { // a signal that came before release is still said
			case <-ch:
			default:
				return
			}
		}
		fmt.Fprintf(w, "\n%s\n", msg)
	}()
	return sync.OnceFunc(func() {
		signal.Stop(ch)
		close(done)
		<-finished
	})
}
