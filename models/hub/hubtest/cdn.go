package hubtest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// cdnFault is what the CDN does to one answer.
type cdnFault struct {
	trunc, corrupt bool
	dropAt         int64 // absolute offset where the connection is closed; -1: none
	stallAt        int64 // absolute offset where the answer goes silent; -1: none
}

// takeFault reads (and, for one-shot faults that this answer reaches, consumes) the faults of
// sum for an answer covering [start, end).
func (h *Hub) takeFault(sum string, start, end int64) cdnFault {
	h.Mu.Lock()
	defer h.Mu.Unlock()
	f := cdnFault{trunc: h.Truncate[sum], corrupt: h.Corrupt[sum], dropAt: -1, stallAt: -1}
	if at, ok := h.DropAt[sum]; ok && at >= start && at < end {
		f.dropAt = at
		delete(h.DropAt, sum)
	}
	if at, ok := h.StallAt[sum]; ok && at >= start && at < end {
		f.stallAt = at
		delete(h.StallAt, sum)
	}
	return f
}

// serveCDN answers GET /cdn/{sha256}: the whole content (200), or from a "bytes=N-" Range on
// (206; 416 past the end), with the faults set for it.
func (h *Hub) serveCDN(w http.ResponseWriter, r *http.Request, sum string) {
	rng := r.Header.Get("Range")
	h.Mu.Lock()
	b, ok := h.CDN[sum]
	h.Ranges = append(h.Ranges, rng)
	h.Mu.Unlock()
	if !ok {
		http.NotFound(w, nil)
		return
	}
	start, status := int64(0), http.StatusOK
	if n, ok := rangeStart(rng); ok {
		if n >= int64(len(b)) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(b)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start, status = n, http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", n, len(b)-1, len(b)))
	}
	body := b[start:]
	f := h.takeFault(sum, start, int64(len(b)))
	w.Header().Set("ETag", `"`+sum+`"`)
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	switch {
	case f.dropAt >= 0:
		h.write(w, body[:f.dropAt-start])
		closeConn(w)
	case f.stallAt >= 0:
		h.write(w, body[:f.stallAt-start])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-h.done:
		}
	case f.trunc:
		h.write(w, body[:len(body)/2]) // the server then closes the connection: unexpected EOF
	case f.corrupt:
		c := append([]byte(nil), body...)
		for i := range c {
			c[i] ^= 0x5a
		}
		h.write(w, c)
	default:
		h.write(w, body)
	}
}

// write counts b in CDNBytes (first: the client may have it before Write returns) and sends it.
func (h *Hub) write(w http.ResponseWriter, b []byte) {
	h.Mu.Lock()
	h.CDNBytes += int64(len(b))
	h.Mu.Unlock()
	_, _ = w.Write(b)
}

// CDNLog returns the Range headers of the CDN requests so far and the content bytes sent.
func (h *Hub) CDNLog() (ranges []string, sent int64) {
	h.Mu.Lock()
	defer h.Mu.Unlock()
	return append([]string(nil), h.Ranges...), h.CDNBytes
}

// closeConn flushes what was written and closes the connection under the answer.
func closeConn(w http.ResponseWriter) {
	w.(http.Flusher).Flush()
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// rangeStart reads a "bytes=N-" Range header.
func rangeStart(v string) (int64, bool) {
	rest, ok := strings.CutPrefix(v, "bytes=")
	if !ok || !strings.HasSuffix(rest, "-") {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(rest, "-"), 10, 64)
	return n, err == nil && n >= 0
}
