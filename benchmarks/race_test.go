package benchmarks

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// TestLostUpdate sends two requests of one session that write different
// keys, concurrently, through every library that keeps sessions on the
// server: both read the session before either writes. The race is made
// deterministic: each handler, once it has read the session, waits on a
// gate; the test opens the first gate when both have read, waits until the
// first request has finished (its write is stored), then opens the second.
//
// ginsession keeps both writes: its update is a merge into the stored
// session (on memcached and Redis a compare-and-swap against the version
// the middleware read, which fails and is retried on the new version).
// Each peer loses the first write: the second request saves its own copy
// of the session, read before the first write, over it (last writer wins).
func TestLostUpdate(t *testing.T) {
	const first, second = "race-first", "race-second"
	for _, l := range libraries {
		if l.bare || l.readOnly || l.noMiss {
			continue
		}
		t.Run(l.name, func(t *testing.T) {
			read := make(chan string, 2)
			gates := map[string]chan struct{}{first: make(chan struct{}), second: make(chan struct{})}
			s := l.setupEnv(t, env{pause: func(c *gin.Context) {
				key := c.Param("key")
				read <- key
				<-gates[key]
			}})
			done := map[string]chan *httptest.ResponseRecorder{first: make(chan *httptest.ResponseRecorder, 1), second: make(chan *httptest.ResponseRecorder, 1)}
			for _, key := range []string{first, second} {
				go func() { done[key] <- serve(s.h, http.MethodPost, "/race/"+key, s.existing) }()
			}
			timeout := time.After(10 * time.Second)
			for range 2 {
				select {
				case <-read:
				case <-timeout:
					t.Fatal("the requests did not both read the session")
				}
			}
			cookie := s.existing
			for _, key := range []string{first, second} {
				close(gates[key])
				select {
				case rec := <-done[key]:
					if rec.Code != http.StatusNoContent {
						t.Fatalf("write of %s: status %d: %s", key, rec.Code, rec.Body)
					}
					cookie = nextCookie(rec, cookie)
				case <-timeout:
					t.Fatalf("the write of %s did not finish", key)
				}
			}
			kept := map[string]bool{}
			for _, key := range []string{first, second} {
				rec := serve(s.h, http.MethodGet, "/get/"+key, cookie)
				kept[key] = rec.Code == http.StatusOK && rec.Body.String() == "1"
			}
			if got := serve(s.h, http.MethodGet, "/read", cookie); got.Body.String() != userValue {
				t.Fatalf("the session lost its user: status %d, body %q", got.Code, got.Body)
			}
			if l.ginsession {
				if !kept[first] || !kept[second] {
					t.Fatalf("ginsession lost an update: kept %v", kept)
				}
				return
			}
			// The peers: the second save overwrote the first write.
			if kept[first] || !kept[second] {
				t.Fatalf("expected the peer to lose the first write (last writer wins); kept %v", kept)
			}
			t.Logf("%s lost the first of two concurrent writes, as expected (kept %v)", l.name, kept)
		})
	}
}
