package hub

import (
	"errors"
	"net/url"
	"strings"
)

// Messages never show a URL's query string (a CDN's signed download URL carries its signature
// there, e.g. X-Amz-Signature), its userinfo (a password in HF_ENDPOINT) nor the token. Go's
// *url.Error prints the whole URL, so request errors are rebuilt from a redacted URL and the
// inner error (see send), and every error leaving Resolve/ResolveFile is scrubbed once more.

// redactURL returns raw without its userinfo, query and fragment: "scheme://host/path".
func redactURL(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	authority, path := rest, ""
	if i := strings.Index(rest, "/"); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		authority = authority[i+1:]
	}
	return scheme + "://" + authority + path
}

// redactedHost is the host[:port] of raw, for messages.
func redactedHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return redactURL(raw)
	}
	return u.Host
}

// secrets lists the strings no message may hold: the token and the endpoint's password. Short
// values (under 4 characters) are left out, not to mangle unrelated words.
func (c *client) secrets() []string {
	var s []string
	add := func(v string) {
		if len(v) >= 4 {
			s = append(s, v)
		}
	}
	add(c.token)
	if u := c.endpoint.User; u != nil {
		p, _ := u.Password()
		add(p)
	}
	return s
}

// scrub replaces any secret found in msg.
func scrub(msg string, secrets []string) string {
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "***")
	}
	return msg
}

// redactedError is an error whose message had secrets replaced; errors.Is/As still see the
// original chain.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// scrubError returns err, or a redactedError when its message holds a secret.
func (c *client) scrubError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := scrub(msg, c.secrets()); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}

// unwrapURLError drops a *url.Error's URL, keeping its inner error.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
