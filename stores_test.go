package ginsession_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/internal/memcachedtest"
	"github.com/securestack/ginsession/sessiontest"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/memcached"
	"github.com/securestack/ginsession/stores/memory"
)

// The package shares one memcached server, started on first use.
var (
	mcOnce sync.Once
	mcSrv  *memcachedtest.Server
	mcStop = func() {}
	mcErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	mcStop()
	os.Exit(code)
}

// sharedMemcached returns the package's memcached server, skipping the test
// (failing it under CI=true) when memcached is not installed.
func sharedMemcached(t *testing.T) *memcachedtest.Server {
	t.Helper()
	mcOnce.Do(func() { mcSrv, mcStop, mcErr = memcachedtest.StartMain() })
	if mcErr != nil {
		memcachedtest.SkipOrFail(t, mcErr)
	}
	return mcSrv
}

// newMemcachedStore returns a store on srv with a prefix of its own, so
// tests sharing the server do not see each other's keys.
func newMemcachedStore(t *testing.T, srv *memcachedtest.Server) *memcached.Store {
	t.Helper()
	return memcachedStoreWithPrefix(t, srv, randomPrefix())
}

func randomPrefix() string {
	var p [4]byte
	_, _ = rand.Read(p[:])
	return "t" + hex.EncodeToString(p[:]) + ":"
}

func memcachedStoreWithPrefix(t *testing.T, srv *memcachedtest.Server, prefix string) *memcached.Store {
	t.Helper()
	s, err := memcached.NewFromServers([]string{srv.Addr}, memcached.WithPrefix(prefix))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// storeCase is a store the end-to-end tests run against.
type storeCase struct {
	name string
	new  func(t *testing.T) stores.Store
}

var storeCases = []storeCase{
	{"memory", func(t *testing.T) stores.Store {
		s := memory.New()
		t.Cleanup(func() { _ = s.Close() })
		return s
	}},
	{"memcached", func(t *testing.T) stores.Store { return newMemcachedStore(t, sharedMemcached(t)) }},
}

// realEnv is an application on a real store and the real clock.
func realEnv(t *testing.T, store stores.Store, opts ...ginsession.Option) *env {
	t.Helper()
	cs := &countingStore{Store: store}
	m := ginsession.NewManager(cs, opts...)
	t.Cleanup(func() { _ = m.Close() })
	return &env{t: t, store: cs, m: m, engine: newTestRouter(m)}
}

func TestMemcachedReadOnlyRequestCostsOneGet(t *testing.T) {
	srv := memcachedtest.Start(t)
	e := realEnv(t, newMemcachedStore(t, srv))
	cookie := e.login("alice")

	before := srv.Stats(t)
	w := e.do(http.MethodGet, "/profile", cookie)
	require.Equal(t, http.StatusOK, w.Code)
	after := srv.Stats(t)
	assert.Equal(t, uint64(1), after["cmd_get"]-before["cmd_get"], "one get")
	assert.Zero(t, after["cmd_set"]-before["cmd_set"], "no set/add/cas")
	assert.Zero(t, after["cmd_touch"]-before["cmd_touch"], "no touch")
	assert.Zero(t, after["delete_hits"]+after["delete_misses"]-before["delete_hits"]-before["delete_misses"], "no delete")
}

func TestMemcachedInstancesShareSessions(t *testing.T) {
	srv := sharedMemcached(t)
	// Two application instances: separate Managers and stores on one server.
	prefix := randomPrefix()
	a := realEnv(t, memcachedStoreWithPrefix(t, srv, prefix))
	b := realEnv(t, memcachedStoreWithPrefix(t, srv, prefix))

	cookie := a.login("alice")
	assert.Equal(t, http.StatusOK, b.do(http.MethodGet, "/profile", cookie).Code)
	require.Equal(t, http.StatusOK, b.do(http.MethodPost, "/logout", cookie).Code)
	assert.Equal(t, http.StatusUnauthorized, a.do(http.MethodGet, "/profile", cookie).Code)
}

func TestMemcachedDownAnswers503AndRecovers(t *testing.T) {
	srv := memcachedtest.Start(t)
	e := realEnv(t, newMemcachedStore(t, srv))
	cookie := e.login("alice")
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", cookie).Code)

	srv.Stop(t)
	start := time.Now()
	w := e.do(http.MethodGet, "/profile", cookie)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.JSONEq(t, `{"error":"session store unavailable"}`, w.Body.String())
	assert.Less(t, time.Since(start), memcached.DefaultTimeout+2*time.Second, "fails within the client timeout")
	w = e.do(http.MethodPost, "/login?user=bob", "")
	assert.Equal(t, http.StatusInternalServerError, w.Code, "login reports the store error")

	srv.Restart(t)
	// memcached keeps nothing across a restart: the old session is gone, and
	// new ones work at once, with no restart of the application.
	assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", cookie).Code)
	fresh := e.login("alice")
	assert.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", fresh).Code)
}

func TestNoRawIDInMemcached(t *testing.T) {
	srv := memcachedtest.Start(t)
	e := realEnv(t, newMemcachedStore(t, srv), ginsession.WithRotationGrace(time.Minute))
	var ids []string
	for i := 0; i < 5; i++ {
		c := e.login("alice")
		ids = append(ids, idOf(c))
		w := e.do(http.MethodPost, "/rotate", c)
		require.Equal(t, http.StatusNoContent, w.Code)
		ids = append(ids, idOf(cookieHeader(t, w)))
	}
	dump := srv.Dump(t)
	require.NotEmpty(t, dump)
	for k, v := range dump {
		for _, id := range ids {
			assert.NotContains(t, k, id)
			assert.False(t, bytes.Contains(v, []byte(id)), "raw ID in the value of %s", k)
			raw, err := decodeID(id)
			require.NoError(t, err)
			assert.False(t, bytes.Contains(v, raw), "raw ID bytes in the value of %s", k)
		}
	}
}

func decodeID(id string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(id)
}

func TestMemcachedSixtyDaySession(t *testing.T) {
	srv := memcachedtest.Start(t)
	e := realEnv(t, newMemcachedStore(t, srv),
		ginsession.WithIdleTimeout(60*24*time.Hour), ginsession.WithAbsoluteTimeout(90*24*time.Hour))
	before := time.Now()
	cookie := e.login("alice")
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", cookie).Code, "readable right after creation")

	s, err := e.m.GetSession(ctx, idOf(cookie))
	require.NoError(t, err)
	assert.WithinDuration(t, before.Add(60*24*time.Hour), s.ExpiresAt, 5*time.Second)

	// The server holds the session's key with an absolute expiry 60 days out
	// (memcached reads lifetimes over 30 days as Unix times).
	found := false
	for _, meta := range srv.Metadump(t) {
		if meta.Exp <= 0 {
			continue
		}
		exp := time.Unix(meta.Exp, 0)
		if exp.Sub(before) > 59*24*time.Hour && exp.Sub(before) < 61*24*time.Hour {
			found = true
		}
	}
	assert.True(t, found, "an item expiring in 60 days")
}

func TestMemcachedUpdateInRequestCostsOneCAS(t *testing.T) {
	srv := memcachedtest.Start(t)
	e := realEnv(t, newMemcachedStore(t, srv))
	e.engine.POST("/visit", func(c *gin.Context) {
		if err := ginsession.Update(c, map[string]any{"visits": 2}); err != nil {
			c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
			return
		}
		s, _ := ginsession.Current(c)
		c.JSON(http.StatusOK, s.Data)
	})
	e.engine.POST("/visit-manager", func(c *gin.Context) {
		s, _ := ginsession.Current(c)
		if err := e.m.UpdateSession(c.Request.Context(), s.ID, map[string]any{"visits": 3}); err != nil {
			c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
			return
		}
		c.Status(http.StatusNoContent)
	})
	cookie := e.login("alice")

	for _, path := range []string{"/visit", "/visit-manager"} {
		before := srv.Stats(t)
		w := e.do(http.MethodPost, path, cookie)
		require.Less(t, w.Code, 300, w.Body.String())
		after := srv.Stats(t)
		assert.Equal(t, uint64(1), after["cmd_get"]-before["cmd_get"], "%s: the middleware's get only", path)
		assert.Equal(t, uint64(1), after["cmd_set"]-before["cmd_set"], "%s: one cas", path)
		if path == "/visit" {
			assert.JSONEq(t, `{"role":"user","visits":2}`, w.Body.String(), "the request sees its update")
		}
	}
	s, err := e.m.GetSession(ctx, idOf(cookie))
	require.NoError(t, err)
	assert.Equal(t, 3, s.Data["visits"])
}

func TestSessionsOnMemory(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
		s := memory.New()
		t.Cleanup(func() { _ = s.Close() })
		return sessiontest.Harness{Store: s}
	})
}

// TestSessionsWithTokenHashKey runs the scenarios with signed tokens
// (WithTokenHashKey), under which every ID the Manager issues, by login,
// rotation or renewal, carries a MAC that the middleware checks.
func TestSessionsWithTokenHashKey(t *testing.T) {
	key := []byte("sessiontest server key")
	t.Run("memory", func(t *testing.T) {
		sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
			s := memory.New()
			t.Cleanup(func() { _ = s.Close() })
			return sessiontest.Harness{Store: s, Options: []ginsession.Option{ginsession.WithTokenHashKey(key)}}
		})
	})
	t.Run("memcached", func(t *testing.T) {
		sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
			srv := memcachedtest.Start(t)
			s, err := memcached.NewFromServers([]string{srv.Addr})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return sessiontest.Harness{
				Store: s, Stop: func() { srv.Stop(t) }, Start: func() { srv.Restart(t) },
				Options: []ginsession.Option{ginsession.WithTokenHashKey(key)},
			}
		})
	})
}

func TestSessionsOnMemcached(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
		srv := memcachedtest.Start(t)
		s, err := memcached.NewFromServers([]string{srv.Addr})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return sessiontest.Harness{Store: s, Stop: func() { srv.Stop(t) }, Start: func() { srv.Restart(t) }}
	})
}

// TestLongestTimeoutsOnEveryStore checks that the longest accepted timeouts
// behave alike on both stores: sessions live, list and end.
func TestLongestTimeoutsOnEveryStore(t *testing.T) {
	for _, sc := range storeCases {
		t.Run(sc.name, func(t *testing.T) {
			e := realEnv(t, sc.new(t),
				ginsession.WithAbsoluteTimeout(ginsession.MaxTimeout), ginsession.WithIdleTimeout(ginsession.MaxTimeout),
				ginsession.WithRotationGrace(ginsession.MaxTimeout))
			cookie := e.login("alice")
			require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", cookie).Code)
			s, err := e.m.GetSession(ctx, idOf(cookie))
			require.NoError(t, err)
			assert.True(t, s.AbsoluteExpiresAt.After(time.Now().Add(ginsession.MaxTimeout-time.Hour)))
			list, err := e.m.ListUserSessions(ctx, "alice")
			require.NoError(t, err)
			assert.Len(t, list, 1)
			w := e.do(http.MethodPost, "/rotate", cookie)
			require.Equal(t, http.StatusNoContent, w.Code)
			require.NoError(t, e.m.DeleteUserSessions(ctx, "alice"))
			assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", cookie).Code)
			assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", cookieHeader(t, w)).Code)
		})
	}
}

// TestMemcachedLoginCommands pins the memcached commands a login costs:
// a new user's index and session are one add each; a returning user's
// index is one gets and one cas (the middleware remembers that the index
// exists, so no add is tried first); a login over the user's own session
// also deletes that session, with one cas from the version the middleware
// read, and drops its index entry in the same index write.
func TestMemcachedLoginCommands(t *testing.T) {
	srv := memcachedtest.Start(t)
	e := realEnv(t, newMemcachedStore(t, srv))
	type cost struct{ get, set, del, touch uint64 }
	measure := func(f func()) cost {
		before := srv.Stats(t)
		f()
		after := srv.Stats(t)
		d := func(k string) uint64 { return after[k] - before[k] }
		return cost{get: d("cmd_get"), set: d("cmd_set"), del: d("delete_hits") + d("delete_misses"), touch: d("cmd_touch")}
	}
	var cookie string
	assert.Equal(t, cost{set: 2}, measure(func() { cookie = e.login("alice") }), "new user: add index, add session")
	assert.Equal(t, cost{get: 1, set: 2}, measure(func() { e.login("alice") }), "returning user without a cookie: gets+cas index, add session")
	assert.Equal(t, cost{get: 2, set: 3}, measure(func() {
		w := e.do(http.MethodPost, "/login?user=alice", cookie)
		require.Equal(t, http.StatusOK, w.Code)
		cookie = cookieHeader(t, w)
	}), "returning user over its own session: the middleware's get, cas deleting it, gets+cas index, add session")
	assert.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", cookie).Code)
	list, err := e.m.ListUserSessions(ctx, "alice")
	require.NoError(t, err)
	assert.Len(t, list, 2, "the replaced session left the index in the same write")
}

// TestMemcachedRestartWithSharedClient restarts memcached under an
// application whose one client, configured by the application, serves
// both the session store and the login limiter, and holds idle connections
// that the restart killed: the first logins after the restart succeed
// (each dead connection is retried past, by the store and by the limiter
// alike) instead of failing once per dead connection, and the store never
// closes the application's client.
func TestMemcachedRestartWithSharedClient(t *testing.T) {
	srv := memcachedtest.Start(t)
	client := memcache.New(srv.Addr)
	client.Timeout, client.MaxIdleConns = 3*time.Second, 8
	t.Cleanup(func() { _ = client.Close() })
	limiter := ginsession.NewLimiter(100, time.Minute,
		ginsession.WithLimiterBackend(memcached.NewLimiterBackend(client, randomPrefix())))
	e := realEnv(t, memcached.New(client, memcached.WithPrefix(randomPrefix())), ginsession.WithCreateLimiter(limiter))
	// Fill the pool: logins in flight at once against a paused server
	// leave as many idle connections when it resumes. (The pause only
	// makes the requests overlap; fewer of them overlapping would leave
	// fewer dead connections, never a false failure.)
	srv.Pause(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { e.do(http.MethodPost, "/login?user=u"+strconv.Itoa(i), "") })
	}
	time.Sleep(100 * time.Millisecond)
	srv.Resume(t)
	wg.Wait()

	srv.Restart(t)
	for i := range 8 {
		w := e.do(http.MethodPost, "/login?user=v"+strconv.Itoa(i), "")
		require.Equal(t, http.StatusOK, w.Code, "login %d after the restart: %s", i, w.Body.String())
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", cookieHeader(t, w)).Code, "profile %d after the restart", i)
	}
	assert.Zero(t, e.m.Stats().StoreErrors, "no request failed on a dead connection")
	require.NoError(t, client.Set(&memcache.Item{Key: "still-open", Value: []byte("x")}), "the application's client still works")
}
