package benchmarks

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	scsredis "github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/bradfitz/gomemcache/memcache"
	"github.com/gin-contrib/sessions"
	gccookie "github.com/gin-contrib/sessions/cookie"
	gcmemcached "github.com/gin-contrib/sessions/memcached"
	gcmemstore "github.com/gin-contrib/sessions/memstore"
	gcredis "github.com/gin-contrib/sessions/redis"
	"github.com/gin-gonic/gin"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/gorilla/securecookie"
	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/stores"
	gsmemcached "github.com/securestack/ginsession/stores/memcached"
	"github.com/securestack/ginsession/stores/redisstore"
)

// The session every scenario starts from: a login (POST /login) stores
// the user's ID and these two values, ReadExisting (GET /read) reads one of
// them, WriteOne (POST /write) sets one more key.
const (
	uidKey     = "uid"
	userKey    = "user"
	userValue  = "alice"
	roleKey    = "role"
	roleValue  = "user"
	writeKey   = "theme"
	writeValue = "dark"
)

// logins numbers the users that log in: each Create is a different user's
// login, as on a real site (a session cap per user, which ginsession has
// and the others do not, is then not what Create measures).
var logins atomic.Uint64

// nextUser returns the ID of the next user to log in.
func nextUser() string {
	return "user-" + strconv.FormatUint(logins.Add(1), 10)
}

// subjects numbers the subjects, so that each has a user of its own for
// the scenarios in which one user logs in again and again (POST
// /login/same): the user's sessions in a shared server then start from
// none in every benchmark run.
var subjects atomic.Uint64

// junkValue is a malformed session cookie value: legal cookie characters,
// but not an ID any of the libraries issues.
var junkValue = strings.Repeat("x", 64)

// gorillaKey is the authentication key of the gin-contrib/sessions stores.
var gorillaKey = []byte("0123456789abcdef0123456789abcdef")

// serverKey is ginsession's server key (WithTokenHashKey) in the scenarios
// that use one (MissSigned).
var serverKey = []byte("fedcba9876543210fedcba9876543210")

// gorillaCookie is the cookie name used with gin-contrib/sessions.
const gorillaCookie = "session"

// adapter is one library's way to do what the scenario handlers need, as a
// user of that library would write it in a gin handler.
type adapter struct {
	// middleware, if not nil, is installed with r.Use.
	middleware gin.HandlerFunc
	// wrap, if not nil, wraps the whole engine (scs's LoadAndSave).
	wrap func(http.Handler) http.Handler
	// read returns the value under key and whether the request has a
	// session holding it.
	read func(c *gin.Context, key string) (string, bool)
	// write sets key to value in the request's session.
	write func(c *gin.Context, key, value string) error
	// writeManager, if not nil, does what write does through the
	// Manager's documented call, UpdateSession (ginsession only).
	writeManager func(c *gin.Context, key, value string) error
	// login logs userID in, with the library's login idiom, holding the
	// user's ID, name and role.
	login func(c *gin.Context, userID string) error
	// userSessions, if not nil, counts userID's live sessions (ginsession
	// only: the peers keep no index of a user's sessions).
	userSessions func(userID string) (int, error)
}

// subject is one library set up for a benchmark: the handler to serve
// requests with, and the Cookie headers the scenarios send.
type subject struct {
	h        http.Handler
	a        adapter
	lib      library
	env      env
	sameUser string // the user of POST /login/same
	existing string // a live session, created by a login through h
	miss     string // a well-formed cookie for a session the store does not have
	junk     string // a malformed cookie
	mc       *mcServer
}

// env is what a subject is built with besides its library.
type env struct {
	// redisAddr is the address Redis clients dial: the server's own for
	// the timed loops, the counting proxy's to count commands.
	redisAddr string
	// keyed gives ginsession's Manager a server key (WithTokenHashKey).
	keyed bool
	// pause, if not nil, adds POST /race/:key, whose handler reads the
	// session, calls pause, then sets :key (see TestLostUpdate).
	pause func(c *gin.Context)
}

// library is one row of the comparison.
type library struct {
	name string
	// memcached and redis libraries need the shared server.
	memcached, redis bool
	// ginsession is set for ginsession's own rows.
	ginsession bool
	// noMiss is set where a Miss cannot happen: a cookie store has no
	// server-side state to miss.
	noMiss bool
	// readOnly is set for the raw floors (gomemcache, go-redis), which
	// have no sessions.
	readOnly bool
	// bare is set for bare gin, which has no sessions at all.
	bare bool
	new  func(tb testing.TB, e env) (adapter, func(*subject))
}

// sharedMC is the memcached server started by TestMain, or nil.
var (
	sharedMC    *mcServer
	sharedMCErr error
)

// libraries lists every library in the order of the results table.
var libraries = []library{
	{name: "gin", bare: true, new: newBare},
	{name: "ginsession-memory", ginsession: true, new: newGinsessionMemory},
	{name: "scs-memstore", new: newSCS},
	{name: "gincontrib-memstore", new: newGinContribMemstore},
	{name: "gincontrib-cookie", noMiss: true, new: newGinContribCookie},
	{name: "gomemcache-get", memcached: true, readOnly: true, new: newRawGet},
	{name: "ginsession-memcached", memcached: true, ginsession: true, new: newGinsessionMemcached},
	{name: "gincontrib-memcached", memcached: true, new: newGinContribMemcached},
	{name: "goredis-get", redis: true, readOnly: true, new: newRawRedisGet},
	{name: "ginsession-redis", redis: true, ginsession: true, new: newGinsessionRedis},
	{name: "scs-redisstore", redis: true, new: newSCSRedis},
	{name: "scs-goredisstore", redis: true, new: newSCSGoRedis},
	{name: "gincontrib-redis", redis: true, new: newGinContribRedis},
}

// newEngine builds the engine every library is measured on: gin.New() with
// the library's middleware and the same routes.
func newEngine(a adapter, sameUser string, pause func(*gin.Context)) http.Handler {
	r := gin.New()
	if a.middleware != nil {
		r.Use(a.middleware)
	}
	r.GET("/read", func(c *gin.Context) {
		v, ok := a.read(c, userKey)
		if !ok {
			c.Status(http.StatusUnauthorized)
			return
		}
		c.String(http.StatusOK, v)
	})
	writeRoute := func(write func(c *gin.Context, key, value string) error) gin.HandlerFunc {
		return func(c *gin.Context) {
			if err := write(c, writeKey, writeValue); err != nil {
				c.String(http.StatusInternalServerError, err.Error())
				return
			}
			c.Status(http.StatusNoContent)
		}
	}
	r.POST("/write", writeRoute(a.write))
	if a.writeManager != nil {
		r.POST("/write-manager", writeRoute(a.writeManager))
	}
	loginRoute := func(user func() string) gin.HandlerFunc {
		return func(c *gin.Context) {
			if err := a.login(c, user()); err != nil {
				c.String(http.StatusInternalServerError, err.Error())
				return
			}
			c.Status(http.StatusNoContent)
		}
	}
	// A new user each time.
	r.POST("/login", loginRoute(nextUser))
	// The subject's own user, again and again.
	r.POST("/login/same", loginRoute(func() string { return sameUser }))
	// /get/:key is for the tests, which check what a scenario wrote.
	r.GET("/get/:key", func(c *gin.Context) {
		v, ok := a.read(c, c.Param("key"))
		if !ok {
			c.Status(http.StatusUnauthorized)
			return
		}
		c.String(http.StatusOK, v)
	})
	if pause != nil {
		r.POST("/race/:key", func(c *gin.Context) {
			if _, ok := a.read(c, userKey); !ok {
				c.Status(http.StatusUnauthorized)
				return
			}
			pause(c)
			if err := a.write(c, c.Param("key"), "1"); err != nil {
				c.String(http.StatusInternalServerError, err.Error())
				return
			}
			c.Status(http.StatusNoContent)
		})
	}
	if a.wrap != nil {
		return a.wrap(r)
	}
	return r
}

// setup builds l's subject, with a live session created by a real login,
// for the timed loops: Redis clients dial the server itself.
func (l library) setup(tb testing.TB) *subject {
	tb.Helper()
	return l.setupEnv(tb, env{})
}

// setupEnv builds l's subject in e. An empty e.redisAddr means the Redis
// server's own address.
func (l library) setupEnv(tb testing.TB, e env) *subject {
	tb.Helper()
	if l.memcached && sharedMC == nil {
		skipOrFail(tb, sharedMCErr)
	}
	if l.redis {
		if sharedRD == nil {
			skipOrFail(tb, sharedRDErr)
		}
		if e.redisAddr == "" {
			e.redisAddr = sharedRD.Addr
		}
	}
	a, finish := l.new(tb, e)
	s := &subject{a: a, lib: l, env: e, sameUser: "same-" + strconv.FormatUint(subjects.Add(1), 10), mc: sharedMC}
	s.h = newEngine(a, s.sameUser, e.pause)
	if l.bare {
		s.existing = "sid=" + randomID()
		s.miss = "sid=" + randomID()
		s.junk = "sid=" + junkValue
		return s
	}
	if l.readOnly {
		s.existing = "sid=" + randomID()
		finish(s)
		return s
	}
	s.existing = s.login(tb, "/login", "")
	s.junk = strings.SplitN(s.existing, "=", 2)[0] + "=" + junkValue
	finish(s)
	return s
}

// login sends a login to path with cookie and returns the session cookie
// it set, as a Cookie header value.
func (s *subject) login(tb testing.TB, path, cookie string) string {
	tb.Helper()
	rec := serve(s.h, http.MethodPost, path, cookie)
	if rec.Code != http.StatusNoContent {
		tb.Fatalf("%s: login: status %d: %s", s.lib.name, rec.Code, rec.Body)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Value == "" {
		tb.Fatalf("%s: login set cookies %q, want one session cookie", s.lib.name, rec.Header().Values("Set-Cookie"))
	}
	return cookies[0].Name + "=" + cookies[0].Value
}

// userSessions returns how many live sessions the subject's own user
// holds.
func (s *subject) userSessions(tb testing.TB) int {
	tb.Helper()
	if s.a.userSessions == nil {
		tb.Fatalf("%s keeps no index of a user's sessions", s.lib.name)
	}
	n, err := s.a.userSessions(s.sameUser)
	if err != nil {
		tb.Fatalf("%s: sessions of %s: %v", s.lib.name, s.sameUser, err)
	}
	return n
}

// serve sends one request through h, with a fresh request and recorder.
func serve(h http.Handler, method, path, cookie string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// randomID returns 32 random bytes in unpadded base64url: the form of both
// ginsession's and scs's session IDs.
func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomSignedToken returns a token of the form ginsession issues with a
// server key: a random ID, a dot and 9 random bytes where the MAC goes, in
// unpadded base64url (12 characters). Its MAC does not verify.
func randomSignedToken() string {
	mac := make([]byte, 9)
	_, _ = rand.Read(mac)
	return randomID() + "." + base64.RawURLEncoding.EncodeToString(mac)
}

// gorillaMiss returns a gin-contrib/sessions cookie that is correctly
// signed but names a session ID the store has never seen.
func gorillaMiss(tb testing.TB) string {
	id := strings.TrimRight(base32.StdEncoding.EncodeToString(securecookie.GenerateRandomKey(32)), "=")
	v, err := securecookie.EncodeMulti(gorillaCookie, id, securecookie.CodecsFromPairs(gorillaKey)...)
	if err != nil {
		tb.Fatal(err)
	}
	return gorillaCookie + "=" + v
}

var errNoSession = errors.New("no session")

// newMCClient returns a gomemcache client for the shared server, configured
// as ginsession's NewFromServers configures its own, so that every
// memcached library runs on the same kind of client.
func newMCClient(tb testing.TB) *memcache.Client {
	c := memcache.New(sharedMC.Addr)
	c.Timeout = gsmemcached.DefaultTimeout
	c.MaxIdleConns = gsmemcached.DefaultMaxIdleConns
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// newRedisClient returns a go-redis client for addr with the settings the
// redisstore package documentation recommends for a session store. Every
// go-redis based library (ginsession, scs's goredisstore, the raw GET)
// runs on such a client.
func newRedisClient(tb testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:                  addr,
		DialTimeout:           500 * time.Millisecond,
		ReadTimeout:           500 * time.Millisecond,
		WriteTimeout:          500 * time.Millisecond,
		ContextTimeoutEnabled: true,
		MaxRetries:            1,
		DialerRetries:         1,
		PoolSize:              256,
		PoolTimeout:           time.Second,
	})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// newBare is the floor: the same routes with no sessions.
func newBare(testing.TB, env) (adapter, func(*subject)) {
	noWrite := func(*gin.Context, string, string) error { return nil }
	return adapter{
		read:         func(*gin.Context, string) (string, bool) { return userValue, true },
		write:        noWrite,
		writeManager: noWrite,
		login:        func(*gin.Context, string) error { return nil },
	}, func(*subject) {}
}

// newGinsessionManager returns a Manager on store with e's options.
func newGinsessionManager(tb testing.TB, store stores.Store, e env) *ginsession.Manager {
	var opts []ginsession.Option
	if e.keyed {
		opts = append(opts, ginsession.WithTokenHashKey(serverKey))
	}
	m := ginsession.NewManager(store, opts...)
	tb.Cleanup(func() { _ = m.Close() })
	return m
}

func ginsessionAdapter(m *ginsession.Manager) adapter {
	return adapter{
		middleware: ginsession.New(m),
		read: func(c *gin.Context, key string) (string, bool) {
			s, ok := ginsession.Current(c)
			if !ok {
				return "", false
			}
			if key == uidKey {
				// The user's ID is the session's own, not in its data.
				return s.UserID, s.UserID != ""
			}
			v := s.GetString(key)
			return v, v != ""
		},
		write: func(c *gin.Context, key, value string) error {
			// The Gin helper: one atomic merge into the request's session.
			return ginsession.Update(c, map[string]any{key: value})
		},
		writeManager: func(c *gin.Context, key, value string) error {
			// The documented Manager call, with the request's context.
			s, ok := ginsession.Current(c)
			if !ok {
				return errNoSession
			}
			return m.UpdateSession(c.Request.Context(), s.ID, map[string]any{key: value})
		},
		login: func(c *gin.Context, userID string) error {
			_, err := ginsession.Login(c, userID, map[string]any{userKey: userValue, roleKey: roleValue})
			return err
		},
		userSessions: func(userID string) (int, error) {
			list, err := m.ListUserSessions(ctx, userID)
			return len(list), err
		},
	}
}

// ginsessionFinish sets the Miss cookie of a ginsession subject: a random
// token of the form the Manager issues (with a MAC when it has a key).
func ginsessionFinish(e env) func(*subject) {
	return func(s *subject) {
		token := randomID()
		if e.keyed {
			token = randomSignedToken()
		}
		s.miss = ginsession.DefaultCookieName + "=" + token
	}
}

func newGinsessionMemory(tb testing.TB, e env) (adapter, func(*subject)) {
	return ginsessionAdapter(newGinsessionManager(tb, nil, e)), ginsessionFinish(e)
}

func newGinsessionMemcached(tb testing.TB, e env) (adapter, func(*subject)) {
	store := gsmemcached.New(newMCClient(tb))
	tb.Cleanup(func() { _ = store.Close() })
	return ginsessionAdapter(newGinsessionManager(tb, store, e)), ginsessionFinish(e)
}

func newGinsessionRedis(tb testing.TB, e env) (adapter, func(*subject)) {
	store := redisstore.New(newRedisClient(tb, e.redisAddr))
	tb.Cleanup(func() { _ = store.Close() })
	return ginsessionAdapter(newGinsessionManager(tb, store, e)), ginsessionFinish(e)
}

// scsAdapter adapts scs to gin the way its README and issues show:
// LoadAndSave wraps the whole engine, handlers use the request's context.
func scsAdapter(sm *scs.SessionManager) (adapter, func(*subject)) {
	return adapter{
			wrap: sm.LoadAndSave,
			read: func(c *gin.Context, key string) (string, bool) {
				v := sm.GetString(c.Request.Context(), key)
				return v, v != ""
			},
			write: func(c *gin.Context, key, value string) error {
				ctx := c.Request.Context()
				if !sm.Exists(ctx, userKey) {
					return errNoSession
				}
				sm.Put(ctx, key, value)
				return nil
			},
			login: func(c *gin.Context, userID string) error {
				// scs's login idiom: a new token, then the user's data.
				ctx := c.Request.Context()
				if err := sm.RenewToken(ctx); err != nil {
					return err
				}
				sm.Put(ctx, uidKey, userID)
				sm.Put(ctx, userKey, userValue)
				sm.Put(ctx, roleKey, roleValue)
				return nil
			},
		}, func(s *subject) {
			s.miss = sm.Cookie.Name + "=" + randomID()
		}
}

// newSCSManager returns scs.New() with its default memstore's cleanup
// goroutine stopped, for a caller that replaces the store.
func newSCSManager() *scs.SessionManager {
	sm := scs.New()
	sm.Store.(*memstore.MemStore).StopCleanup()
	return sm
}

func newSCS(tb testing.TB, _ env) (adapter, func(*subject)) {
	sm := scs.New() // with its default store, a memstore.MemStore
	tb.Cleanup(sm.Store.(*memstore.MemStore).StopCleanup)
	return scsAdapter(sm)
}

// newSCSRedis is scs on its redisstore, on a redigo pool set up as that
// store's README shows.
func newSCSRedis(tb testing.TB, e env) (adapter, func(*subject)) {
	pool := &redigo.Pool{
		MaxIdle: 10,
		Dial:    func() (redigo.Conn, error) { return redigo.Dial("tcp", e.redisAddr) },
	}
	tb.Cleanup(func() { _ = pool.Close() })
	sm := newSCSManager()
	sm.Store = scsredis.New(pool)
	return scsAdapter(sm)
}

// newSCSGoRedis is scs on its goredisstore, on the same go-redis client
// settings as ginsession's.
func newSCSGoRedis(tb testing.TB, e env) (adapter, func(*subject)) {
	sm := newSCSManager()
	sm.Store = goredisstore.New(newRedisClient(tb, e.redisAddr))
	return scsAdapter(sm)
}

func gorillaAdapter(store sessions.Store) adapter {
	return adapter{
		middleware: sessions.Sessions(gorillaCookie, store),
		read: func(c *gin.Context, key string) (string, bool) {
			v, ok := sessions.Default(c).Get(key).(string)
			return v, ok
		},
		write: func(c *gin.Context, key, value string) error {
			s := sessions.Default(c)
			if s.Get(userKey) == nil {
				return errNoSession
			}
			s.Set(key, value)
			return s.Save()
		},
		login: func(c *gin.Context, userID string) error {
			// gin-contrib's login idiom: set the user's data on the
			// request's session (a new one without a cookie, the same one,
			// under the same ID, with a cookie) and save it.
			s := sessions.Default(c)
			s.Set(uidKey, userID)
			s.Set(userKey, userValue)
			s.Set(roleKey, roleValue)
			return s.Save()
		},
	}
}

func newGinContribMemstore(tb testing.TB, _ env) (adapter, func(*subject)) {
	return gorillaAdapter(gcmemstore.NewStore(gorillaKey)), func(s *subject) { s.miss = gorillaMiss(tb) }
}

func newGinContribCookie(testing.TB, env) (adapter, func(*subject)) {
	return gorillaAdapter(gccookie.NewStore(gorillaKey)), func(*subject) {}
}

func newGinContribMemcached(tb testing.TB, _ env) (adapter, func(*subject)) {
	return gorillaAdapter(gcmemcached.NewStore(newMCClient(tb), "gc:", gorillaKey)), func(s *subject) { s.miss = gorillaMiss(tb) }
}

// newGinContribRedis is gin-contrib/sessions' Redis store as its README
// sets it up: redis.NewStore with 10 idle connections (boj/redistore on a
// redigo pool that PINGs every connection it lends: TestOnBorrow).
func newGinContribRedis(tb testing.TB, e env) (adapter, func(*subject)) {
	store, err := gcredis.NewStore(10, "tcp", e.redisAddr, "", "", gorillaKey)
	if err != nil {
		tb.Fatalf("gin-contrib redis store: %v", err)
	}
	tb.Cleanup(func() {
		if rs, err := gcredis.GetRedisStore(store); err == nil {
			_ = rs.Close()
		}
	})
	return gorillaAdapter(store), func(s *subject) { s.miss = gorillaMiss(tb) }
}

// rawKey is the item the gomemcache floor reads.
const rawKey = "raw:" + "floor"

// newRawGet is the physical floor of a memcached-backed request: the same
// gin request whose handler does one gomemcache Get of an item about the
// size of a session record.
func newRawGet(tb testing.TB, _ env) (adapter, func(*subject)) {
	c := newMCClient(tb)
	if err := c.Set(&memcache.Item{Key: rawKey, Value: []byte(strings.Repeat("v", 160)), Expiration: 3600}); err != nil {
		tb.Fatalf("gomemcache set: %v", err)
	}
	return adapter{
		read: func(_ *gin.Context, _ string) (string, bool) {
			it, err := c.Get(rawKey)
			return userValue, err == nil && len(it.Value) > 0
		},
		write: func(*gin.Context, string, string) error { return errors.ErrUnsupported },
		login: func(*gin.Context, string) error { return errors.ErrUnsupported },
	}, func(*subject) {}
}

// rawRedisSize is the size of the value the go-redis floor reads: that of
// ginsession-redis's stored session (TestRedisFloorSize checks it).
const rawRedisSize = 142

// newRawRedisGet is the physical floor of a Redis-backed request: the same
// gin request whose handler does one go-redis GET of a value the size of
// ginsession's stored session.
func newRawRedisGet(tb testing.TB, e env) (adapter, func(*subject)) {
	c := newRedisClient(tb, e.redisAddr)
	if err := c.Set(context.Background(), rawKey, strings.Repeat("v", rawRedisSize), time.Hour).Err(); err != nil {
		tb.Fatalf("go-redis set: %v", err)
	}
	return adapter{
		read: func(gc *gin.Context, _ string) (string, bool) {
			v, err := c.Get(gc.Request.Context(), rawKey).Result()
			return userValue, err == nil && len(v) > 0
		},
		write: func(*gin.Context, string, string) error { return errors.ErrUnsupported },
		login: func(*gin.Context, string) error { return errors.ErrUnsupported },
	}, func(*subject) {}
}

// ctx is for direct Manager calls in tests.
var ctx = context.Background()
