package gincontrib_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/internal/memcachedtest"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/memcached"
	"github.com/securestack/ginsession/stores/memory"
)

// The package's tests share one memcached server; each test's store has a
// key prefix of its own. The test of store operations starts a server of
// its own, whose statistics no other test disturbs.
var (
	shared    *memcachedtest.Server
	sharedErr error
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	s, stop, err := memcachedtest.StartMain()
	shared, sharedErr = s, err
	code := m.Run()
	stop()
	os.Exit(code)
}

// sharedServer returns the package's server, or skips (fails in CI) when
// memcached is not installed.
func sharedServer(tb testing.TB) *memcachedtest.Server {
	tb.Helper()
	if sharedErr != nil {
		memcachedtest.SkipOrFail(tb, sharedErr)
	}
	return shared
}

var prefixSeq atomic.Int64

// newMemcachedStore returns a store on srv with a key prefix no other test
// uses, closed when the test ends.
func newMemcachedStore(tb testing.TB, srv *memcachedtest.Server) *memcached.Store {
	tb.Helper()
	st, err := memcached.NewFromServers([]string{srv.Addr}, memcached.WithPrefix(fmt.Sprintf("gc%d:", prefixSeq.Add(1))))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// backend makes the stores.Store of one kind for a test, closed when the
// test ends. The memory store reads the time from now; memcached keeps its
// own time, which only the Manager's clock needs to follow.
type backend struct {
	name  string
	store func(tb testing.TB, now func() time.Time) stores.Store
}

var backends = []backend{
	{"memory", func(tb testing.TB, now func() time.Time) stores.Store {
		st := memory.New(memory.WithClock(now))
		tb.Cleanup(func() { _ = st.Close() })
		return st
	}},
	{"memcached", func(tb testing.TB, _ func() time.Time) stores.Store {
		return newMemcachedStore(tb, sharedServer(tb))
	}},
}

// forEachBackend runs f as a subtest per backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// newManager returns a Manager on st (nil: a memory store), closed when
// the test ends.
func newManager(tb testing.TB, st stores.Store, opts ...ginsession.Option) *ginsession.Manager {
	tb.Helper()
	m := ginsession.NewManager(st, opts...)
	tb.Cleanup(func() { _ = m.Close() })
	return m
}

// clock is a fake clock: it stands still until Advance.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().Round(0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// name is the session name, and so the cookie name, of the tests.
const name = "mysession"

// newEngine returns a gin engine with sessions.Sessions(name, store).
func newEngine(store sessions.Store, extra ...gin.HandlerFunc) *gin.Engine {
	r := gin.New()
	r.Use(extra...)
	r.Use(sessions.Sessions(name, store))
	return r
}

// do sends a request with the given Cookie header value (if any).
func do(r http.Handler, method, path, cookie string) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(context.Background(), method, path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

// setCookies returns the response's Set-Cookie headers for the cookie n.
func setCookies(w *httptest.ResponseRecorder, n string) []string {
	var out []string
	for _, v := range w.Header().Values("Set-Cookie") {
		if strings.HasPrefix(v, n+"=") {
			out = append(out, v)
		}
	}
	return out
}

// cookieOf returns the name=value pair of the one session cookie the
// response set.
func cookieOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	sc := setCookies(w, name)
	require.Len(t, sc, 1, "Set-Cookie headers for %s: %q", name, w.Header().Values("Set-Cookie"))
	pair, _, _ := strings.Cut(sc[0], ";")
	return pair
}

// idOf returns the ID in a name=value cookie pair.
func idOf(pair string) string {
	_, v, _ := strings.Cut(pair, "=")
	return v
}

// saveErr records the error of each Save a test's handlers make.
type saveErr struct {
	mu   sync.Mutex
	errs []error
}

func (s *saveErr) add(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
}

func (s *saveErr) last() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) == 0 {
		return errors.New("no Save happened")
	}
	return s.errs[len(s.errs)-1]
}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

// messages returns the messages of the records so far.
func (h *logRecorder) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		out = append(out, r.Message)
	}
	return out
}

// recordLogs makes slog's default logger a recorder until the test ends.
// gin-contrib/sessions logs its store errors there.
func recordLogs(t *testing.T) *logRecorder {
	t.Helper()
	prev := slog.Default()
	h := new(logRecorder)
	slog.SetDefault(slog.New(h))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return h
}

// flaky is a store that fails every call with stores.ErrUnavailable while
// down is set, as a store that is down does.
type flaky struct {
	stores.Store
	down atomic.Bool
}

var errDown = fmt.Errorf("flaky: %w", stores.ErrUnavailable)

func (f *flaky) Get(ctx context.Context, k stores.Key) (stores.Item, error) {
	if f.down.Load() {
		return stores.Item{}, errDown
	}
	return f.Store.Get(ctx, k)
}

func (f *flaky) Add(ctx context.Context, k stores.Key, rec *stores.Record, exp time.Time) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.Add(ctx, k, rec, exp)
}

func (f *flaky) Update(ctx context.Context, k stores.Key, fn stores.UpdateFunc) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.Update(ctx, k, fn)
}

func (f *flaky) Delete(ctx context.Context, k stores.Key) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.Delete(ctx, k)
}

func (f *flaky) Touch(ctx context.Context, k stores.Key, exp time.Time) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.Touch(ctx, k, exp)
}
