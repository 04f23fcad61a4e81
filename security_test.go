package ginsession_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
)

func idOf(cookie string) string {
	return strings.TrimPrefix(cookie, ginsession.DefaultCookieName+"=")
}

// csrfRouter is a router with CSRF protection and a token endpoint.
func csrfRouter(m *ginsession.Manager) *gin.Engine {
	r := newTestRouter(m)
	g := r.Group("/app", ginsession.CSRF())
	g.GET("/token", func(c *gin.Context) { c.String(http.StatusOK, ginsession.CSRFToken(c)) })
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		g.Handle(method, "/do", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	}
	return r
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	r := csrfRouter(e.m)
	cookie := e.login("alice")

	w := performRequest(r, http.MethodGet, "/app/token", cookie)
	require.Equal(t, http.StatusOK, w.Code)
	token := w.Body.String()
	require.Len(t, token, 43)
	assert.NotContains(t, token, idOf(cookie))

	send := func(method, header, form string) int {
		var body *strings.Reader
		if form != "" {
			body = strings.NewReader(url.Values{ginsession.CSRFFormField: {form}}.Encode())
		} else {
			body = strings.NewReader("")
		}
		req := httptest.NewRequest(method, "/app/do", body)
		req.Header.Set("Cookie", cookie)
		if form != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if header != "" {
			req.Header.Set(ginsession.CSRFHeader, header)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code == http.StatusForbidden {
			assert.JSONEq(t, `{"error":"invalid CSRF token"}`, w.Body.String())
		}
		return w.Code
	}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			assert.Equal(t, http.StatusForbidden, send(method, "", ""), "no token")
			assert.Equal(t, http.StatusForbidden, send(method, "wrong", ""), "wrong token")
			assert.Equal(t, http.StatusForbidden, send(method, token[:42], ""), "truncated token")
			assert.Equal(t, http.StatusNoContent, send(method, token, ""), "header")
		})
	}
	assert.Equal(t, http.StatusNoContent, send(http.MethodPost, "", token), "form field")
	req := httptest.NewRequest(http.MethodPost, "/app/do", strings.NewReader(url.Values{"_csrf": {token}}.Encode()))
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w = httptest.NewRecorder()
	r.ServeHTTP(w, req)
	assert.Equal(t, http.StatusNoContent, w.Code, "the _csrf form field")
	assert.Equal(t, http.StatusOK, performRequest(r, http.MethodGet, "/app/token", cookie).Code, "safe methods pass")

	// The token belongs to the session, not to its ID: rotation keeps it.
	w = performRequest(r, http.MethodPost, "/rotate", cookie)
	require.Equal(t, http.StatusNoContent, w.Code)
	rotated := cookieHeader(t, w)
	assert.Equal(t, token, performRequest(r, http.MethodGet, "/app/token", rotated).Body.String())
	cookie = rotated
	assert.Equal(t, http.StatusNoContent, send(http.MethodPost, token, ""))

	// Login makes a new session, with a new token.
	w = performRequest(r, http.MethodPost, "/login?user=alice", cookie)
	require.Equal(t, http.StatusOK, w.Code)
	cookie = cookieHeader(t, w)
	newToken := performRequest(r, http.MethodGet, "/app/token", cookie).Body.String()
	assert.NotEqual(t, token, newToken)
	assert.Equal(t, http.StatusForbidden, send(http.MethodPost, token, ""))
	assert.Equal(t, http.StatusNoContent, send(http.MethodPost, newToken, ""))
}

func TestCSRFWithoutSessionPasses(t *testing.T) {
	e := newEnv(t)
	r := csrfRouter(e.m)
	assert.Equal(t, http.StatusNoContent, performRequest(r, http.MethodPost, "/app/do", "").Code)
	assert.Empty(t, performRequest(r, http.MethodGet, "/app/token", "").Body.String())
}

func TestDeleteUserSessions(t *testing.T) {
	e := newEnv(t)
	a1, a2, a3 := e.login("alice"), e.login("alice"), e.login("alice")
	bob := e.login("bob")

	require.NoError(t, e.m.DeleteUserSessions(ctx, "alice"))
	for _, c := range []string{a1, a2, a3} {
		assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", c).Code)
	}
	assert.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", bob).Code, "other users keep theirs")

	// Alice can log in again afterwards.
	again := e.login("alice")
	assert.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", again).Code)
	require.NoError(t, e.m.DeleteUserSessions(ctx, "nobody"), "unknown users are not an error")
}

func TestDeleteUserSessionsIncludesRotated(t *testing.T) {
	e := newEnv(t)
	c := e.login("alice")
	w := e.do(http.MethodPost, "/rotate", c)
	require.Equal(t, http.StatusNoContent, w.Code)
	rotated := cookieHeader(t, w)
	require.NoError(t, e.m.DeleteUserSessions(ctx, "alice"))
	assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", rotated).Code)
}

func TestListAndDeleteByHandle(t *testing.T) {
	e := newEnv(t, ginsession.WithIdleTimeout(30*time.Minute))
	phone := e.login("alice")
	e.clock.Advance(time.Minute)
	laptop := e.login("alice")
	e.clock.Advance(5 * time.Minute)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", laptop).Code) // laptop active now

	list, err := e.m.ListUserSessions(ctx, "alice")
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, t0, list[0].CreatedAt)
	assert.Equal(t, t0.Add(time.Minute), list[1].CreatedAt)
	assert.WithinDuration(t, t0, list[0].LastSeen, 0, "phone idle since login")
	assert.WithinDuration(t, t0.Add(6*time.Minute), list[1].LastSeen, time.Minute, "laptop seen now")
	for _, info := range list {
		assert.NotContains(t, []string{idOf(phone), idOf(laptop)}, info.Handle, "no bearer token in the list")
	}

	// Revoke the phone by handle; the laptop stays.
	require.NoError(t, e.m.DeleteSessionByHandle(ctx, "alice", list[0].Handle))
	assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", phone).Code)
	assert.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", laptop).Code)
	assert.ErrorIs(t, e.m.DeleteSessionByHandle(ctx, "alice", list[0].Handle), ginsession.ErrNotFound)
	assert.ErrorIs(t, e.m.DeleteSessionByHandle(ctx, "bob", list[1].Handle), ginsession.ErrNotFound,
		"a handle only works for its own user")

	list, err = e.m.ListUserSessions(ctx, "alice")
	require.NoError(t, err)
	require.Len(t, list, 1)

	// Logged-out and expired sessions are not listed.
	require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/logout", laptop).Code)
	list, err = e.m.ListUserSessions(ctx, "alice")
	require.NoError(t, err)
	assert.Empty(t, list)
}

func TestMaxSessionsPerUser(t *testing.T) {
	e := newEnv(t, ginsession.WithMaxSessionsPerUser(2))
	first := e.login("alice")
	e.clock.Advance(time.Second)
	second := e.login("alice")
	e.clock.Advance(time.Second)
	third := e.login("alice")
	assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", first).Code, "oldest ended")
	assert.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", second).Code)
	assert.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", third).Code)
}

func TestRevocationRacingCreation(t *testing.T) {
	// Sessions created before DeleteUserSessions returns either die or were
	// created after it started; none created before it started survives.
	e := newEnv(t)
	for round := 0; round < 20; round++ {
		before := make([]string, 5)
		for i := range before {
			before[i] = e.login("alice")
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			assert.NoError(t, e.m.DeleteUserSessions(ctx, "alice"))
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				_, err := e.m.CreateSession(ctx, "alice", nil)
				assert.NoError(t, err)
			}
		}()
		wg.Wait()
		for _, c := range before {
			require.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", c).Code, "round %d", round)
		}
		// Whatever survived is listed, so a second revocation ends it.
		require.NoError(t, e.m.DeleteUserSessions(ctx, "alice"))
		list, err := e.m.ListUserSessions(ctx, "alice")
		require.NoError(t, err)
		require.Empty(t, list)
	}
}

func TestRotationGrace(t *testing.T) {
	e := newEnv(t, ginsession.WithRotationGrace(10*time.Second))
	old := e.login("alice")
	w := e.do(http.MethodPost, "/rotate", old)
	require.Equal(t, http.StatusNoContent, w.Code)
	fresh := cookieHeader(t, w)

	// In flight with the old cookie: still served, as the new session.
	e.clock.Advance(9 * time.Second)
	w = e.do(http.MethodGet, "/profile", old)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Nil(t, sessionCookie(t, w), "the old cookie is neither cleared nor replaced")
	require.NoError(t, e.m.UpdateSession(ctx, idOf(old), map[string]any{"via": "old"}))
	s, err := e.m.GetSession(ctx, idOf(fresh))
	require.NoError(t, err)
	assert.Equal(t, "old", s.Data["via"], "an update through the old ID lands on the new session")

	// After the grace period the old ID is dead; the new one lives.
	e.clock.Advance(time.Second)
	assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", old).Code)
	assert.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", fresh).Code)
}

func TestRotationGraceLogoutThroughOldID(t *testing.T) {
	e := newEnv(t, ginsession.WithRotationGrace(10*time.Second))
	old := e.login("alice")
	w := e.do(http.MethodPost, "/rotate", old)
	require.Equal(t, http.StatusNoContent, w.Code)
	fresh := cookieHeader(t, w)
	require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/logout", old).Code)
	assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", fresh).Code, "logout ends the session")
	assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", old).Code)
}

func TestRotationWithoutGraceKillsOldIDAtOnce(t *testing.T) {
	e := newEnv(t)
	old := e.login("alice")
	require.Equal(t, http.StatusNoContent, e.do(http.MethodPost, "/rotate", old).Code)
	assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", old).Code)
}

func TestAutomaticRenewal(t *testing.T) {
	e := newEnv(t,
		ginsession.WithRenewalInterval(15*time.Minute),
		ginsession.WithIdleTimeout(time.Hour),
		ginsession.WithAbsoluteTimeout(2*time.Hour))
	cookie := e.login("alice")
	s, err := e.m.GetSession(ctx, idOf(cookie))
	require.NoError(t, err)
	abs := s.AbsoluteExpiresAt

	e.clock.Advance(14 * time.Minute)
	w := e.do(http.MethodGet, "/profile", cookie)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Nil(t, sessionCookie(t, w), "not yet due")

	e.clock.Advance(time.Minute)
	w = e.do(http.MethodGet, "/profile", cookie)
	require.Equal(t, http.StatusOK, w.Code)
	renewed := cookieHeader(t, w)
	assert.NotEqual(t, cookie, renewed, "a new ID after the renewal interval")
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", cookie).Code)
	s, err = e.m.GetSession(ctx, idOf(renewed))
	require.NoError(t, err)
	assert.Equal(t, abs, s.AbsoluteExpiresAt, "the absolute deadline never moves")
	assert.Equal(t, "alice", s.UserID)
}

func TestUnknownIDHook(t *testing.T) {
	var calls atomic.Int64
	var ips sync.Map
	e := newEnv(t, ginsession.WithUnknownIDHook(func(c *gin.Context) {
		calls.Add(1)
		ips.Store(c.ClientIP(), true)
	}))
	cookie := e.login("alice")
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", cookie).Code)
	assert.Zero(t, calls.Load(), "live sessions are not reported")

	for i := 0; i < 3; i++ {
		e.do(http.MethodGet, "/profile", ginsession.DefaultCookieName+"="+strings.Repeat("B", 42)+"A") // unknown
		e.do(http.MethodGet, "/profile", ginsession.DefaultCookieName+"=junk")                         // malformed
	}
	assert.Equal(t, int64(6), calls.Load())
	_, seen := ips.Load("192.0.2.1") // httptest's RemoteAddr
	assert.True(t, seen)
	st := e.m.Stats()
	assert.Equal(t, uint64(3), st.Unknown)
	assert.Equal(t, uint64(3), st.Malformed)
}

func TestUnknownIDIsNeverAdopted(t *testing.T) {
	e := newEnv(t)
	planted := strings.Repeat("C", 42) + "A"
	w := e.do(http.MethodGet, "/profile", ginsession.DefaultCookieName+"="+planted)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	c := sessionCookie(t, w)
	require.NotNil(t, c, "stale cookie cleared")
	assert.Empty(t, c.Value)
	_, err := e.m.GetSession(ctx, planted)
	assert.ErrorIs(t, err, ginsession.ErrNotFound, "no session was created under it")
}

func TestTokenHashKeyChangesStoreKeys(t *testing.T) {
	e1 := newEnv(t)
	e2 := newEnv(t, ginsession.WithTokenHashKey([]byte("server secret")))
	s, err := e1.m.CreateSession(ctx, "alice", nil)
	require.NoError(t, err)
	// Plant the same record under the unkeyed hash in e2's store: e2 must not
	// find it, because it looks up HMAC(key, ID).
	item, err := e1.store.Get(ctx, sha256Key(s.ID))
	require.NoError(t, err)
	require.NoError(t, e2.store.Add(ctx, sha256Key(s.ID), item.Record, item.ExpiresAt))
	_, err = e2.m.GetSession(ctx, s.ID)
	assert.ErrorIs(t, err, ginsession.ErrNotFound)

	s2, err := e2.m.CreateSession(ctx, "bob", nil)
	require.NoError(t, err)
	_, err = e2.store.Get(ctx, sha256Key(s2.ID))
	assert.Error(t, err, "keyed store keys are not the plain SHA-256 of the ID")
	_, err = e2.m.GetSession(ctx, s2.ID)
	assert.NoError(t, err)
}

func TestNoRawIDInLogs(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnv(t, ginsession.WithLogger(logger))
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, idOf(e.login(fmt.Sprint("user", i))))
	}
	e.store.fail.Store(true)
	for _, id := range ids {
		e.do(http.MethodGet, "/profile", ginsession.DefaultCookieName+"="+id)
	}
	require.NotEmpty(t, logs.String(), "errors were logged")
	for _, id := range ids {
		assert.NotContains(t, logs.String(), id)
	}
}
