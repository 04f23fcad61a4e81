package e2e

import (
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/_example/app"
	"github.com/securestack/ginsession/internal/memcachedtest"
	"github.com/securestack/ginsession/internal/redistest"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/memcached"
	"github.com/securestack/ginsession/stores/redisstore"
)

// cookieName is the session cookie of the example (ginsession's default).
const cookieName = "__Host-session"

// appServer is the example's router on a loopback port, with a log of the
// requests it answered.
type appServer struct {
	URL string // http://127.0.0.1:PORT
	Log *requestLog
}

// serveApp serves the example's router on m at http://127.0.0.1:PORT until
// the test ends. 127.0.0.1 is a secure context for Chromium, so the Secure
// __Host- cookie works without TLS.
func serveApp(t *testing.T, m *ginsession.Manager) *appServer {
	t.Helper()
	log := &requestLog{}
	srv := httptest.NewServer(log.wrap(app.New(m)))
	t.Cleanup(srv.Close)
	return &appServer{URL: srv.URL, Log: log}
}

// newManager returns a Manager on store (nil: the in-memory store), closed
// when the test ends.
func newManager(t *testing.T, store stores.Store) *ginsession.Manager {
	t.Helper()
	m := ginsession.NewManager(store)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// request is what the server saw of one request, and how it answered.
type request struct {
	Method, Path string
	Session      bool // the request carried the session cookie
	Status       int
	CacheControl string
}

// requestLog records the requests a server answered. It is safe for
// concurrent use.
type requestLog struct {
	mu   sync.Mutex
	reqs []request
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		_, err := r.Cookie(cookieName)
		l.mu.Lock()
		defer l.mu.Unlock()
		l.reqs = append(l.reqs, request{
			Method: r.Method, Path: r.URL.Path, Session: err == nil,
			Status: sw.status, CacheControl: w.Header().Get("Cache-Control"),
		})
	})
}

// all returns the requests for method and path so far, oldest first.
func (l *requestLog) all(method, path string) []request {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []request
	for _, r := range l.reqs {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// mark returns a position in the log, for next.
func (l *requestLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reqs)
}

// next waits for the first request for method and path after the mark,
// and returns it. The browser may show a response before the server has
// logged it, hence the wait.
func (l *requestLog) next(t *testing.T, mark int, method, path string) request {
	t.Helper()
	deadline := time.Now().Add(actionTimeout)
	for {
		l.mu.Lock()
		for _, r := range l.reqs[mark:] {
			if r.Method == method && r.Path == path {
				l.mu.Unlock()
				return r
			}
		}
		l.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("the server saw no %s %s", method, path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// forgery is the page of another origin that posts a form to the app as
// soon as it loads, without the user's doing, and without the CSRF token,
// which the attacker cannot read.
var forgery = template.Must(template.New("forgery").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Win a prize</title></head>
<body><form id="f" method="post" action="{{.Action}}">
{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}</form>
<script>document.getElementById("f").submit()</script>
</body></html>`))

// serveForgery serves forgery pages on a second loopback port. Page
// /?action=URL&k=v... posts the fields k=v... to URL.
func serveForgery(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		fields := map[string]string{}
		for k := range q {
			if k != "action" {
				fields[k] = q.Get(k)
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = forgery.Execute(w, map[string]any{"Action": q.Get("action"), "Fields": fields})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// forgeryURL returns the address of the forgery page on host (127.0.0.1 or
// localhost) that posts fields to action.
func forgeryURL(srv *httptest.Server, host, action string, fields url.Values) string {
	u, _ := url.Parse(srv.URL)
	u.Host = host + ":" + u.Port()
	q := url.Values{"action": {action}}
	for k, v := range fields {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// sharedStore is a store that several instances share: newStore returns a
// new client of the same sessions each time it is called, closed when the
// test ends. Adding a store to the suite is one entry in sharedStores.
type sharedStore struct {
	name  string
	start func(t *testing.T) (newStore func() stores.Store)
}

var sharedStores = []sharedStore{
	{"memcached", startMemcached},
	{"redis", startRedis},
}

// startMemcached starts a memcached server for the test (skipped without
// the binary, failed under CI=true) and returns clients of it.
func startMemcached(t *testing.T) func() stores.Store {
	srv := memcachedtest.Start(t)
	return func() stores.Store {
		s, err := memcached.NewFromServers(strings.Split(srv.Addr, ","))
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
}

// startRedis starts a Redis server for the test (skipped without the
// binary, failed under CI=true) and returns stores on clients of it.
func startRedis(t *testing.T) func() stores.Store {
	srv := redistest.Start(t)
	return func() stores.Store {
		client := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: 1, DialerRetries: 1})
		t.Cleanup(func() { _ = client.Close() })
		s := redisstore.New(client)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
}
