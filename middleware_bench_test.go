package ginsession_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/internal/memcachedtest"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/memcached"
)

// releaseMode puts gin in release mode for the benchmark, as in production.
func releaseMode(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	b.Cleanup(func() { gin.SetMode(gin.TestMode) })
}

// benchEngine returns a Manager on store (nil: memory) and a release-mode
// engine using its middleware.
func benchEngine(b *testing.B, store stores.Store) (*ginsession.Manager, *gin.Engine) {
	b.Helper()
	releaseMode(b)
	m := ginsession.NewManager(store)
	b.Cleanup(func() { _ = m.Close() })
	r := gin.New()
	r.Use(ginsession.New(m))
	return m, r
}

// benchRouter returns an engine in release mode whose GET / reads one
// session value, and the Cookie header of a live session.
func benchRouter(b *testing.B) (*gin.Engine, string) {
	b.Helper()
	m, r := benchEngine(b, nil)
	r.GET("/", func(c *gin.Context) {
		if s, ok := ginsession.Current(c); ok {
			_ = s.GetString("role")
		}
		c.Status(http.StatusNoContent)
	})
	s, err := m.CreateSession(ctx, "alice", map[string]any{"role": "admin", "visits": 3})
	if err != nil {
		b.Fatal(err)
	}
	return r, ginsession.DefaultCookieName + "=" + s.ID
}

func BenchmarkMiddleware(b *testing.B) {
	cases := []struct{ name, cookie string }{
		{"ReadExisting", ""}, // filled in with the live session below
		{"NoCookie", "-"},
		{"Junk", ginsession.DefaultCookieName + "=" + strings.Repeat("x", 64)},
		{"Miss", ginsession.DefaultCookieName + "=" + strings.Repeat("A", 43)},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			r, live := benchRouter(b)
			cookie := bc.cookie
			switch cookie {
			case "":
				cookie = live
			case "-":
				cookie = ""
			}
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				if cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				r.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
	b.Run("ReadExistingParallel", func(b *testing.B) {
		r, cookie := benchRouter(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				req.Header.Set("Cookie", cookie)
				r.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	})
}

// BenchmarkBareGin is the floor: the same request through gin without
// sessions.
func BenchmarkBareGin(b *testing.B) {
	releaseMode(b)
	r := gin.New()
	r.GET("/", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Cookie", "x=y")
		r.ServeHTTP(httptest.NewRecorder(), req)
	}
}

// BenchmarkMiddlewareMemcached measures requests through the middleware on
// a real memcached on loopback: a read-only request (one get) and a request
// whose handler updates one key with Update (the middleware's get, then one
// cas).
func BenchmarkMiddlewareMemcached(b *testing.B) {
	srv := memcachedtest.Start(b)
	store, err := memcached.NewFromServers([]string{srv.Addr})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	m, r := benchEngine(b, store)
	r.GET("/", func(c *gin.Context) {
		s, _ := ginsession.Current(c)
		_ = s.GetString("role")
		c.Status(http.StatusNoContent)
	})
	r.POST("/", func(c *gin.Context) {
		if err := ginsession.Update(c, map[string]any{"visits": 4}); err != nil {
			c.Status(http.StatusInternalServerError)
			return
		}
		c.Status(http.StatusNoContent)
	})
	s, err := m.CreateSession(ctx, "alice", map[string]any{"role": "admin", "visits": 3})
	if err != nil {
		b.Fatal(err)
	}
	cookie := ginsession.DefaultCookieName + "=" + s.ID
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		name := map[string]string{http.MethodGet: "ReadExisting", http.MethodPost: "WriteOne"}[method]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(method, "/", nil)
				req.Header.Set("Cookie", cookie)
				w := httptest.NewRecorder()
				r.ServeHTTP(w, req)
				if w.Code != http.StatusNoContent {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}

// BenchmarkLogin measures a request whose handler logs in: as a new user
// each time; as one user again and again without a cookie (at steady state
// its index is at the per-user cap, so each login also ends the oldest
// session); as a returning user carrying the previous login's cookie
// (Login replaces that session: one live session at steady state); and
// anonymously (no user index).
func BenchmarkLogin(b *testing.B) {
	for _, bc := range []struct {
		name      string
		user      func(i int) string
		returning bool
	}{
		{"NewUser", func(i int) string { return "user" + strconv.Itoa(i) }, false},
		{"SameUserAtCap", func(int) string { return "alice" }, false},
		{"Returning", func(int) string { return "alice" }, true},
		{"Anonymous", func(int) string { return "" }, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			_, r := benchEngine(b, nil)
			i := 0
			r.POST("/login", func(c *gin.Context) {
				i++
				if _, err := ginsession.Login(c, bc.user(i), map[string]any{"role": "admin"}); err != nil {
					c.Status(http.StatusInternalServerError)
					return
				}
				c.Status(http.StatusNoContent)
			})
			login := func(cookie string) string {
				req := httptest.NewRequest(http.MethodPost, "/login", nil)
				if cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				w := httptest.NewRecorder()
				r.ServeHTTP(w, req)
				if w.Code != http.StatusNoContent {
					b.Fatalf("login: %d", w.Code)
				}
				if !bc.returning {
					return ""
				}
				v, _, _ := strings.Cut(w.Header().Get("Set-Cookie"), ";")
				return v
			}
			cookie := ""
			if bc.name == "SameUserAtCap" {
				for range ginsession.DefaultMaxSessionsPerUser {
					login("")
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				cookie = login(cookie)
			}
		})
	}
}
