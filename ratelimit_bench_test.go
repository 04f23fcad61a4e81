package ginsession_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/securestack/ginsession"
)

// BenchmarkRateLimit measures the Gin middleware on an admitted request,
// including the response headers.
func BenchmarkRateLimit(b *testing.B) {
	gin.SetMode(gin.TestMode)
	l := ginsession.NewLimiter(1_000_000_000, time.Minute)
	r := gin.New()
	if err := r.SetTrustedProxies(nil); err != nil {
		b.Fatal(err)
	}
	r.GET("/login", ginsession.RateLimit(l), func(c *gin.Context) { c.Status(http.StatusNoContent) })
	req := httptest.NewRequest(http.MethodGet, "/login", nil)
	req.RemoteAddr = "192.0.2.1:1234"
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != http.StatusNoContent {
			b.Fatal(w.Code)
		}
	}
}
