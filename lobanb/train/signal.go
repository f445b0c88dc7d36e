package train

import (
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// StopOnSignal turns the first SIGINT or SIGTERM (Ctrl-C, a notebook's interrupt) into a request
// to stop (for loop.Stop): the run checkpoints the step it reached and returns ErrInterrupted. A
// second signal gets the default behaviour (the process ends). release undoes the handler.
func StopOnSignal() (stop func() bool, release func()) {
	var stopped atomic.Bool
	ch := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			stopped.Store(true)
			signal.Reset(os.Interrupt, syscall.SIGTERM)
		case <-done:
		}
	}()
	var once atomic.Bool
	return stopped.Load, func() {
		if once.CompareAndSwap(false, true) {
			signal.Stop(ch)
			close(done)
		}
	}
}
