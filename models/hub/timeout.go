package hub

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout is the metadata and download timeout when neither Options nor the environment
// sets one: huggingface_hub's DEFAULT_ETAG_TIMEOUT and DEFAULT_DOWNLOAD_TIMEOUT (10 s).
const DefaultTimeout = 10 * time.Second

// ErrTimeout is wrapped by the error of a request that got no answer, or no new bytes, within its
// timeout (Options.MetadataTimeout or Options.DownloadTimeout).
var ErrTimeout = errors.New("timed out")

// timeoutSetting resolves one timeout: the option when set, else the environment variable env
// (seconds, decimals allowed: "2.5"), else DefaultTimeout. huggingface_hub reads whole seconds;
// decimals are accepted here too, so tests and slow links can say "0.3" or "90.5".
func timeoutSetting(opt time.Duration, optName, env string) (time.Duration, error) {
	if opt < 0 {
		return 0, fmt.Errorf("hub: Options.%s is %v: want a positive duration (0 means $%s, else %v)", optName, opt, env, DefaultTimeout)
	}
	if opt > 0 {
		return opt, nil
	}
	v := strings.TrimSpace(os.Getenv(env))
	if v == "" {
		return DefaultTimeout, nil
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(secs) || secs <= 0 || secs > 1e6 {
		return 0, fmt.Errorf("hub: %s=%q is not a timeout: want a number of seconds > 0, such as 10 or 2.5", env, v)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// timeoutError says which request timed out, after how long, and how to wait longer.
type timeoutError struct {
	what    string // "no answer from HOST" (headers) or "no data from HOST" (body)
	d       time.Duration
	env     string // the variable that sets d
	optName string // the Options field that sets d
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("timed out: %s for %v (a slow network or an unresponsive server; set %s, in seconds, or Options.%s to wait longer)",
		e.what, e.d, e.env, e.optName)
}

// Is makes errors.Is(err, ErrTimeout) true.
func (e *timeoutError) Is(target error) bool { return target == ErrTimeout }

// watchdog cancels a request's context when it makes no progress for d: the answer's headers
// must come within d, then each read of the body must bring bytes within d of the previous one.
// It is an idle timeout, never a total deadline: a slow but moving download is never cut.
type watchdog struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	d      time.Duration
}

// newWatchdog starts a watchdog over parent; cause is the error the context is cancelled with.
func newWatchdog(parent context.Context, d time.Duration, cause error) *watchdog {
	ctx, cancel := context.WithCancelCause(parent)
	w := &watchdog{ctx: ctx, cancel: cancel, d: d}
	w.timer = time.AfterFunc(d, func() { cancel(cause) })
	return w
}

// kick restarts the countdown (progress was made).
func (w *watchdog) kick() { w.timer.Reset(w.d) }

// fired reports whether the watchdog (not the parent context) cancelled the request.
func (w *watchdog) fired() bool {
	var te *timeoutError
	return errors.As(context.Cause(w.ctx), &te)
}

// stop ends the watchdog and releases its context.
func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel(context.Canceled)
}
