package ginsession_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/memory"
)

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

func TestProfileDataIsJSON(t *testing.T) {
	e := newEnv(t)
	cookie := e.login("alice")
	w := e.do(http.MethodGet, "/profile", cookie)
	var body map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	assert.Equal(t, "alice", body["userId"])
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

// TestStoreOutageLogRate checks that an outage under load writes a bounded
// number of log records, while every request still gets its 503 and Stats
// counts each failure.
func TestStoreOutageLogRate(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, ginsession.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	cookie := e.login("alice")
	e.store.fail.Store(true)
	const seconds, perSecond = 5, 200
	for range seconds {
		for range perSecond {
			w := e.do(http.MethodGet, "/profile", cookie)
			require.Equal(t, http.StatusServiceUnavailable, w.Code)
		}
		e.clock.Advance(time.Second)
	}
	assert.EqualValues(t, seconds*perSecond, e.m.Stats().StoreErrors)
	records := strings.Count(logs.String(), "cannot load session")
	assert.Equal(t, seconds, records, "one record per second:\n%s", logs.String())
	assert.Contains(t, logs.String(), fmt.Sprintf("suppressed=%d", perSecond-1), "each record counts what it stands for")

	e.store.fail.Store(false)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", cookie).Code)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", cookie).Code)
	assert.Equal(t, 1, strings.Count(logs.String(), "available again"), "one record on recovery:\n%s", logs.String())
	assert.Contains(t, logs.String(), fmt.Sprintf("failures=%d", seconds*perSecond))

	// A second outage is logged again from its first failure.
	e.store.fail.Store(true)
	e.do(http.MethodGet, "/profile", cookie)
	assert.Equal(t, seconds+1, strings.Count(logs.String(), "cannot load session"))
	assert.NotContains(t, logs.String(), idOf(cookie))
}

// gatedStore delays the Gets that gate selects until release is closed.
type gatedStore struct {
	*countingStore
	gate    func() bool
	release chan struct{}
	waiting chan struct{}
}

func (s *gatedStore) Get(ctx context.Context, k stores.Key) (stores.Item, error) {
	if s.gate() {
		s.waiting <- struct{}{}
		<-s.release
		return s.countingStore.Store.Get(ctx, k) // the store works for it
	}
	return s.countingStore.Get(ctx, k)
}

// TestStoreOutageLogIgnoresRequestsInFlight checks that a request in
// flight when the store goes down, which succeeds late, does not log a
// recovery in the middle of the outage.
func TestStoreOutageLogIgnoresRequestsInFlight(t *testing.T) {
	var logs bytes.Buffer
	clock := newClock()
	mem := memory.New(memory.WithClock(clock.Now), memory.WithSweepInterval(0))
	t.Cleanup(func() { _ = mem.Close() })
	var gateNext atomic.Bool
	store := &gatedStore{countingStore: &countingStore{Store: mem}, gate: func() bool { return gateNext.Swap(false) },
		release: make(chan struct{}), waiting: make(chan struct{})}
	m := ginsession.NewManager(store, ginsession.WithClock(clock.Now), ginsession.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	t.Cleanup(func() { _ = m.Close() })
	r := newTestRouter(m)
	s, err := m.CreateSession(ctx, "alice", nil)
	require.NoError(t, err)
	cookie := ginsession.DefaultCookieName + "=" + s.ID

	// A slow request starts, then the store goes down.
	gateNext.Store(true)
	slow := make(chan int)
	go func() { slow <- performRequest(r, http.MethodGet, "/profile", cookie).Code }()
	<-store.waiting
	clock.Advance(time.Millisecond)
	store.fail.Store(true)
	require.Equal(t, http.StatusServiceUnavailable, performRequest(r, http.MethodGet, "/profile", cookie).Code)
	close(store.release)
	require.Equal(t, http.StatusOK, <-slow, "the slow request began before the outage")
	assert.Equal(t, 1, strings.Count(logs.String(), "cannot load session"))
	assert.Zero(t, strings.Count(logs.String(), "available again"), "no recovery in the middle of the outage:\n%s", logs.String())

	// The store comes back: one recovery record.
	clock.Advance(time.Millisecond)
	store.fail.Store(false)
	require.Equal(t, http.StatusOK, performRequest(r, http.MethodGet, "/profile", cookie).Code)
	assert.Equal(t, 1, strings.Count(logs.String(), "available again"))
}
