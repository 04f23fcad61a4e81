package ginsession_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/stores"
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

func TestRateLimitedLoginChangesNothing(t *testing.T) {
	e := newEnv(t, ginsession.WithCreateLimiter(ginsession.NewLimiter(1, time.Minute)))
	cookie := e.login("alice")
	// A second login from the same browser is refused by the limiter: the
	// session it carried and its cookie are untouched.
	w := e.do(http.MethodPost, "/login?user=alice", cookie)
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Empty(t, w.Header().Values("Set-Cookie"), "no cookie is set or cleared")
	assert.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", cookie).Code, "the session still works")
}

func TestAnonymousLoginsAreLimitedPerClientIP(t *testing.T) {
	e := newEnv(t, ginsession.WithCreateLimiter(ginsession.NewLimiter(1, time.Minute)))
	e.engine.SetTrustedProxies(nil)
	anon := func(ip string) int {
		req := httptest.NewRequest(http.MethodPost, "/login", nil) // no user: anonymous
		req.RemoteAddr = ip + ":1234"
		w := httptest.NewRecorder()
		e.engine.ServeHTTP(w, req)
		return w.Code
	}
	assert.Equal(t, http.StatusOK, anon("192.0.2.1"))
	assert.Equal(t, http.StatusTooManyRequests, anon("192.0.2.1"), "the same client is limited")
	assert.Equal(t, http.StatusOK, anon("192.0.2.2"), "another client has a quota of its own")
	// CreateSession has no request: anonymous sessions share one quota.
	_, err := e.m.CreateSession(ctx, "", nil)
	require.NoError(t, err)
	_, err = e.m.CreateSession(ctx, "", nil)
	assert.ErrorIs(t, err, ginsession.ErrRateLimited)
}

func TestFailedLoginOverASessionClearsItsCookie(t *testing.T) {
	e := newEnv(t)
	e.engine.POST("/login-bad", func(c *gin.Context) {
		_, err := ginsession.Login(c, "alice", map[string]any{"bad": struct{}{}})
		require.Error(t, err)
		c.Status(http.StatusBadRequest)
	})
	cookie := e.login("alice")
	w := e.do(http.MethodPost, "/login-bad", cookie)
	require.Equal(t, http.StatusBadRequest, w.Code)
	c := sessionCookie(t, w)
	require.NotNil(t, c, "the cookie of the session that Login ended is cleared")
	assert.Empty(t, c.Value)
	assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", cookie).Code)
}

func TestUpdateSessionKeepsRequestCancellation(t *testing.T) {
	for _, sc := range storeCases {
		t.Run(sc.name, func(t *testing.T) {
			e := realEnv(t, sc.new(t))
			cookie := e.login("alice")
			reqCtx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var got error
			r := gin.New()
			r.Use(ginsession.New(e.m))
			r.POST("/cancelled", func(c *gin.Context) {
				s, _ := ginsession.Current(c)
				cancel() // the client went away
				got = e.m.UpdateSession(c.Request.Context(), s.ID, map[string]any{"k": 1})
				c.Status(http.StatusNoContent)
			})
			req := httptest.NewRequest(http.MethodPost, "/cancelled", nil).WithContext(reqCtx)
			req.Header.Set("Cookie", cookie)
			r.ServeHTTP(httptest.NewRecorder(), req)
			assert.ErrorIs(t, got, context.Canceled, "the request's cancellation reaches the store")
			s, err := e.m.GetSession(ctx, idOf(cookie))
			require.NoError(t, err)
			assert.NotContains(t, s.Data, "k", "nothing written")
		})
	}
}

func TestMustCurrent(t *testing.T) {
	e := newEnv(t)
	e.engine.GET("/must", func(c *gin.Context) {
		defer func() {
			msg, _ := recover().(string)
			c.String(http.StatusInternalServerError, msg)
		}()
		s := ginsession.MustCurrent(c)
		c.String(http.StatusOK, s.UserID)
	})
	w := e.do(http.MethodGet, "/must", "")
	require.Equal(t, http.StatusInternalServerError, w.Code)
	assert.Contains(t, w.Body.String(), "ginsession.MustCurrent")
	assert.Contains(t, w.Body.String(), "Required", "the panic names the middleware that was missing")

	cookie := e.login("alice")
	w = e.do(http.MethodGet, "/must", cookie)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "alice", w.Body.String())
	s, err := e.m.GetSession(ctx, idOf(cookie))
	require.NoError(t, err)
	e.engine.GET("/same", func(c *gin.Context) {
		assert.Same(t, c.MustGet("session"), ginsession.MustCurrent(c), "c.MustGet(\"session\") keeps working")
		c.String(http.StatusOK, ginsession.MustCurrent(c).Handle)
	})
	assert.Equal(t, s.Handle, e.do(http.MethodGet, "/same", cookie).Body.String())
}

func TestSingleKeyWritesCostOneUpdate(t *testing.T) {
	e := newEnv(t)
	e.engine.POST("/w", func(c *gin.Context) {
		var err error
		switch c.Query("op") {
		case "set":
			err = ginsession.Set(c, "k", 1)
		case "delete":
			err = ginsession.Delete(c, "k", "role")
		case "clear":
			err = ginsession.Clear(c)
		case "flash":
			err = ginsession.AddFlash(c, "hi")
		case "flashes":
			_, err = ginsession.Flashes(c)
		case "pop":
			_, err = ginsession.Pop(c, "k")
		}
		require.NoError(t, err)
		c.Status(http.StatusNoContent)
	})
	cookie := e.login("alice")
	for _, op := range []string{"set", "pop", "set", "delete", "flash", "flashes", "clear"} {
		before := e.store.calls()
		require.Equal(t, http.StatusNoContent, e.do(http.MethodPost, "/w?op="+op, cookie).Code)
		assert.EqualValues(t, 2, e.store.calls()-before, "%s: the middleware's read and one atomic update", op)
	}
	// Pop and Flashes with nothing to take write nothing.
	for _, op := range []string{"pop", "flashes"} {
		before := e.store.calls()
		require.Equal(t, http.StatusNoContent, e.do(http.MethodPost, "/w?op="+op, cookie).Code)
		assert.EqualValues(t, 1, e.store.calls()-before, "%s of nothing: the middleware's read only", op)
	}
}

func TestHelpersWithoutSession(t *testing.T) {
	e := newEnv(t)
	e.engine.POST("/w", func(c *gin.Context) {
		_, flashErr := ginsession.Flashes(c)
		_, popErr := ginsession.Pop(c, "k")
		for _, err := range []error{ginsession.Set(c, "k", 1), ginsession.Delete(c, "k"), ginsession.Clear(c), ginsession.AddFlash(c, "x"), flashErr, popErr} {
			assert.ErrorIs(t, err, ginsession.ErrNoSession)
		}
		c.Status(http.StatusNoContent)
	})
	require.Equal(t, http.StatusNoContent, e.do(http.MethodPost, "/w", "").Code)
	e.engine.POST("/bad", func(c *gin.Context) {
		var ute *stores.UnsupportedTypeError
		assert.ErrorAs(t, ginsession.Set(c, "k", struct{}{}), &ute)
		assert.ErrorAs(t, ginsession.AddFlash(c, struct{}{}), &ute)
		c.Status(http.StatusNoContent)
	})
	cookie := e.login("alice")
	require.Equal(t, http.StatusNoContent, e.do(http.MethodPost, "/bad", cookie).Code)
	s, err := e.m.GetSession(ctx, idOf(cookie))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"role": "user"}, s.Data, "nothing written")
}
