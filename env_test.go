package ginsession_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/memory"
	"github.com/securestack/ginsession/stores/storetest"
)

func idOf(cookie string) string {
	return strings.TrimPrefix(cookie, ginsession.DefaultCookieName+"=")
}

func init() { gin.SetMode(gin.TestMode) }

// t0 is the fixed start of every fake clock.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newClock returns a fake clock reading t0.
func newClock() *storetest.Clock { return storetest.NewClock(t0) }

// countingStore wraps a store and counts the calls made to it. When fail is
// set, every call fails with stores.ErrUnavailable.
type countingStore struct {
	stores.Store
	gets, adds, updates, deletes, touches atomic.Int64
	fail                                  atomic.Bool
}

var errDown = errors.New("connection refused")

func (s *countingStore) err() error {
	if s.fail.Load() {
		return errors.Join(stores.ErrUnavailable, errDown)
	}
	return nil
}

func (s *countingStore) calls() int64 {
	return s.gets.Load() + s.adds.Load() + s.updates.Load() + s.deletes.Load() + s.touches.Load()
}

func (s *countingStore) Get(ctx context.Context, k stores.Key) (stores.Item, error) {
	s.gets.Add(1)
	if err := s.err(); err != nil {
		return stores.Item{}, err
	}
	return s.Store.Get(ctx, k)
}

func (s *countingStore) Add(ctx context.Context, k stores.Key, r *stores.Record, exp time.Time) error {
	s.adds.Add(1)
	if err := s.err(); err != nil {
		return err
	}
	return s.Store.Add(ctx, k, r, exp)
}

func (s *countingStore) Update(ctx context.Context, k stores.Key, fn stores.UpdateFunc) error {
	s.updates.Add(1)
	if err := s.err(); err != nil {
		return err
	}
	return s.Store.Update(ctx, k, fn)
}

func (s *countingStore) Delete(ctx context.Context, k stores.Key) error {
	s.deletes.Add(1)
	if err := s.err(); err != nil {
		return err
	}
	return s.Store.Delete(ctx, k)
}

func (s *countingStore) Touch(ctx context.Context, k stores.Key, exp time.Time) error {
	s.touches.Add(1)
	if err := s.err(); err != nil {
		return err
	}
	return s.Store.Touch(ctx, k, exp)
}

// env is a test application: a Manager on a counted memory store with a
// fake clock, and a gin.Engine with login, profile, update, rotate and
// logout routes.
type env struct {
	t      *testing.T
	clock  *storetest.Clock
	store  *countingStore
	m      *ginsession.Manager
	engine *gin.Engine
}

func newEnv(t *testing.T, opts ...ginsession.Option) *env {
	t.Helper()
	clock := newClock()
	mem := memory.New(memory.WithClock(clock.Now), memory.WithSweepInterval(0))
	store := &countingStore{Store: mem}
	m := ginsession.NewManager(store, append([]ginsession.Option{ginsession.WithClock(clock.Now)}, opts...)...)
	t.Cleanup(func() {
		_ = m.Close()
		_ = mem.Close()
	})
	e := &env{t: t, clock: clock, store: store, m: m, engine: newTestRouter(m)}
	return e
}

func newTestRouter(m *ginsession.Manager) *gin.Engine {
	r := gin.New()
	r.Use(ginsession.New(m))
	r.POST("/login", func(c *gin.Context) {
		user := c.Query("user")
		if _, err := ginsession.Login(c, user, map[string]any{"role": "user"}); err != nil {
			var rl *ginsession.RateLimitError
			if errors.As(err, &rl) {
				c.JSON(http.StatusTooManyRequests, gin.H{"error": err.Error()})
				return
			}
			c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
			return
		}
		c.JSON(http.StatusOK, gin.H{"message": "Logged in successfully"})
	})
	r.GET("/profile", ginsession.Required(), func(c *gin.Context) {
		s := c.MustGet(ginsession.SessionKey).(*ginsession.Session)
		c.JSON(http.StatusOK, gin.H{"userId": s.UserID, "data": s.Data})
	})
	r.POST("/rotate", ginsession.Required(), func(c *gin.Context) {
		if _, err := ginsession.Rotate(c); err != nil {
			c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
			return
		}
		c.Status(http.StatusNoContent)
	})
	r.POST("/logout", ginsession.Required(), func(c *gin.Context) {
		if err := ginsession.Logout(c); err != nil {
			c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
			return
		}
		c.JSON(http.StatusOK, gin.H{"message": "Logged out successfully"})
	})
	return r
}

// do sends one request with the given raw Cookie header ("" for none).
func (e *env) do(method, path, cookie string) *httptest.ResponseRecorder {
	e.t.Helper()
	return performRequest(e.engine, method, path, cookie)
}

func performRequest(h http.Handler, method, path, cookie string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(""))
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// login logs user in and returns the Cookie header value to send back.
func (e *env) login(user string) string {
	e.t.Helper()
	w := e.do(http.MethodPost, "/login?user="+user, "")
	require.Equal(e.t, http.StatusOK, w.Code, w.Body.String())
	return cookieHeader(e.t, w)
}

// cookieHeader returns "name=value" of the session cookie set by w.
func cookieHeader(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	c := sessionCookie(t, w)
	require.NotNil(t, c, "no session cookie set")
	return c.Name + "=" + c.Value
}

// sessionCookie returns the session cookie w sets, or nil.
func sessionCookie(t *testing.T, w *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	var found *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == ginsession.DefaultCookieName {
			require.Nil(t, found, "session cookie set twice")
			found = c
		}
	}
	return found
}

// sha256Key is the store key of id when no token hash key is configured.
func sha256Key(id string) stores.Key { return sha256.Sum256([]byte(id)) }

// UpdateFrom forwards to the wrapped store's UpdateFrom, when it has one.
func (s *countingStore) UpdateFrom(ctx context.Context, k stores.Key, cur stores.Item, fn stores.UpdateFunc) error {
	s.updates.Add(1)
	if err := s.err(); err != nil {
		return err
	}
	if uf, ok := s.Store.(stores.UpdaterFrom); ok {
		return uf.UpdateFrom(ctx, k, cur, fn)
	}
	return s.Store.Update(ctx, k, fn)
}
