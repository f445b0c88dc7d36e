package hub

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMessagesHideSecrets: with a password in HF_ENDPOINT, a token, and a Hub that redirects
// downloads to a signed CDN URL (?X-Amz-Signature=…) that then fails in various ways, no error,
// log line or progress output holds the password, the signature or the token; the host is
// still named.
func TestMessagesHideSecrets(t *testing.T) {
	const token = "hf_SuperSecretToken123"
	for _, failure := range []string{"cdn 403", "cdn 500", "cdn drops", "cdn stalls", "api 404", "api refused"} {
		t.Run(failure, func(t *testing.T) {
			h, _, _, sum := setupBig(t)
			t.Setenv(EnvToken, token)
			u, err := url.Parse(h.URL())
			require.NoError(t, err)
			host := u.Host
			u.User = url.UserPassword("user", "secret")
			t.Setenv(EnvEndpoint, u.String())
			h.Mu.Lock()
			h.CDNQuery = "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=deadbeef0123"
			if failure == "cdn stalls" {
				h.StallAt[sum] = 100_000
			}
			h.Mu.Unlock()
			h.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.HasPrefix(r.URL.Path, "/cdn/") {
					return false
				}
				switch failure {
				case "cdn 403":
					w.WriteHeader(http.StatusForbidden)
				case "cdn 500":
					w.WriteHeader(http.StatusInternalServerError)
				case "cdn drops":
					conn, _, _ := w.(http.Hijacker).Hijack()
					_ = conn.Close()
				default:
					return false
				}
				return true
			})
			ref := repoBig
			switch failure {
			case "api 404":
				ref += "@no-such-branch"
			case "api refused":
				h.Srv.Close()
			}
			var log, bar syncBuffer
			opts := Options{sleep: noSleep, Logf: log.logf, Progress: &bar, DownloadTimeout: 200 * time.Millisecond}
			err = within(t, 10*time.Second, func() error { _, err := Resolve(context.Background(), ref, opts); return err })
			if failure == "cdn stalls" { // once: the timeout is logged, the retry succeeds
				require.NoError(t, err)
				require.Contains(t, log.String(), "timed out: no data from "+host)
				err = errors.New(host)
			}
			require.Error(t, err)
			text := err.Error() + "\n" + log.String() + "\n" + bar.String()
			t.Logf("%s", text)
			for _, secret := range []string{"secret", "Signature", "X-Amz", "AKIA", token} {
				require.NotContains(t, text, secret)
			}
			require.Contains(t, err.Error(), host, "the server is still named")
			var he *HTTPError
			if errors.As(err, &he) {
				require.NotContains(t, he.URL, "secret")
			}
		})
	}
}

// TestRedactURL: userinfo, query and fragment go; scheme, host and path stay.
func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pw@hub.example:8443/api/models/a/b?x=1#f": "https://hub.example:8443/api/models/a/b",
		"https://cdn.example/repos/ab/cd/sha?X-Amz-Signature=s": "https://cdn.example/repos/ab/cd/sha",
		"http://127.0.0.1:5000":                                 "http://127.0.0.1:5000",
		"http://u:p@w@host/p@q":                                 "http://host/p@q",
		"not a url?secret":                                      "not a url",
	} {
		require.Equal(t, want, redactURL(in), in)
	}
	c := &client{token: "hf_abcdef", endpoint: &url.URL{User: url.UserPassword("u", "hunter22")}}
	err := c.scrubError(errors.New("server said: bad token hf_abcdef for hunter22"))
	require.Equal(t, "server said: bad token *** for ***", err.Error())
	_, err = newClient(Options{Endpoint: "ftp://user:hunter22@host/?sig=1"})
	require.ErrorContains(t, err, "invalid endpoint")
	require.NotContains(t, err.Error(), "hunter22")
	require.NotContains(t, err.Error(), "sig=")
}
