package ginsession_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/securestack/ginsession"
)

func ExampleRateLimit() {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	// Reached directly, not through a proxy: key by the connection's IP,
	// never by a client-supplied X-Forwarded-For.
	if err := r.SetTrustedProxies(nil); err != nil {
		panic(err)
	}
	login := ginsession.NewLimiter(2, time.Minute)
	r.POST("/login", ginsession.RateLimit(login), func(c *gin.Context) {
		c.String(http.StatusOK, "welcome")
	})

	for range 3 {
		req := httptest.NewRequest(http.MethodPost, "/login", nil)
		req.RemoteAddr = "203.0.113.7:51000"
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		fmt.Println(w.Code, w.Header().Get("RateLimit-Policy"), w.Header().Get("RateLimit"))
		if ra := w.Header().Get("Retry-After"); ra != "" {
			fmt.Println("Retry-After:", ra, w.Body.String())
		}
	}
	// Output:
	// 200 "default";q=2;w=60 "default";r=1;t=60
	// 200 "default";q=2;w=60 "default";r=0;t=60
	// 429 "default";q=2;w=60 "default";r=0;t=60
	// Retry-After: 60 {"error":"too many requests"}
}
