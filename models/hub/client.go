package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The Hub's HTTP protocol, as used by huggingface_hub (hf_api.py repo_info, file_download.py
// get_hf_file_metadata / http_get):
//   - GET  {endpoint}/api/models/{repo}/revision/{rev}  → {"sha": commit, "siblings": [{"rfilename"}]}
//   - HEAD {endpoint}/{repo}/resolve/{rev}/{path}       → X-Repo-Commit, X-Linked-Etag or ETag (the
//     blob name: sha256 of LFS files), X-Linked-Size or Content-Length; LFS files answer 302 to a
//     CDN (absolute Location), relative redirects are followed.
//   - GET  the resolved URL → the content.

const userAgent = "loba-hub/1 (Go; huggingface_hub-compatible cache)"

// maxParallelDownloads bounds concurrent file downloads in one Resolve.
const maxParallelDownloads = 4

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// client holds the resolved settings of one Resolve/ResolveFile call.
type client struct {
	opts            Options
	endpoint        *url.URL
	token           string
	cacheDir        string
	offline         bool
	http            *http.Client
	noRedirect      *http.Client
	metaTimeout     reqTimeout
	downloadTimeout reqTimeout
	sleep           func(context.Context, time.Duration) error
	progress        *progress
}

func newClient(opts Options) (*client, error) {
	c := &client{opts: opts, token: opts.Token, cacheDir: opts.CacheDir, offline: opts.Offline || OfflineFromEnv()}
	ep := strings.TrimRight(opts.Endpoint, "/")
	if ep == "" {
		ep = EndpointFromEnv()
	}
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("hub: invalid endpoint %q (want http(s)://host[/path])", redactURL(ep))
	}
	c.endpoint = u
	if c.token == "" {
		c.token = TokenFromEnv()
	}
	if c.cacheDir == "" {
		c.cacheDir = CacheDir()
	}
	meta, err := timeoutSetting(opts.MetadataTimeout, "MetadataTimeout", EnvEtagTimeout)
	if err != nil {
		return nil, err
	}
	dl, err := timeoutSetting(opts.DownloadTimeout, "DownloadTimeout", EnvDownloadTimeout)
	if err != nil {
		return nil, err
	}
	c.metaTimeout = reqTimeout{d: meta, env: EnvEtagTimeout, optName: "MetadataTimeout"}
	c.downloadTimeout = reqTimeout{d: dl, env: EnvDownloadTimeout, optName: "DownloadTimeout"}
	c.sleep = opts.sleep
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	c.progress = &progress{w: opts.Progress, logf: opts.Logf, desc: "hub", secrets: c.secrets()}
	c.http = opts.HTTPClient
	if c.http == nil {
		c.http = &http.Client{}
	}
	nr := *c.http
	nr.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.noRedirect = &nr
	return c, nil
}

// note says a message on the progress output (see progress.note).
func (c *client) note(format string, args ...any) { c.progress.note(format, args...) }

// netError marks a failure to reach the Hub (no HTTP response), after which a cached snapshot
// may be used.
type netError struct{ err error }

func (e *netError) Error() string { return e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

// HTTPError is an error answer of the Hub. It wraps ErrUnauthorized (401, 403) or ErrNotFound (404).
type HTTPError struct {
	Repo, Revision, File string // File is "" for API requests
	URL                  string // without its query string and userinfo
	Status               int
	Code, Message        string // the Hub's X-Error-Code and X-Error-Message headers
	TokenSent            bool
}

func (e *HTTPError) Error() string {
	what := fmt.Sprintf("repository %q at revision %q", e.Repo, e.Revision)
	if e.File != "" {
		what = fmt.Sprintf("file %q of %s", e.File, what)
	}
	var hint string
	switch {
	case e.Status == http.StatusUnauthorized:
		hint = "the repository is private or gated, or does not exist"
		if e.TokenSent {
			hint += "; the token sent was refused or lacks access"
		} else {
			hint += "; no token was sent: set HF_TOKEN (or Options.Token)"
		}
	case e.Status == http.StatusForbidden:
		hint = "access forbidden: for a gated model accept its conditions on the model page, and check the token's permissions"
	case e.Status == http.StatusNotFound && e.Code == "RevisionNotFound":
		hint = "the revision does not exist"
	case e.Status == http.StatusNotFound && e.Code == "EntryNotFound":
		hint = "the file does not exist at that revision"
	case e.Status == http.StatusNotFound && e.Code == "RepoNotFound":
		hint = "the repository does not exist"
	case e.Status == http.StatusNotFound:
		hint = "not found"
	case e.Status == http.StatusTooManyRequests:
		hint = "rate-limited, still after retries: wait a while and try again"
	case e.Status >= 500:
		hint = "a server error on the Hub's side, still after retries: try again later"
	default:
		hint = "unexpected answer"
	}
	msg := fmt.Sprintf("hub: %s: HTTP %d %s (%s) [%s]", what, e.Status, http.StatusText(e.Status), hint, e.URL)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

func (e *HTTPError) Unwrap() error {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrUnauthorized
	case http.StatusNotFound:
		return ErrNotFound
	}
	return nil
}

func (c *client) httpError(resp *http.Response, repo, rev, file, u string) error {
	return &HTTPError{Repo: repo, Revision: rev, File: file, URL: redactURL(u), Status: resp.StatusCode,
		Code: resp.Header.Get("X-Error-Code"), Message: resp.Header.Get("X-Error-Message"), TokenSent: c.token != ""}
}

// repoURL is {endpoint}/{repo}/{suffix...}, each suffix segment path-escaped.
func (c *client) repoURL(repo string, suffix ...string) string {
	u := strings.TrimRight(c.endpoint.String(), "/") + "/" + repo
	for _, s := range suffix {
		u += "/" + s
	}
	return u
}

func escapeFilePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// revisionInfo is the part of the API's model info that is used.
type revisionInfo struct {
	SHA      string `json:"sha"`
	Siblings []struct {
		Name string `json:"rfilename"`
	} `json:"siblings"`
}

// revisionInfo fetches the commit and file list of repo at rev.
func (c *client) revisionInfo(ctx context.Context, repo, rev string) (*revisionInfo, error) {
	u := strings.TrimRight(c.endpoint.String(), "/") + "/api/models/" + repo + "/revision/" + url.PathEscape(rev)
	resp, body, err := c.metaRequest(ctx, c.http, http.MethodGet, u, true, repo+"@"+rev)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.httpError(resp, repo, rev, "", u)
	}
	var info revisionInfo
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("hub: %s@%s: parsing %s: %w", repo, rev, redactURL(u), err)
	}
	if !isCommit(info.SHA) {
		return nil, fmt.Errorf("hub: %s@%s: the API answered commit %q, not a 40-hex hash (%s)", repo, rev, info.SHA, redactURL(u))
	}
	return &info, nil
}

// fileMeta is what a HEAD on resolve/{rev}/{file} tells.
type fileMeta struct {
	commit, etag string
	size         int64  // -1 when unknown
	downloadURL  string // where to GET the content
}

// head fetches the metadata of one file, following relative redirects only.
func (c *client) head(ctx context.Context, repo, rev, file string) (*fileMeta, error) {
	u := c.repoURL(repo, "resolve", url.PathEscape(rev), escapeFilePath(file))
	cur := u
	for hops := 0; ; hops++ {
		resp, _, err := c.metaRequest(ctx, c.noRedirect, http.MethodHead, cur, c.sameHost(cur), fileLabel(repo, rev, file))
		if err != nil {
			return nil, err
		}
		h := resp.Header
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := url.Parse(h.Get("Location"))
			if err != nil || h.Get("Location") == "" {
				return nil, fmt.Errorf("hub: %s: redirect %d without a valid Location", redactURL(cur), resp.StatusCode)
			}
			base, _ := url.Parse(cur)
			next := base.ResolveReference(loc).String()
			if loc.Host == "" { // relative: a renamed repo or the resolve cache, keep asking
				if hops >= 10 {
					return nil, fmt.Errorf("hub: %s: too many redirects", redactURL(u))
				}
				cur = next
				continue
			}
			return c.metaFrom(h, resp, repo, rev, file, next)
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			return c.metaFrom(h, resp, repo, rev, file, cur)
		default:
			return nil, c.httpError(resp, repo, rev, file, u)
		}
	}
}

func (c *client) metaFrom(h http.Header, resp *http.Response, repo, rev, file, downloadURL string) (*fileMeta, error) {
	m := &fileMeta{commit: h.Get("X-Repo-Commit"), downloadURL: downloadURL, size: -1}
	etag := h.Get("X-Linked-Etag")
	if etag == "" {
		etag = h.Get("ETag")
	}
	etag = strings.Trim(strings.TrimPrefix(strings.TrimSpace(etag), "W/"), `"`)
	if etag == "" || strings.ContainsAny(etag, `/\`) || etag == "." || etag == ".." {
		return nil, fmt.Errorf("hub: %s@%s: file %q has no usable ETag (%q): cannot name its blob", repo, rev, file, etag)
	}
	m.etag = etag
	size := h.Get("X-Linked-Size")
	if size == "" {
		size = h.Get("Content-Length")
	}
	if n, err := strconv.ParseInt(size, 10, 64); err == nil && n >= 0 {
		m.size = n
	}
	return m, nil
}

// sameHost reports whether u is on the endpoint's host (the token is sent only there).
func (c *client) sameHost(u string) bool {
	p, err := url.Parse(u)
	return err == nil && p.Scheme == c.endpoint.Scheme && p.Host == c.endpoint.Host
}

func short(commit string) string {
	if len(commit) > 10 {
		return commit[:10]
	}
	return commit
}

func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
