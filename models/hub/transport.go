package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"time"
)

// reqTimeout is the idle timeout of one kind of request, with what sets it (for messages).
type reqTimeout struct {
	d            time.Duration
	env, optName string
}

// send makes one request to the Hub (auth: with the token) or the CDN, under an idle watchdog
// of t: the answer's headers must come within t.d, then every read of the body must bring bytes
// within t.d (see watchedBody); closing the body ends the watchdog. Errors ("GET URL: …", for
// the caller to prefix) never hold the URL's query or userinfo. A failure to reach the server
// is a *netError (a cached copy may then be used); one worth retrying (refused, reset, EOF) is
// also a *transientError. A timeout waiting for the answer is not retried, as in huggingface_hub:
// the server was reached and said nothing, and waiting again would only multiply the time
// before the user hears of it.
func (c *client) send(ctx context.Context, hc *http.Client, method, u string, auth bool, hdr http.Header, t reqTimeout) (*http.Response, error) {
	what := method + " " + redactURL(u)
	wd := newWatchdog(ctx, t.d, &timeoutError{what: "no answer from " + redactedHost(u), d: t.d, env: t.env, optName: t.optName})
	req, err := http.NewRequestWithContext(wd.ctx, method, u, nil)
	if err != nil {
		wd.stop()
		return nil, fmt.Errorf("%s: %v", what, unwrapURLError(err))
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept-Encoding", "identity")
	if auth && c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		fired := wd.fired()
		wd.stop()
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("%s: %w", what, ctx.Err())
		case fired:
			return nil, &netError{fmt.Errorf("%s: %w", what, context.Cause(wd.ctx))}
		}
		inner := unwrapURLError(err)
		ne := &netError{fmt.Errorf("%s: %w", what, inner)}
		if transientNet(inner) {
			return nil, &transientError{err: ne, reason: inner.Error()}
		}
		return nil, ne
	}
	wd.kick()
	resp.Body = &watchedBody{rc: resp.Body, wd: wd, host: redactedHost(u), t: t}
	return resp, nil
}

// watchedBody is a response body under a watchdog: each read that brings bytes restarts its
// countdown, and a read cut by it fails with a *timeoutError.
type watchedBody struct {
	rc   io.ReadCloser
	wd   *watchdog
	host string
	t    reqTimeout
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.wd.kick()
	}
	if err != nil && err != io.EOF && b.wd.fired() {
		err = &timeoutError{what: "no data from " + b.host, d: b.t.d, env: b.t.env, optName: b.t.optName}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.rc.Close()
	b.wd.stop()
	return err
}

// transientError is a failure worth retrying: a reset or refused connection, an early EOF, a
// stalled body, a 5xx or 429 answer. after is the server's Retry-After (0: none).
type transientError struct {
	err    error
	reason string // for the retry note: "503 Service Unavailable", "connection reset by peer"
	after  time.Duration
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// transientNet reports whether a network error is worth retrying: the connection was refused,
// reset or cut short. DNS failures, TLS and certificate errors are not (a retry would fail the
// same way, and an offline machine should fall back to its cache at once).
func transientNet(err error) bool {
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
		io.EOF, io.ErrUnexpectedEOF} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// retryableStatus reports whether an HTTP answer is worth retrying: 429 Too Many Requests and
// the 5xx server errors. Other 4xx (401, 403, 404, …) are final.
func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || (code >= 500 && code <= 599)
}

// drain closes a body after reading a little of it, so the connection can be reused.
func drain(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 64<<10)
	_ = body.Close()
}
