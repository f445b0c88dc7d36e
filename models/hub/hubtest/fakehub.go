// Package hubtest is a loopback HTTP server that speaks the Hugging Face Hub protocol LOBA uses, for
// tests of code that resolves "org/repo[@revision]" ids. It serves repositories built in memory.
package hubtest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loba-dev/loba/internal/fixtures"
)

// Hub is a loopback HTTP server speaking the Hub protocol used by models/hub:
//
//	GET  /api/models/{org}/{name}/revision/{rev}   → {"id", "sha", "siblings": [{"rfilename"}]}
//	HEAD/GET /{org}/{name}/resolve/{rev}/{path}    → regular files: 200 + ETag (git blob sha1);
//	     LFS files (*.safetensors, *.bin, *.ckpt): 302 to /cdn/{sha256} + X-Linked-Etag/X-Linked-Size
//	GET  /cdn/{sha256}                              → the LFS content (Range "bytes=N-" answered 206)
//
// Unknown or private repositories answer 401 (X-Error-Code RepoNotFound) as the real Hub does,
// unknown revisions 404 RevisionNotFound, unknown files 404 EntryNotFound.
type Hub struct {
	t     testing.TB
	Srv   *httptest.Server
	Token string // required by private repos

	Mu       sync.Mutex
	Repos    map[string]*Repo
	CDN      map[string][]byte // sha256 → content
	Requests []string          // "METHOD path"
	Auth     []string          // Authorization header of every request
	Truncate map[string]bool   // sha256 → serve only half of the content
	Corrupt  map[string]bool   // sha256 → serve flipped bytes
	// DropAt maps an LFS sha256 to a byte offset: the next CDN answer that reaches it stops
	// there and closes the connection (a connection dropped mid-file); the entry is then removed.
	DropAt map[string]int64
	// StallAt is like DropAt, but the answer stops sending at the offset and keeps the connection
	// open, silent, until the client gives up (a stalled download).
	StallAt map[string]int64
	// CDNQuery is appended to the CDN URLs the Hub redirects to, e.g. "?X-Amz-Signature=…" for a
	// signed URL.
	CDNQuery string
	// Ranges records the Range header of every CDN request ("" when none).
	Ranges []string
	// CDNBytes counts the content bytes the CDN sent.
	CDNBytes int64
	// Intercept, when set, sees every request first; it returns true when it answered it. Set
	// it with SetIntercept.
	Intercept func(w http.ResponseWriter, r *http.Request) bool

	done chan struct{} // closed when the test ends: stalled answers return
}

// Repo is one repository of the fake hub.
type Repo struct {
	Private bool
	Refs    map[string]string            // branch/tag → commit
	Commits map[string]map[string][]byte // commit → path → content
}

// New starts a fake hub on loopback, closed when the test ends. Private repos need Token.
func New(t testing.TB) *Hub {
	h := &Hub{t: t, Token: "hf_private_token", Repos: map[string]*Repo{}, CDN: map[string][]byte{},
		Truncate: map[string]bool{}, Corrupt: map[string]bool{}, DropAt: map[string]int64{}, StallAt: map[string]int64{},
		done: make(chan struct{})}
	h.Srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Srv.Close)
	t.Cleanup(func() { close(h.done) }) // runs first: stalled handlers return, then the server closes
	return h
}

// AddCommit adds (or extends) repo with commit holding files, and points refs at it.
func (h *Hub) AddCommit(repo, commit string, files map[string][]byte, refs ...string) {
	h.Mu.Lock()
	defer h.Mu.Unlock()
	r := h.Repos[repo]
	if r == nil {
		r = &Repo{Refs: map[string]string{}, Commits: map[string]map[string][]byte{}}
		h.Repos[repo] = r
	}
	r.Commits[commit] = files
	for _, ref := range refs {
		r.Refs[ref] = commit
	}
	for p, b := range files {
		if IsLFS(p) {
			h.CDN[SHA256Hex(b)] = b
		}
	}
}

// SetIntercept sets Intercept (under Mu).
func (h *Hub) SetIntercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	h.Mu.Lock()
	defer h.Mu.Unlock()
	h.Intercept = f
}

// IsLFS tells whether the Hub stores a file through LFS (weights), as the fake hub serves it.
func IsLFS(p string) bool {
	switch filepath.Ext(p) {
	case ".safetensors", ".bin", ".ckpt":
		return true
	}
	return false
}

// SHA256Hex is the hex sha256 of b (an LFS object id).
func SHA256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// GitBlobSHA1 is git's blob id of b (a regular file's ETag on the Hub).
func GitBlobSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// Count returns how many recorded requests start with prefix ("GET /api/", "HEAD ", "GET /cdn/"…).
func (h *Hub) Count(prefix string) int {
	h.Mu.Lock()
	defer h.Mu.Unlock()
	n := 0
	for _, r := range h.Requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

// Reset forgets the recorded requests.
func (h *Hub) Reset() {
	h.Mu.Lock()
	defer h.Mu.Unlock()
	h.Requests, h.Auth = nil, nil
}

// Requested tells whether any recorded request contains substr.
func (h *Hub) Requested(substr string) bool {
	h.Mu.Lock()
	defer h.Mu.Unlock()
	for _, r := range h.Requests {
		if strings.Contains(r, substr) {
			return true
		}
	}
	return false
}

func (h *Hub) serve(w http.ResponseWriter, r *http.Request) {
	h.Mu.Lock()
	h.Requests = append(h.Requests, r.Method+" "+r.URL.EscapedPath())
	h.Auth = append(h.Auth, r.Header.Get("Authorization"))
	intercept := h.Intercept
	h.Mu.Unlock()
	if intercept != nil && intercept(w, r) {
		return
	}

	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	for i, s := range segs {
		if u, err := url.PathUnescape(s); err == nil {
			segs[i] = u
		}
	}
	switch {
	case len(segs) == 2 && segs[0] == "cdn" && r.Method == http.MethodGet:
		h.serveCDN(w, r, segs[1])
	case len(segs) == 6 && segs[0] == "api" && segs[1] == "models" && segs[4] == "revision" && r.Method == http.MethodGet:
		h.serveAPI(w, r, segs[2]+"/"+segs[3], segs[5])
	case len(segs) >= 5 && segs[2] == "resolve" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		h.serveResolve(w, r, segs[0]+"/"+segs[1], segs[3], strings.Join(segs[4:], "/"))
	default:
		http.Error(w, "bad request", http.StatusBadRequest)
	}
}

// lookup finds repo@rev, writing the Hub's error answer when it fails.
func (h *Hub) lookup(w http.ResponseWriter, r *http.Request, repo, rev string) (commit string, files map[string][]byte, ok bool) {
	h.Mu.Lock()
	defer h.Mu.Unlock()
	fr := h.Repos[repo]
	if fr == nil || (fr.Private && r.Header.Get("Authorization") != "Bearer "+h.Token) {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.Header().Set("X-Error-Message", "Repository not found")
		w.WriteHeader(http.StatusUnauthorized)
		return "", nil, false
	}
	commit = rev
	if c, ok := fr.Refs[rev]; ok {
		commit = c
	}
	files, ok = fr.Commits[commit]
	if !ok {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		w.Header().Set("X-Error-Message", "Invalid rev id: "+rev)
		w.WriteHeader(http.StatusNotFound)
		return "", nil, false
	}
	return commit, files, true
}

func (h *Hub) serveAPI(w http.ResponseWriter, r *http.Request, repo, rev string) {
	commit, files, ok := h.lookup(w, r, repo, rev)
	if !ok {
		return
	}
	type sib struct {
		Name string `json:"rfilename"`
	}
	var sibs []sib
	for p := range files {
		sibs = append(sibs, sib{p})
	}
	sort.Slice(sibs, func(i, j int) bool { return sibs[i].Name < sibs[j].Name })
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"id": repo, "sha": commit, "siblings": sibs})
}

func (h *Hub) serveResolve(w http.ResponseWriter, r *http.Request, repo, rev, file string) {
	commit, files, ok := h.lookup(w, r, repo, rev)
	if !ok {
		return
	}
	b, ok := files[file]
	w.Header().Set("X-Repo-Commit", commit)
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		w.Header().Set("X-Error-Message", "Entry not found")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if IsLFS(file) {
		sum := SHA256Hex(b)
		w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(b)))
		w.Header().Set("ETag", `"`+GitBlobSHA1([]byte(sum))+`"`) // the pointer file's etag, unused
		h.Mu.Lock()
		query := h.CDNQuery
		h.Mu.Unlock()
		w.Header().Set("Location", h.Srv.URL+"/cdn/"+sum+query)
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+GitBlobSHA1(b)+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b)) // answers Range and If-Range
}

// TinySafetensors builds a valid one-tensor safetensors file: F16 [n] holding i (as bits).
func TinySafetensors(t testing.TB, name string, n int) []byte {
	hdr, err := json.Marshal(map[string]any{name: map[string]any{"dtype": "F16", "shape": []int{n}, "data_offsets": []int{0, 2 * n}}})
	if err != nil {
		t.Fatal(err)
	}
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	out = append(out, hdr...)
	for i := 0; i < n; i++ {
		out = binary.LittleEndian.AppendUint16(out, uint16(0x3c00+i))
	}
	return out
}

// ReadFixture reads a file under the fixture root (fixtures.Root).
func ReadFixture(t testing.TB, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{fixtures.Root(t)}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TinyPipeline is a hub-shaped SD1.5-style repository built from the golden fixtures: real
// configs and safetensors of the tiny UNet, VAE and CLIP, plus files that must never be fetched
// (pickles, a root single-file .ckpt, README, an unused component).
func TinyPipeline(t testing.TB) map[string][]byte {
	modelIndex := []byte(`{
  "_class_name": "StableDiffusionPipeline",
  "_diffusers_version": "0.6.0",
  "feature_extractor": ["transformers", "CLIPImageProcessor"],
  "requires_safety_checker": false,
  "safety_checker": [null, null],
  "scheduler": ["diffusers", "DDIMScheduler"],
  "text_encoder": ["transformers", "CLIPTextModel"],
  "tokenizer": ["transformers", "CLIPTokenizer"],
  "unet": ["diffusers", "UNet2DConditionModel"],
  "vae": ["diffusers", "AutoencoderKL"]
}
`)
	return map[string][]byte{
		".gitattributes":           []byte("*.safetensors filter=lfs diff=lfs merge=lfs -text\n"),
		"README.md":                []byte("# tiny\n"),
		"model_index.json":         modelIndex,
		"v1-5-pruned-emaonly.ckpt": []byte("PK\x03\x04 not really a pickle"),
		"feature_extractor/preprocessor_config.json":       []byte(`{"crop_size": 224}`),
		"scheduler/scheduler_config.json":                  ReadFixture(t, "scheduler", "ddim_sd15_eps", "config.json"),
		"text_encoder/config.json":                         ReadFixture(t, "clip_text", "sd15_clip_l_tiny", "config.json"),
		"text_encoder/model.safetensors":                   ReadFixture(t, "clip_text", "sd15_clip_l_tiny", "model.safetensors"),
		"text_encoder/pytorch_model.bin":                   []byte("PK\x03\x04 pickle"),
		"tokenizer/merges.txt":                             []byte("#version: 0.2\na b\n"),
		"tokenizer/special_tokens_map.json":                []byte(`{"bos_token": "<|startoftext|>"}`),
		"tokenizer/tokenizer_config.json":                  []byte(`{"model_max_length": 77}`),
		"tokenizer/vocab.json":                             []byte(`{"a": 0, "b": 1}`),
		"unet/config.json":                                 ReadFixture(t, "unet", "sd15_tiny", "config.json"),
		"unet/diffusion_pytorch_model.safetensors":         ReadFixture(t, "unet", "sd15_tiny", "model.safetensors"),
		"unet/diffusion_pytorch_model.fp16.safetensors":    TinySafetensors(t, "conv_in.bias", 32),
		"unet/diffusion_pytorch_model.bin":                 []byte("PK\x03\x04 pickle"),
		"unet/diffusion_pytorch_model.non_ema.safetensors": TinySafetensors(t, "conv_in.bias", 31),
		"vae/config.json":                                  ReadFixture(t, "vae", "sd_vae_tiny", "config.json"),
		"vae/diffusion_pytorch_model.safetensors":          ReadFixture(t, "vae", "sd_vae_tiny", "model.safetensors"),
	}
}

// URL is the hub's endpoint (set it as HF_ENDPOINT).
func (h *Hub) URL() string { return h.Srv.URL }
