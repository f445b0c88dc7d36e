package hubtest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// Unresponsive starts a loopback HTTP server that accepts connections and reads requests but
// never answers (until the client gives up or the test ends), and returns its URL.
func Unresponsive(t testing.TB) string {
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) })
	return srv.URL
}
