package ginsession_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/storetest"
)

// rlStart is the instant the middleware tests start at.
var rlStart = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// rlRouter returns an engine with the middleware in front of GET /login,
// which answers 200 "ok". The engine trusts no proxy.
func rlRouter(t *testing.T, mw gin.HandlerFunc) *gin.Engine {
	t.Helper()
	gin.SetMode(gin.TestMode)
	r := gin.New()
	require.NoError(t, r.SetTrustedProxies(nil))
	r.GET("/login", mw, func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	return r
}

// rlDo performs GET /login from remoteAddr with the given headers.
func rlDo(r http.Handler, remoteAddr string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/login", nil)
	req.RemoteAddr = remoteAddr
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

func TestRateLimitResponses(t *testing.T) {
	clock := storetest.NewClock(rlStart)
	l := ginsession.NewLimiter(2, time.Minute)
	r := rlRouter(t, ginsession.RateLimit(l, ginsession.WithRateLimitClock(clock.Now)))

	steps := []struct {
		at         time.Duration
		status     int
		rateLimit  string
		retryAfter string
	}{
		{at: 0, status: http.StatusOK, rateLimit: `"default";r=1;t=60`},
		{at: 20 * time.Second, status: http.StatusOK, rateLimit: `"default";r=0;t=40`},
		{at: 30 * time.Second, status: http.StatusTooManyRequests, rateLimit: `"default";r=0;t=30`, retryAfter: "30"},
		// 400ms before the first request leaves the window: rounded up to 1s.
		{at: 59*time.Second + 600*time.Millisecond, status: http.StatusTooManyRequests, rateLimit: `"default";r=0;t=1`, retryAfter: "1"},
		// 1.5s is rounded up to 2s.
		{at: 78*time.Second + 500*time.Millisecond, status: http.StatusOK, rateLimit: `"default";r=0;t=2`},
		{at: 79 * time.Second, status: http.StatusTooManyRequests, rateLimit: `"default";r=0;t=1`, retryAfter: "1"},
		{at: 80 * time.Second, status: http.StatusOK, rateLimit: `"default";r=0;t=59`},
	}
	for i, st := range steps {
		clock.Set(rlStart.Add(st.at))
		w := rlDo(r, "192.0.2.10:4321")
		msg := fmt.Sprintf("step %d at %s", i, st.at)
		require.Equal(t, st.status, w.Code, msg)
		assert.Equal(t, `"default";q=2;w=60`, w.Header().Get("RateLimit-Policy"), msg)
		assert.Equal(t, st.rateLimit, w.Header().Get("RateLimit"), msg)
		assert.Equal(t, st.retryAfter, w.Header().Get("Retry-After"), msg)
		if st.status == http.StatusOK {
			assert.Equal(t, "ok", w.Body.String(), msg)
			continue
		}
		assert.Equal(t, "application/json; charset=utf-8", w.Header().Get("Content-Type"), msg)
		var body map[string]string
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), msg)
		assert.Equal(t, map[string]string{"error": "too many requests"}, body, msg)
	}
}

func TestRateLimitPerClientIP(t *testing.T) {
	tests := []struct {
		name    string
		trusted []string // nil: trust no proxy
		a, b    []string // remote address, then headers
		shared  bool     // whether a and b share one quota
	}{
		{name: "different IPv4 clients", a: []string{"192.0.2.1:1000"}, b: []string{"192.0.2.2:1000"}},
		{name: "same IPv4 client, other port", a: []string{"192.0.2.1:1000"}, b: []string{"192.0.2.1:2000"}, shared: true},
		{name: "same IPv6 /64", a: []string{"[2001:db8:1:2::1]:1000"}, b: []string{"[2001:db8:1:2:ffff::9]:1000"}, shared: true},
		{name: "different IPv6 /64", a: []string{"[2001:db8:1:2::1]:1000"}, b: []string{"[2001:db8:1:3::1]:1000"}},
		{
			name: "X-Forwarded-For ignored without trusted proxies",
			a:    []string{"192.0.2.1:1000", "X-Forwarded-For", "198.51.100.1"},
			b:    []string{"192.0.2.1:1000", "X-Forwarded-For", "198.51.100.2"}, shared: true,
		},
		{
			name: "X-Forwarded-For used from a trusted proxy", trusted: []string{"10.0.0.0/8"},
			a: []string{"10.0.0.5:1000", "X-Forwarded-For", "198.51.100.1"},
			b: []string{"10.0.0.5:1000", "X-Forwarded-For", "198.51.100.2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := ginsession.NewLimiter(1, time.Minute)
			r := rlRouter(t, ginsession.RateLimit(l))
			require.NoError(t, r.SetTrustedProxies(tt.trusted))
			require.Equal(t, http.StatusOK, rlDo(r, tt.a[0], tt.a[1:]...).Code)
			want := http.StatusOK
			if tt.shared {
				want = http.StatusTooManyRequests
			}
			assert.Equal(t, want, rlDo(r, tt.b[0], tt.b[1:]...).Code)
			assert.Equal(t, http.StatusTooManyRequests, rlDo(r, tt.a[0], tt.a[1:]...).Code)
		})
	}
}

func TestRateLimitCustomKeyAndPolicy(t *testing.T) {
	l := ginsession.NewLimiter(1, 90*time.Second+time.Millisecond)
	r := rlRouter(t, ginsession.RateLimit(l,
		ginsession.WithRateLimitKey(func(c *gin.Context) string { return c.GetHeader("X-Api-Key") }),
		ginsession.WithRateLimitPolicy(`per "key"`),
	))
	w := rlDo(r, "192.0.2.1:1000", "X-Api-Key", "k1")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, `"per \"key\"";q=1;w=91`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"per \"key\"";r=0;t=91`, w.Header().Get("RateLimit"))
	// Another client IP with the same key shares the quota.
	assert.Equal(t, http.StatusTooManyRequests, rlDo(r, "192.0.2.2:1000", "X-Api-Key", "k1").Code)
	// The same client IP with another key does not.
	assert.Equal(t, http.StatusOK, rlDo(r, "192.0.2.1:1000", "X-Api-Key", "k2").Code)
}

// rlFailingBackend is a LimiterBackend whose store is down.
type rlFailingBackend struct{}

func (rlFailingBackend) Admit(context.Context, string, int, time.Duration, time.Time) (ginsession.Decision, error) {
	return ginsession.Decision{}, fmt.Errorf("test backend: %w: %w", stores.ErrUnavailable, errors.New("connection refused"))
}

func TestRateLimitBackendFailure(t *testing.T) {
	tests := []struct {
		name       string
		mode       ginsession.FailMode
		status     int
		retryAfter string
	}{
		{name: "fail closed", mode: ginsession.FailClosed, status: http.StatusServiceUnavailable, retryAfter: "1"},
		{name: "fail open", mode: ginsession.FailOpen, status: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := ginsession.NewLimiter(5, time.Minute,
				ginsession.WithLimiterBackend(rlFailingBackend{}), ginsession.WithBackendFailMode(tt.mode))
			var errs []*gin.Error
			r := gin.New()
			r.GET("/login", ginsession.RateLimit(l), func(c *gin.Context) { c.String(http.StatusOK, "ok") })
			r.GET("/probe", func(c *gin.Context) {
				c.Next()
				errs = c.Errors
			}, ginsession.RateLimit(l), func(c *gin.Context) { c.String(http.StatusOK, "ok") })

			w := rlDo(r, "192.0.2.1:1000")
			assert.Equal(t, tt.status, w.Code)
			assert.Equal(t, tt.retryAfter, w.Header().Get("Retry-After"))
			assert.Empty(t, w.Header().Get("RateLimit"), "no quota is known")
			assert.Empty(t, w.Header().Get("RateLimit-Policy"))

			req := httptest.NewRequest(http.MethodGet, "/probe", nil)
			req.RemoteAddr = "192.0.2.1:1000"
			r.ServeHTTP(httptest.NewRecorder(), req)
			require.Len(t, errs, 1, "the error is handed to logging middleware")
			var le *ginsession.LimiterError
			require.ErrorAs(t, errs[0].Err, &le)
			assert.ErrorIs(t, errs[0].Err, stores.ErrUnavailable)
		})
	}
}

func TestClientIPKey(t *testing.T) {
	tests := []struct {
		name     string
		remote   string
		platform string // value of the trusted platform header, if any
		want     string
	}{
		{name: "IPv4", remote: "192.0.2.33:5000", want: "192.0.2.33"},
		{name: "IPv6 reduced to /64", remote: "[2001:db8:aaaa:bbbb:1:2:3:4]:5000", want: "2001:db8:aaaa:bbbb::/64"},
		{name: "IPv4-mapped IPv6", remote: "[::ffff:192.0.2.33]:5000", want: "192.0.2.33"},
		{name: "platform header", remote: "192.0.2.33:5000", platform: "198.51.100.7", want: "198.51.100.7"},
		{name: "junk platform header", remote: "192.0.2.33:5000", platform: "not an address, but long", want: "invalid"},
		{name: "unparsable remote address", remote: "somewhere", want: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gin.SetMode(gin.TestMode)
			r := gin.New()
			require.NoError(t, r.SetTrustedProxies(nil))
			r.TrustedPlatform = "X-Client-Ip"
			var got string
			r.GET("/", func(c *gin.Context) { got = ginsession.ClientIPKey(c) })
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = tt.remote
			if tt.platform != "" {
				req.Header.Set("X-Client-Ip", tt.platform)
			}
			r.ServeHTTP(httptest.NewRecorder(), req)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRateLimitPanics(t *testing.T) {
	l := ginsession.NewLimiter(1, time.Second)
	tests := []struct {
		name string
		f    func()
		want string
	}{
		{"nil limiter", func() { ginsession.RateLimit(nil) }, "ginsession.RateLimit expects a non-nil Limiter"},
		{"nil key func", func() { ginsession.RateLimit(l, ginsession.WithRateLimitKey(nil)) }, "ginsession.RateLimit: WithRateLimitKey expects a non-nil function"},
		{"empty policy", func() { ginsession.RateLimit(l, ginsession.WithRateLimitPolicy("")) }, `ginsession.RateLimit: WithRateLimitPolicy("") expects a non-empty printable ASCII name`},
		{"control character in policy", func() { ginsession.RateLimit(l, ginsession.WithRateLimitPolicy("a\nb")) }, `ginsession.RateLimit: WithRateLimitPolicy("a\nb") expects a non-empty printable ASCII name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.want, tt.f)
		})
	}
}
