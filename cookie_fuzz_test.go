package ginsession

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
)

// FuzzCookieHeader sends arbitrary Cookie headers through the middleware:
// it must never panic, never call the store for a malformed ID, and answer
// as if there were no session.
func FuzzCookieHeader(f *testing.F) {
	f.Add(DefaultCookieName + "=" + newID())
	f.Add(DefaultCookieName + "=")
	f.Add("a=b; " + DefaultCookieName + "=x;;; =;" + DefaultCookieName)
	f.Add(DefaultCookieName + `="quoted"`)
	f.Add("\x00\xff;=;=")
	gin.SetMode(gin.TestMode)
	m := NewManager(nil)
	f.Cleanup(func() { _ = m.Close() })
	r := gin.New()
	r.Use(New(m))
	r.GET("/", Required(), func(c *gin.Context) { c.Status(http.StatusNoContent) })
	f.Fuzz(func(t *testing.T, header string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header["Cookie"] = []string{header}
		before := m.Stats()
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d for a cookie naming no session", w.Code)
		}
		after := m.Stats()
		id, ok := m.cookie.read(req.Header)
		switch {
		case !ok:
			if after != before {
				t.Fatalf("no session cookie, but stats changed: %+v -> %+v", before, after)
			}
		case wellFormed(id):
			if after.Unknown != before.Unknown+1 {
				t.Fatalf("well-formed unknown ID not counted as unknown")
			}
		default:
			if after.Malformed != before.Malformed+1 || after.Unknown != before.Unknown {
				t.Fatalf("malformed ID not counted as malformed: %+v -> %+v", before, after)
			}
		}
	})
}
