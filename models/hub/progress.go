package hub

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress is the download display of one Resolve or ResolveFile call: one bar for a batch of
// downloads (a few run at once, and one bar per file would garble the terminal), whose total is
// known before the first byte (the HEADs come first), counting the bytes on disk, with the rate.
// It draws on Options.Progress and is quiet when that is nil. Notes (downloads started, retries)
// go to Options.Logf, else to Options.Progress, after clearing the bar so they do not mix.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	logf    func(format string, args ...any)
	desc    string
	bar     *progressbar.ProgressBar
	done    int64
	total   int64
	secrets []string
}

// note prints one message line (secrets scrubbed).
func (p *progress) note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	msg := scrub(fmt.Sprintf(format, args...), p.secrets)
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	switch {
	case p.logf != nil:
		p.logf("%s", msg)
	case p.w != nil:
		fmt.Fprintln(p.w, msg)
	}
	p.render()
}

// start begins a bar for a batch of downloads of total bytes (none when total <= 0 or there is
// no writer).
func (p *progress) start(total int64) {
	p.finish(false)
	if p.w == nil || total <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.total = 0, total
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription(p.desc),
		progressbar.OptionShowBytes(true), progressbar.OptionShowTotalBytes(true), progressbar.OptionShowCount(), progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetPredictTime(true))
	p.render()
}

// grow adds n bytes to the total: a download whose size was not known when the batch started.
func (p *progress) grow(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil || n <= 0 {
		return
	}
	p.total += n
	p.render()
}

// add counts n more bytes on disk (n < 0: a partial file restarted from 0).
func (p *progress) add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil || n == 0 {
		return
	}
	p.done += n
	p.render()
}

// render draws the bar at done/total, never full before finish; p.mu is held.
func (p *progress) render() {
	if p.bar == nil {
		return
	}
	top := max(p.total, p.done+1)
	if p.bar.GetMax64() != top {
		p.bar.ChangeMax64(top)
	}
	_ = p.bar.Set64(max(p.done, 0))
}

// finish ends the bar, if any: full when ok, else left where it stopped; then a new line.
func (p *progress) finish(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil {
		return
	}
	if ok {
		p.bar.ChangeMax64(max(p.total, p.done, 1))
		_ = p.bar.Finish()
	}
	fmt.Fprintln(p.w)
	p.bar = nil
}
