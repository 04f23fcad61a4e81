package ginsession_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
)

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

func TestOtherCookiesAreIgnored(t *testing.T) {
	e := newEnv(t)
	cookie := e.login("alice")
	w := e.do(http.MethodGet, "/profile", "theme=dark; other=1;"+cookie+"; x=y")
	assert.Equal(t, http.StatusOK, w.Code)
	w = e.do(http.MethodGet, "/profile", "theme=dark")
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Zero(t, e.m.Stats().Malformed)
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
