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

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/bradfitz/gomemcache/memcache"
	"github.com/gin-contrib/sessions"
	gccookie "github.com/gin-contrib/sessions/cookie"
	gcmemcached "github.com/gin-contrib/sessions/memcached"
	gcmemstore "github.com/gin-contrib/sessions/memstore"
	"github.com/gin-gonic/gin"
	"github.com/gorilla/securecookie"

	"github.com/securestack/ginsession"
	gsmemcached "github.com/securestack/ginsession/stores/memcached"
)

// The session every scenario starts from: Create (POST /login) stores these
// two values, ReadExisting (GET /read) reads one of them, WriteOne
// (POST /write) sets one more key.
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

// junkValue is a malformed session cookie value: legal cookie characters,
// but not an ID any of the libraries issues.
var junkValue = strings.Repeat("x", 64)

// gorillaKey is the authentication key of the gin-contrib/sessions stores.
var gorillaKey = []byte("0123456789abcdef0123456789abcdef")

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
	// login starts a new authenticated session for a new user (nextUser),
	// holding the user's name and role.
	login func(c *gin.Context) error
}

// subject is one library set up for a benchmark: the handler to serve
// requests with, and the Cookie headers the scenarios send.
type subject struct {
	h        http.Handler
	existing string // a live session, created by a login through h
	miss     string // a well-formed cookie for a session the store does not have
	junk     string // a malformed cookie
	mc       *mcServer
}

// library is one row of the comparison.
type library struct {
	name string
	// memcached libraries need the shared server.
	memcached bool
	// noMiss is set where a Miss cannot happen: a cookie store has no
	// server-side state to miss.
	noMiss bool
	// readOnly is set for the raw gomemcache floor, which has no sessions.
	readOnly bool
	// bare is set for bare gin, which has no sessions at all.
	bare bool
	new  func(tb testing.TB) (adapter, func(*subject))
}

// sharedMC is the memcached server started by TestMain, or nil.
var (
	sharedMC    *mcServer
	sharedMCErr error
)

// libraries lists every library in the order of the results table.
var libraries = []library{
	{name: "gin", bare: true, new: newBare},
	{name: "ginsession-memory", new: newGinsessionMemory},
	{name: "scs-memstore", new: newSCS},
	{name: "gincontrib-memstore", new: newGinContribMemstore},
	{name: "gincontrib-cookie", noMiss: true, new: newGinContribCookie},
	{name: "gomemcache-get", memcached: true, readOnly: true, new: newRawGet},
	{name: "ginsession-memcached", memcached: true, new: newGinsessionMemcached},
	{name: "gincontrib-memcached", memcached: true, new: newGinContribMemcached},
}

// newEngine builds the engine every library is measured on: gin.New() with
// the library's middleware and the same four routes.
func newEngine(a adapter) http.Handler {
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
	r.POST("/write", func(c *gin.Context) {
		if err := a.write(c, writeKey, writeValue); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.Status(http.StatusNoContent)
	})
	r.POST("/login", func(c *gin.Context) {
		if err := a.login(c); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.Status(http.StatusNoContent)
	})
	// /get/:key is for the tests, which check what a scenario wrote.
	r.GET("/get/:key", func(c *gin.Context) {
		v, ok := a.read(c, c.Param("key"))
		if !ok {
			c.Status(http.StatusUnauthorized)
			return
		}
		c.String(http.StatusOK, v)
	})
	if a.wrap != nil {
		return a.wrap(r)
	}
	return r
}

// setup builds l's subject, with a live session created by a real login.
func (l library) setup(tb testing.TB) *subject {
	tb.Helper()
	if l.memcached && sharedMC == nil {
		skipOrFail(tb, sharedMCErr)
	}
	a, finish := l.new(tb)
	s := &subject{h: newEngine(a), junk: "", mc: sharedMC}
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
	rec := serve(s.h, http.MethodPost, "/login", "")
	if rec.Code != http.StatusNoContent {
		tb.Fatalf("%s: login: status %d: %s", l.name, rec.Code, rec.Body)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		tb.Fatalf("%s: login set %d cookies, want 1", l.name, len(cookies))
	}
	s.existing = cookies[0].Name + "=" + cookies[0].Value
	s.junk = cookies[0].Name + "=" + junkValue
	finish(s)
	return s
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
	c := memcache.New(sharedMC.addr)
	c.Timeout = gsmemcached.DefaultTimeout
	c.MaxIdleConns = gsmemcached.DefaultMaxIdleConns
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// newBare is the floor: the same routes with no sessions.
func newBare(testing.TB) (adapter, func(*subject)) {
	return adapter{
		read:  func(*gin.Context, string) (string, bool) { return userValue, true },
		write: func(*gin.Context, string, string) error { return nil },
		login: func(*gin.Context) error { return nil },
	}, func(*subject) {}
}

func ginsessionAdapter(m *ginsession.Manager) adapter {
	return adapter{
		middleware: ginsession.New(m),
		read: func(c *gin.Context, key string) (string, bool) {
			s, ok := ginsession.Current(c)
			if !ok {
				return "", false
			}
			v := s.GetString(key)
			return v, v != ""
		},
		write: func(c *gin.Context, key, value string) error {
			// The Gin helper: one atomic merge into the request's session.
			return ginsession.Update(c, map[string]any{key: value})
		},
		login: func(c *gin.Context) error {
			_, err := ginsession.Login(c, nextUser(), map[string]any{userKey: userValue, roleKey: roleValue})
			return err
		},
	}
}

func newGinsessionMemory(tb testing.TB) (adapter, func(*subject)) {
	m := ginsession.NewManager(nil)
	tb.Cleanup(func() { _ = m.Close() })
	return ginsessionAdapter(m), func(s *subject) {
		s.miss = ginsession.DefaultCookieName + "=" + randomID()
	}
}

func newGinsessionMemcached(tb testing.TB) (adapter, func(*subject)) {
	store := gsmemcached.New(newMCClient(tb))
	tb.Cleanup(func() { _ = store.Close() })
	m := ginsession.NewManager(store)
	tb.Cleanup(func() { _ = m.Close() })
	return ginsessionAdapter(m), func(s *subject) {
		s.miss = ginsession.DefaultCookieName + "=" + randomID()
	}
}

// newSCS adapts scs to gin the way its README and issues show: LoadAndSave
// wraps the whole engine, handlers use the request's context.
func newSCS(tb testing.TB) (adapter, func(*subject)) {
	sm := scs.New() // with its default store, a memstore.MemStore
	tb.Cleanup(sm.Store.(*memstore.MemStore).StopCleanup)
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
			login: func(c *gin.Context) error {
				ctx := c.Request.Context()
				if err := sm.RenewToken(ctx); err != nil {
					return err
				}
				sm.Put(ctx, uidKey, nextUser())
				sm.Put(ctx, userKey, userValue)
				sm.Put(ctx, roleKey, roleValue)
				return nil
			},
		}, func(s *subject) {
			s.miss = sm.Cookie.Name + "=" + randomID()
		}
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
		login: func(c *gin.Context) error {
			s := sessions.Default(c)
			s.Set(uidKey, nextUser())
			s.Set(userKey, userValue)
			s.Set(roleKey, roleValue)
			return s.Save()
		},
	}
}

func newGinContribMemstore(tb testing.TB) (adapter, func(*subject)) {
	return gorillaAdapter(gcmemstore.NewStore(gorillaKey)), func(s *subject) { s.miss = gorillaMiss(tb) }
}

func newGinContribCookie(testing.TB) (adapter, func(*subject)) {
	return gorillaAdapter(gccookie.NewStore(gorillaKey)), func(*subject) {}
}

func newGinContribMemcached(tb testing.TB) (adapter, func(*subject)) {
	return gorillaAdapter(gcmemcached.NewStore(newMCClient(tb), "gc:", gorillaKey)), func(s *subject) { s.miss = gorillaMiss(tb) }
}

// rawKey is the item the gomemcache floor reads.
const rawKey = "raw:" + "floor"

// newRawGet is the physical floor of a memcached-backed request: the same
// gin request whose handler does one gomemcache Get of an item about the
// size of a session record.
func newRawGet(tb testing.TB) (adapter, func(*subject)) {
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
		login: func(*gin.Context) error { return errors.ErrUnsupported },
	}, func(*subject) {}
}

// ctx is for direct Manager calls in tests.
var ctx = context.Background()
