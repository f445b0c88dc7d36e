package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Retries follow huggingface_hub's http_backoff: a few attempts, an exponential wait from 1 s
// doubling up to 8 s, here with ±25% jitter so that parallel downloads do not retry in step. A
// 429 or 503 answer's Retry-After (seconds or an HTTP date) is honoured instead, up to
// maxRetryAfter. Each retry is said on Options.Logf, else Options.Progress.
const (
	maxAttempts   = 5
	retryBase     = time.Second
	retryMaxWait  = 8 * time.Second
	maxRetryAfter = time.Minute
	maxMetaBody   = 64 << 20 // the largest metadata answer read (a repository's file list)
)

// retryWait is the wait before attempt+1, after attempt failed: the server's Retry-After when
// given (capped), else the jittered exponential backoff.
func retryWait(attempt int, after time.Duration) time.Duration {
	if after > 0 {
		return min(after, maxRetryAfter)
	}
	d := min(retryBase<<(attempt-1), retryMaxWait)
	return time.Duration(float64(d) * (0.75 + 0.5*rand.Float64()))
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date; 0 when absent or
// unreadable.
func parseRetryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// backoff says a retry of label ("retrying in 2s (attempt 2/5): 503 Service Unavailable") and
// waits for it; it returns the context's error when the wait is cut short.
func (c *client) backoff(ctx context.Context, label string, failed int, te *transientError) error {
	d := retryWait(failed, te.after)
	c.note("hub: %s: retrying in %v (attempt %d/%d): %s", label, d.Round(100*time.Millisecond), failed+1, maxAttempts, te.reason)
	return c.sleep(ctx, d)
}

// sleepCtx waits d, or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// gaveUp is the error of the last attempt, saying how many there were.
func gaveUp(te *transientError, attempts int) error {
	return fmt.Errorf("%w (gave up after %d attempts)", te.err, attempts)
}

// metaRequest makes a metadata request (the repository info, a file's HEAD) with retries, and
// reads its answer's body (at most maxMetaBody bytes) when the status is 2xx. A 5xx or 429 answer
// that lasts through every attempt is returned like any other status, for the caller's error.
func (c *client) metaRequest(ctx context.Context, hc *http.Client, method, u string, auth bool, label string) (*http.Response, []byte, error) {
	for attempt := 1; ; attempt++ {
		resp, body, err := c.metaOnce(ctx, hc, method, u, auth)
		if err != nil {
			err = relabel("hub: "+label, err)
		}
		var te *transientError
		switch {
		case err == nil && retryableStatus(resp.StatusCode) && attempt < maxAttempts:
			te = &transientError{err: fmt.Errorf("HTTP %s", resp.Status), reason: resp.Status, after: parseRetryAfter(resp.Header)}
		case err == nil:
			return resp, body, nil
		case !errors.As(err, &te):
			return nil, nil, err
		case attempt >= maxAttempts:
			return nil, nil, gaveUp(te, attempt)
		}
		if err := c.backoff(ctx, label, attempt, te); err != nil {
			return nil, nil, fmt.Errorf("hub: %s: %w", label, err)
		}
	}
}

// metaOnce is one attempt of metaRequest.
func (c *client) metaOnce(ctx context.Context, hc *http.Client, method, u string, auth bool) (*http.Response, []byte, error) {
	resp, err := c.send(ctx, hc, method, u, auth, nil, c.metaTimeout)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		drain(resp.Body)
		return resp, nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetaBody))
	if err != nil {
		what := fmt.Sprintf("%s %s: reading the answer", method, redactURL(u))
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("%s: %w", what, ctx.Err())
		}
		ne := &netError{fmt.Errorf("%s: %w", what, err)}
		if errors.Is(err, ErrTimeout) || transientNet(err) {
			return nil, nil, &transientError{err: ne, reason: err.Error()}
		}
		return nil, nil, ne
	}
	return resp, body, nil
}
