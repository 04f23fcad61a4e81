package ginsession_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/stores"
)

var ctx = context.Background()

func TestCreateAndGet(t *testing.T) {
	e := newEnv(t, ginsession.WithIdleTimeout(20*time.Minute), ginsession.WithAbsoluteTimeout(4*time.Hour))
	data := map[string]any{"role": "admin", "n": 3, "tags": []string{"a"}}
	s, err := e.m.CreateSession(ctx, "alice", data)
	require.NoError(t, err)
	data["role"] = "changed by caller" // the session keeps its own copy

	assert.Len(t, s.ID, 43)
	assert.NotEmpty(t, s.Handle)
	assert.NotEqual(t, s.ID, s.Handle)
	assert.Equal(t, t0, s.CreatedAt)
	assert.Equal(t, t0.Add(20*time.Minute), s.ExpiresAt)
	assert.Equal(t, t0.Add(4*time.Hour), s.AbsoluteExpiresAt)

	got, err := e.m.GetSession(ctx, s.ID)
	require.NoError(t, err)
	assert.Equal(t, "alice", got.UserID)
	assert.Equal(t, s.Handle, got.Handle)
	assert.Equal(t, map[string]any{"role": "admin", "n": 3, "tags": []string{"a"}}, got.Data)
	assert.Equal(t, "admin", got.GetString("role"))
	v, ok := got.Get("n")
	assert.True(t, ok)
	assert.Equal(t, 3, v)
	assert.WithinDuration(t, s.ExpiresAt, got.ExpiresAt, 0)
}

func TestIDsAreUnique(t *testing.T) {
	e := newEnv(t)
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		s, err := e.m.CreateSession(ctx, "u", nil)
		require.NoError(t, err)
		require.False(t, seen[s.ID])
		seen[s.ID] = true
	}
}

func TestGetSessionNotFound(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"", "short", "A", "../../etc/passwd", string(make([]byte, 43))} {
		_, err := e.m.GetSession(ctx, id)
		assert.ErrorIs(t, err, ginsession.ErrNotFound, "%q", id)
	}
	assert.Zero(t, e.store.calls(), "malformed IDs never reach the store")

	s, err := e.m.CreateSession(ctx, "alice", nil)
	require.NoError(t, err)
	require.NoError(t, e.m.DeleteSession(ctx, s.ID))
	_, err = e.m.GetSession(ctx, s.ID)
	assert.ErrorIs(t, err, ginsession.ErrNotFound)
}

func TestUnsupportedValueType(t *testing.T) {
	e := newEnv(t)
	type custom struct{ A int }
	_, err := e.m.CreateSession(ctx, "alice", map[string]any{"x": custom{1}})
	var ute *stores.UnsupportedTypeError
	require.ErrorAs(t, err, &ute)
	assert.Equal(t, "x", ute.Key)
	assert.Zero(t, e.store.adds.Load(), "nothing written")

	s, err := e.m.CreateSession(ctx, "alice", map[string]any{"ok": 1})
	require.NoError(t, err)
	err = e.m.UpdateSession(ctx, s.ID, map[string]any{"bad": make(chan int)})
	require.ErrorAs(t, err, &ute)
	got, err := e.m.GetSession(ctx, s.ID)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"ok": 1}, got.Data)
}

func TestUpdateMerges(t *testing.T) {
	e := newEnv(t)
	s, err := e.m.CreateSession(ctx, "alice", map[string]any{"a": 1, "b": "two", "c": true})
	require.NoError(t, err)

	require.NoError(t, e.m.UpdateSession(ctx, s.ID, map[string]any{"b": "deux", "c": nil, "d": 4.5}))
	got, err := e.m.GetSession(ctx, s.ID)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"a": 1, "b": "deux", "d": 4.5}, got.Data)
	assert.Equal(t, map[string]any{"a": 1, "b": "two", "c": true}, s.Data, "earlier snapshots do not change")

	assert.ErrorIs(t, e.m.UpdateSession(ctx, "nope", map[string]any{"a": 1}), ginsession.ErrNotFound)
	require.NoError(t, e.m.DeleteSession(ctx, s.ID))
	assert.ErrorIs(t, e.m.UpdateSession(ctx, s.ID, map[string]any{"a": 1}), ginsession.ErrNotFound,
		"an update never brings a deleted session back")
	_, err = e.m.GetSession(ctx, s.ID)
	assert.ErrorIs(t, err, ginsession.ErrNotFound)
}

func TestUpdateExtendsIdleDeadline(t *testing.T) {
	e := newEnv(t, ginsession.WithIdleTimeout(10*time.Minute))
	s, err := e.m.CreateSession(ctx, "alice", nil)
	require.NoError(t, err)
	e.clock.Advance(8 * time.Minute)
	require.NoError(t, e.m.UpdateSession(ctx, s.ID, map[string]any{"k": "v"}))
	e.clock.Advance(8 * time.Minute)
	got, err := e.m.GetSession(ctx, s.ID)
	require.NoError(t, err)
	assert.WithinDuration(t, t0.Add(18*time.Minute), got.ExpiresAt, 0)
}

func TestConcurrentUpdatesKeepEveryWrite(t *testing.T) {
	e := newEnv(t)
	s, err := e.m.CreateSession(ctx, "alice", nil)
	require.NoError(t, err)

	const goroutines, keys = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*keys)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < keys; k++ {
				if err := e.m.UpdateSession(ctx, s.ID, map[string]any{fmt.Sprintf("g%d-k%d", g, k): k}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := e.m.GetSession(ctx, s.ID)
	require.NoError(t, err)
	assert.Len(t, got.Data, goroutines*keys)
	assert.Equal(t, 7, got.Data["g49-k7"])
}

func TestRefreshSession(t *testing.T) {
	e := newEnv(t, ginsession.WithIdleTimeout(10*time.Minute), ginsession.WithAbsoluteTimeout(25*time.Minute))
	s, err := e.m.CreateSession(ctx, "alice", map[string]any{"k": "v"})
	require.NoError(t, err)

	e.clock.Advance(9 * time.Minute)
	writes := e.store.updates.Load() + e.store.adds.Load()
	require.NoError(t, e.m.RefreshSession(ctx, s.ID))
	got, err := e.m.GetSession(ctx, s.ID)
	require.NoError(t, err)
	assert.WithinDuration(t, t0.Add(19*time.Minute), got.ExpiresAt, 0)
	assert.Equal(t, writes, e.store.updates.Load()+e.store.adds.Load(), "refresh rewrites no data")
	assert.Equal(t, int64(1), e.store.touches.Load())

	e.clock.Advance(9 * time.Minute) // 0:18
	require.NoError(t, e.m.RefreshSession(ctx, s.ID))
	got, err = e.m.GetSession(ctx, s.ID)
	require.NoError(t, err)
	assert.WithinDuration(t, t0.Add(25*time.Minute), got.ExpiresAt, 0, "never past the absolute deadline")

	e.clock.Advance(7 * time.Minute) // 0:25
	assert.ErrorIs(t, e.m.RefreshSession(ctx, s.ID), ginsession.ErrNotFound)
	assert.ErrorIs(t, e.m.RefreshSession(ctx, "junk"), ginsession.ErrNotFound)
}

func TestRotateSession(t *testing.T) {
	e := newEnv(t, ginsession.WithAbsoluteTimeout(time.Hour))
	s, err := e.m.CreateSession(ctx, "alice", map[string]any{"cart": []string{"book"}})
	require.NoError(t, err)
	e.clock.Advance(10 * time.Minute)

	r, err := e.m.RotateSession(ctx, s.ID)
	require.NoError(t, err)
	assert.NotEqual(t, s.ID, r.ID)
	assert.Equal(t, s.UserID, r.UserID)
	assert.Equal(t, s.Handle, r.Handle, "the public handle is stable")
	assert.Equal(t, s.Data, r.Data)
	assert.Equal(t, s.CreatedAt, r.CreatedAt)
	assert.Equal(t, s.AbsoluteExpiresAt, r.AbsoluteExpiresAt, "rotation never moves the absolute deadline")

	_, err = e.m.GetSession(ctx, s.ID)
	assert.ErrorIs(t, err, ginsession.ErrNotFound, "the old ID stops working at once")
	got, err := e.m.GetSession(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"book"}, got.Data["cart"])

	_, err = e.m.RotateSession(ctx, s.ID)
	assert.ErrorIs(t, err, ginsession.ErrNotFound)
}

func TestRotateKeepsConcurrentUpdates(t *testing.T) {
	e := newEnv(t)
	s, err := e.m.CreateSession(ctx, "alice", nil)
	require.NoError(t, err)
	var wg sync.WaitGroup
	var rotated *ginsession.Session
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 100; i++ {
			if e.m.UpdateSession(ctx, s.ID, map[string]any{fmt.Sprint(i): i}) != nil {
				return // rotated away: later updates must fail, not vanish
			}
		}
	}()
	go func() {
		defer wg.Done()
		var err error
		rotated, err = e.m.RotateSession(ctx, s.ID)
		assert.NoError(t, err)
	}()
	wg.Wait()
	got, err := e.m.GetSession(ctx, rotated.ID)
	require.NoError(t, err)
	// Every update that succeeded before the rotation is in the new session.
	for i := 0; i < len(got.Data); i++ {
		assert.Contains(t, got.Data, fmt.Sprint(i))
	}
}

func TestDeleteSessionIsIdempotent(t *testing.T) {
	e := newEnv(t)
	s, err := e.m.CreateSession(ctx, "alice", nil)
	require.NoError(t, err)
	require.NoError(t, e.m.DeleteSession(ctx, s.ID))
	require.NoError(t, e.m.DeleteSession(ctx, s.ID))
	require.NoError(t, e.m.DeleteSession(ctx, "malformed"))
}

func TestAbsoluteExpiryInManager(t *testing.T) {
	e := newEnv(t, ginsession.WithIdleTimeout(time.Hour), ginsession.WithAbsoluteTimeout(30*time.Minute))
	s, err := e.m.CreateSession(ctx, "alice", nil)
	require.NoError(t, err)
	assert.Equal(t, t0.Add(30*time.Minute), s.ExpiresAt, "idle deadline capped by the absolute one")
	e.clock.Advance(30 * time.Minute)
	_, err = e.m.GetSession(ctx, s.ID)
	assert.ErrorIs(t, err, ginsession.ErrNotFound)
	assert.ErrorIs(t, e.m.UpdateSession(ctx, s.ID, map[string]any{"a": 1}), ginsession.ErrNotFound)
	_, err = e.m.RotateSession(ctx, s.ID)
	assert.ErrorIs(t, err, ginsession.ErrNotFound)
}

func TestStoreErrorsAreWrapped(t *testing.T) {
	e := newEnv(t)
	s, err := e.m.CreateSession(ctx, "alice", nil)
	require.NoError(t, err)
	e.store.fail.Store(true)
	_, err = e.m.GetSession(ctx, s.ID)
	assert.ErrorIs(t, err, stores.ErrUnavailable)
	assert.NotErrorIs(t, err, ginsession.ErrNotFound)
	assert.NotContains(t, err.Error(), s.ID)
	assert.ErrorIs(t, e.m.UpdateSession(ctx, s.ID, map[string]any{"a": 1}), stores.ErrUnavailable)
	_, err = e.m.CreateSession(ctx, "bob", nil)
	assert.ErrorIs(t, err, stores.ErrUnavailable)
}

func TestCloseStopsDefaultStore(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		m := ginsession.NewManager(nil)
		require.NoError(t, m.Close())
		require.NoError(t, m.Close(), "Close is idempotent")
		_, err := m.CreateSession(ctx, "alice", nil)
		assert.ErrorIs(t, err, stores.ErrClosed)
	}
	// Close waits for the sweeper to finish, so no goroutine is left behind
	// (poll: the runtime may count an exiting goroutine a moment longer).
	settled := false
	for deadline := time.Now().Add(5 * time.Second); !settled && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		settled = runtime.NumGoroutine() <= before
	}
	assert.True(t, settled, "a sweeper goroutine outlived Close")
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

func TestResumeIsTheMiddlewaresLoad(t *testing.T) {
	e := newEnv(t, ginsession.WithIdleTimeout(10*time.Minute), ginsession.WithRefreshInterval(time.Minute))
	s, err := e.m.CreateSession(ctx, "alice", map[string]any{"n": 1})
	require.NoError(t, err)

	before := e.store.calls()
	got, err := e.m.Resume(ctx, s.ID)
	require.NoError(t, err)
	assert.EqualValues(t, 1, e.store.calls()-before, "one store read on the common path")
	assert.Equal(t, s.ID, got.ID)

	// Stale by the refresh interval: one read and one touch.
	e.clock.Advance(2 * time.Minute)
	before = e.store.calls()
	got, err = e.m.Resume(ctx, s.ID)
	require.NoError(t, err)
	assert.EqualValues(t, 1, e.store.touches.Load())
	assert.EqualValues(t, 2, e.store.calls()-before)
	assert.Equal(t, e.clock.Now().Add(10*time.Minute), got.ExpiresAt)

	// UpdateLoaded writes from the loaded version: one store call.
	before = e.store.calls()
	next, err := e.m.UpdateLoaded(ctx, got, map[string]any{"n": 2})
	require.NoError(t, err)
	assert.EqualValues(t, 1, e.store.calls()-before)
	assert.Equal(t, s.ID, next.ID)
	assert.Equal(t, 2, next.Data["n"])

	_, err = e.m.Resume(ctx, "junk")
	assert.ErrorIs(t, err, ginsession.ErrNotFound)
	_, err = e.m.Resume(ctx, strings.Repeat("A", 43))
	assert.ErrorIs(t, err, ginsession.ErrNotFound)
	st := e.m.Stats()
	assert.EqualValues(t, 1, st.Malformed)
	assert.EqualValues(t, 1, st.Unknown)
}

func TestResumeRenews(t *testing.T) {
	e := newEnv(t, ginsession.WithRenewalInterval(20*time.Minute), ginsession.WithRotationGrace(time.Minute))
	s, err := e.m.CreateSession(ctx, "alice", nil)
	require.NoError(t, err)
	e.clock.Advance(20 * time.Minute)
	got, err := e.m.Resume(ctx, s.ID)
	require.NoError(t, err)
	assert.NotEqual(t, s.ID, got.ID, "a renewed session comes back under its new ID")
	assert.Equal(t, s.Handle, got.Handle)
	again, err := e.m.Resume(ctx, got.ID)
	require.NoError(t, err)
	assert.Equal(t, got.ID, again.ID, "not due again")
}
