package ginsession_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
)

func TestLoginProfileLogout(t *testing.T) {
	e := newEnv(t)

	w := e.do(http.MethodGet, "/profile", "")
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.JSONEq(t, `{"error":"Not authenticated"}`, w.Body.String())

	cookie := e.login("alice")

	w = e.do(http.MethodGet, "/profile", cookie)
	require.Equal(t, http.StatusOK, w.Code)
	assert.JSONEq(t, `{"userId":"alice","data":{"role":"user"}}`, w.Body.String())
	assert.Nil(t, sessionCookie(t, w), "a read-only request sets no cookie")

	w = e.do(http.MethodPost, "/logout", cookie)
	require.Equal(t, http.StatusOK, w.Code)
	cleared := sessionCookie(t, w)
	require.NotNil(t, cleared)
	assert.Empty(t, cleared.Value)
	assert.Equal(t, -1, cleared.MaxAge, "Max-Age=0 deletes the cookie")
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))

	w = e.do(http.MethodGet, "/profile", cookie)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	w = e.do(http.MethodPost, "/logout", cookie)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
}

func TestCookieDefaults(t *testing.T) {
	e := newEnv(t)
	w := e.do(http.MethodPost, "/login?user=alice", "")
	require.Equal(t, http.StatusOK, w.Code)

	raw := w.Header().Values("Set-Cookie")
	require.Len(t, raw, 1)
	c := sessionCookie(t, w)
	require.NotNil(t, c)
	assert.Equal(t, "__Host-session", c.Name)
	assert.Len(t, c.Value, 43, "32 random bytes in unpadded base64url")
	assert.True(t, c.HttpOnly)
	assert.True(t, c.Secure)
	assert.Equal(t, http.SameSiteLaxMode, c.SameSite)
	assert.Equal(t, "/", c.Path)
	assert.Empty(t, c.Domain)
	assert.Zero(t, c.MaxAge, "a session cookie by default")
	assert.NotContains(t, raw[0], "Expires")
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
}

func TestCookieOptions(t *testing.T) {
	e := newEnv(t,
		ginsession.WithCookieName("sid"),
		ginsession.WithCookieSecure(false),
		ginsession.WithCookieSameSite(http.SameSiteStrictMode),
		ginsession.WithCookiePath("/app"),
		ginsession.WithCookieDomain("example.com"),
		ginsession.WithPersistentCookie(true),
		ginsession.WithAbsoluteTimeout(2*time.Hour),
	)
	w := e.do(http.MethodPost, "/login?user=alice", "")
	require.Equal(t, http.StatusOK, w.Code)
	cs := w.Result().Cookies()
	require.Len(t, cs, 1)
	c := cs[0]
	assert.Equal(t, "sid", c.Name)
	assert.True(t, c.HttpOnly, "HttpOnly is not optional")
	assert.False(t, c.Secure)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	assert.Equal(t, "/app", c.Path)
	assert.Equal(t, "example.com", c.Domain)
	assert.Equal(t, int((2 * time.Hour).Seconds()), c.MaxAge, "persistent cookies live to the absolute deadline")
}

func TestNewManagerRejectsInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []ginsession.Option
		want string
	}{
		{"host prefix without secure", []ginsession.Option{ginsession.WithCookieSecure(false)}, "WithCookieSecure(false)"},
		{"host prefix with path", []ginsession.Option{ginsession.WithCookiePath("/app")}, `WithCookiePath("/app")`},
		{"host prefix with domain", []ginsession.Option{ginsession.WithCookieDomain("example.com")}, `WithCookieDomain("example.com")`},
		{"explicit host name with domain", []ginsession.Option{ginsession.WithCookieName("__Host-id"), ginsession.WithCookieDomain("a.example")}, "WithCookieDomain"},
		{"secure prefix without secure", []ginsession.Option{ginsession.WithCookieName("__Secure-id"), ginsession.WithCookieSecure(false)}, "WithCookieSecure(false)"},
		{"samesite none without secure", []ginsession.Option{ginsession.WithCookieName("id"), ginsession.WithCookieSecure(false), ginsession.WithCookieSameSite(http.SameSiteNoneMode)}, "WithCookieSameSite"},
		{"bad cookie name", []ginsession.Option{ginsession.WithCookieName("a b")}, `WithCookieName("a b")`},
		{"empty cookie name", []ginsession.Option{ginsession.WithCookieName("")}, `WithCookieName("")`},
		{"oversized cookie name", []ginsession.Option{ginsession.WithCookieName(strings.Repeat("n", 4096))}, "4096 bytes"},
		{"zero idle", []ginsession.Option{ginsession.WithIdleTimeout(0)}, "WithIdleTimeout(0s)"},
		{"negative absolute", []ginsession.Option{ginsession.WithAbsoluteTimeout(-time.Hour)}, "WithAbsoluteTimeout(-1h0m0s)"},
		{"refresh not below idle", []ginsession.Option{ginsession.WithIdleTimeout(time.Minute), ginsession.WithRefreshInterval(time.Minute)}, "WithRefreshInterval(1m0s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				require.NotNil(t, r, "NewManager accepted an invalid configuration")
				msg, _ := r.(string)
				assert.Contains(t, msg, "ginsession.NewManager")
				assert.Contains(t, msg, tt.want)
			}()
			ginsession.NewManager(nil, tt.opts...).Close()
		})
	}
}

func TestHostPrefixAcceptedWithSecureDefaults(t *testing.T) {
	m := ginsession.NewManager(nil, ginsession.WithCookieName("__Host-app"), ginsession.WithCookiePath("/"))
	assert.NoError(t, m.Close())
}

func TestLoginDefeatsFixation(t *testing.T) {
	e := newEnv(t)

	t.Run("attacker's own live session", func(t *testing.T) {
		planted := e.login("mallory")
		// The victim's browser carries the planted cookie when logging in.
		w := e.do(http.MethodPost, "/login?user=victim", planted)
		require.Equal(t, http.StatusOK, w.Code)
		victim := cookieHeader(t, w)
		assert.NotEqual(t, planted, victim, "login must issue a new ID")

		// The attacker replays the planted ID: it is dead.
		w = e.do(http.MethodGet, "/profile", planted)
		assert.Equal(t, http.StatusUnauthorized, w.Code)
		// The victim's new session works and is the victim's.
		w = e.do(http.MethodGet, "/profile", victim)
		require.Equal(t, http.StatusOK, w.Code)
		assert.Contains(t, w.Body.String(), `"victim"`)
	})

	t.Run("invented well-formed ID", func(t *testing.T) {
		planted := ginsession.DefaultCookieName + "=" + strings.Repeat("A", 43)
		w := e.do(http.MethodPost, "/login?user=victim", planted)
		require.Equal(t, http.StatusOK, w.Code)
		assert.NotEqual(t, planted, cookieHeader(t, w), "an unknown ID is never adopted")
		w = e.do(http.MethodGet, "/profile", planted)
		assert.Equal(t, http.StatusUnauthorized, w.Code)
	})
}

func TestRotate(t *testing.T) {
	e := newEnv(t)
	before := e.login("alice")
	e.clock.Advance(time.Minute)

	w := e.do(http.MethodPost, "/rotate", before)
	require.Equal(t, http.StatusNoContent, w.Code)
	after := cookieHeader(t, w)
	assert.NotEqual(t, before, after)
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))

	assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", before).Code, "old ID dies at once")
	w = e.do(http.MethodGet, "/profile", after)
	require.Equal(t, http.StatusOK, w.Code)
	assert.JSONEq(t, `{"userId":"alice","data":{"role":"user"}}`, w.Body.String())
}

func TestIdleExpiry(t *testing.T) {
	e := newEnv(t, ginsession.WithIdleTimeout(10*time.Minute), ginsession.WithRefreshInterval(time.Minute))
	cookie := e.login("alice")

	// Activity every 9 minutes keeps the session alive well past 10 minutes.
	for i := 0; i < 5; i++ {
		e.clock.Advance(9 * time.Minute)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", cookie).Code, "request %d", i)
	}
	// Ten idle minutes end it, and the stale cookie is cleared.
	e.clock.Advance(10 * time.Minute)
	w := e.do(http.MethodGet, "/profile", cookie)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	if c := sessionCookie(t, w); assert.NotNil(t, c, "stale cookie cleared") {
		assert.Empty(t, c.Value)
	}
}

func TestIdleExpiryBoundary(t *testing.T) {
	e := newEnv(t, ginsession.WithIdleTimeout(10*time.Minute))
	cookie := e.login("alice")
	e.clock.Advance(10*time.Minute - time.Nanosecond)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", cookie).Code)
	// That request refreshed the deadline to a full idle timeout from now.
	e.clock.Advance(10*time.Minute - time.Nanosecond)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", cookie).Code)
	e.clock.Advance(10 * time.Minute)
	assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", cookie).Code)
}

func TestAbsoluteExpiry(t *testing.T) {
	e := newEnv(t, ginsession.WithIdleTimeout(10*time.Minute), ginsession.WithAbsoluteTimeout(time.Hour))
	cookie := e.login("alice")

	steps := []struct {
		advance time.Duration
		want    int
	}{
		{9 * time.Minute, http.StatusOK},       // 0:09
		{9 * time.Minute, http.StatusOK},       // 0:18
		{9 * time.Minute, http.StatusOK},       // 0:27
		{9 * time.Minute, http.StatusOK},       // 0:36
		{9 * time.Minute, http.StatusOK},       // 0:45
		{9 * time.Minute, http.StatusOK},       // 0:54
		{5 * time.Minute, http.StatusOK},       // 0:59, active, but the deadline is 1:00
		{time.Minute, http.StatusUnauthorized}, // 1:00
	}
	for i, st := range steps {
		e.clock.Advance(st.advance)
		assert.Equal(t, st.want, e.do(http.MethodGet, "/profile", cookie).Code, "step %d", i)
	}
}

func TestSlidingExpiryWritesOncePerInterval(t *testing.T) {
	e := newEnv(t, ginsession.WithIdleTimeout(30*time.Minute), ginsession.WithRefreshInterval(time.Minute))
	cookie := e.login("alice")
	writesAfterLogin := e.store.adds.Load() + e.store.updates.Load() + e.store.touches.Load()

	// 60 requests 10 s apart span 10 minutes: at most one touch a minute.
	for i := 0; i < 60; i++ {
		e.clock.Advance(10 * time.Second)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", cookie).Code)
	}
	touches := e.store.touches.Load()
	assert.GreaterOrEqual(t, touches, int64(9))
	assert.LessOrEqual(t, touches, int64(10))
	assert.Equal(t, writesAfterLogin+touches, e.store.adds.Load()+e.store.updates.Load()+e.store.touches.Load(),
		"reads write nothing but touches")
	assert.Equal(t, uint64(touches), e.m.Stats().Refreshes)

	// A read right after login writes nothing at all.
	fresh := e.login("bob")
	before := e.store.touches.Load()
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", fresh).Code)
	assert.Equal(t, before, e.store.touches.Load())
}

func TestMalformedCookiesNeverReachTheStore(t *testing.T) {
	e := newEnv(t)
	name := ginsession.DefaultCookieName + "="
	valid := strings.Repeat("A", 43)
	tests := map[string]string{
		"empty":              name,
		"too short":          name + valid[:42],
		"too long":           name + valid + "A",
		"wrong alphabet":     name + strings.Repeat("A", 42) + "+",
		"padding":            name + strings.Repeat("A", 41) + "==",
		"non-canonical tail": name + strings.Repeat("A", 42) + "B",
		"4 KB of junk":       name + strings.Repeat("x", 4096),
		"unicode":            name + strings.Repeat("é", 21) + "A",
		"quoted":             name + `"` + valid[:41] + `"`,
		"spaces inside":      name + strings.Repeat("A", 20) + " " + strings.Repeat("A", 22),
		"control characters": name + strings.Repeat("A", 42) + "\x00",
		"path traversal":     name + "../../etc/passwd",
		"sql":                name + "' OR 1=1 --",
	}
	for desc, cookie := range tests {
		t.Run(desc, func(t *testing.T) {
			before := e.store.calls()
			malformed := e.m.Stats().Malformed
			w := e.do(http.MethodGet, "/profile", cookie)
			assert.Equal(t, http.StatusUnauthorized, w.Code)
			assert.Equal(t, before, e.store.calls(), "no store call for a malformed ID")
			assert.Equal(t, malformed+1, e.m.Stats().Malformed, "counted")
		})
	}
}

func TestUnknownIDIsCountedAndCleared(t *testing.T) {
	e := newEnv(t)
	w := e.do(http.MethodGet, "/profile", ginsession.DefaultCookieName+"="+strings.Repeat("A", 43))
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Equal(t, int64(1), e.store.gets.Load())
	assert.Equal(t, uint64(1), e.m.Stats().Unknown)
	if c := sessionCookie(t, w); assert.NotNil(t, c) {
		assert.Empty(t, c.Value)
	}
}

func TestOtherCookiesAreIgnored(t *testing.T) {
	e := newEnv(t)
	cookie := e.login("alice")
	w := e.do(http.MethodGet, "/profile", "theme=dark; other=1;"+cookie+"; x=y")
	assert.Equal(t, http.StatusOK, w.Code)
	w = e.do(http.MethodGet, "/profile", "theme=dark")
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Zero(t, e.m.Stats().Malformed)
}

func TestFailingStoreAnswers503(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, ginsession.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	cookie := e.login("alice")
	e.store.fail.Store(true)

	w := e.do(http.MethodGet, "/profile", cookie)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.JSONEq(t, `{"error":"session store unavailable"}`, w.Body.String())
	assert.Equal(t, uint64(1), e.m.Stats().StoreErrors)
	assert.Contains(t, logs.String(), "connection refused", "the error is logged")
	id := strings.TrimPrefix(cookie, ginsession.DefaultCookieName+"=")
	assert.NotContains(t, logs.String(), id, "never the session ID")
	assert.NotContains(t, w.Body.String(), id)

	e.store.fail.Store(false)
	assert.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", cookie).Code, "recovers with the store")
}

func TestCustomErrorHandler(t *testing.T) {
	var got error
	e := newEnv(t, ginsession.WithErrorHandler(func(c *gin.Context, err error) {
		got = err
		c.AbortWithStatus(http.StatusTeapot)
	}))
	cookie := e.login("alice")
	e.store.fail.Store(true)
	assert.Equal(t, http.StatusTeapot, e.do(http.MethodGet, "/profile", cookie).Code)
	assert.ErrorIs(t, got, errDown)
}

func TestMiddlewareSetsManagerAndSession(t *testing.T) {
	m := ginsession.NewManager(nil)
	t.Cleanup(func() { _ = m.Close() })
	r := gin.New()
	r.Use(m.Middleware())
	r.GET("/", func(c *gin.Context) {
		assert.Same(t, m, c.MustGet(ginsession.ManagerKey))
		_, ok := c.Get(ginsession.SessionKey)
		assert.False(t, ok)
		c.Status(http.StatusNoContent)
	})
	assert.Equal(t, http.StatusNoContent, performRequest(r, http.MethodGet, "/", "").Code)
}

func TestHelpersWithoutMiddleware(t *testing.T) {
	r := gin.New()
	r.GET("/", func(c *gin.Context) {
		_, err := ginsession.Login(c, "alice", nil)
		assert.ErrorIs(t, err, ginsession.ErrNoManager)
		assert.ErrorIs(t, ginsession.Logout(c), ginsession.ErrNoManager)
		_, err = ginsession.Rotate(c)
		assert.ErrorIs(t, err, ginsession.ErrNoManager)
		c.Status(http.StatusNoContent)
	})
	assert.Equal(t, http.StatusNoContent, performRequest(r, http.MethodGet, "/", "").Code)
}

func TestLogoutAndRotateWithoutSession(t *testing.T) {
	m := ginsession.NewManager(nil)
	t.Cleanup(func() { _ = m.Close() })
	r := gin.New()
	r.Use(ginsession.New(m))
	r.GET("/", func(c *gin.Context) {
		assert.ErrorIs(t, ginsession.Logout(c), ginsession.ErrNoSession)
		_, err := ginsession.Rotate(c)
		assert.ErrorIs(t, err, ginsession.ErrNoSession)
		c.Status(http.StatusNoContent)
	})
	assert.Equal(t, http.StatusNoContent, performRequest(r, http.MethodGet, "/", "").Code)
}

func TestLoginResponseSetsOneCookieAfterStaleClear(t *testing.T) {
	e := newEnv(t)
	// A stale cookie is cleared by the middleware, then login sets a new one:
	// the response must carry only the new cookie.
	w := e.do(http.MethodPost, "/login?user=alice", ginsession.DefaultCookieName+"="+strings.Repeat("A", 43))
	require.Equal(t, http.StatusOK, w.Code)
	assert.Len(t, w.Header().Values("Set-Cookie"), 1)
	assert.NotEmpty(t, sessionCookie(t, w).Value)
}

func TestProfileDataIsJSON(t *testing.T) {
	e := newEnv(t)
	cookie := e.login("alice")
	w := e.do(http.MethodGet, "/profile", cookie)
	var body map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	assert.Equal(t, "alice", body["userId"])
}
