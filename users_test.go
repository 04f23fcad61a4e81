package ginsession_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
)

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
