// Package load serves the example application over real TCP and drives it
// with concurrent clients that check what they read: the load generator of
// the load and fault runs.
//
// Serve runs app.New — the example's router, unchanged — on a Manager over
// the given store, behind an http.Server on a free loopback port, with a
// slog handler that counts what ginsession logs. Run starts clients, each
// a user with its own cookie jar and one session at a time, that read their
// profile, update their data, log in again and log out in a mix, and check
// every answer against what they wrote. The package holds no global state
// but the counters of go-redis's and gin's own logs.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/_example/app"
	"github.com/securestack/ginsession/stores"
)

// App is the example application served on a loopback port.
type App struct {
	// URL is the application's base URL, http://127.0.0.1:port.
	URL string
	// Manager is the application's session Manager.
	Manager *ginsession.Manager
	// Logs counts the records ginsession logged.
	Logs *LogCounter
	// Panics counts the panics gin.Recovery caught.
	Panics *LineCounter
	// ServerErrors counts what net/http's server logged (accept errors,
	// handler panics it recovered).
	ServerErrors *LineCounter

	srv  *http.Server
	done chan error
}

// Server timeouts: generous next to a request's cost, so that only a hung
// client or store reaches them.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 30 * time.Second
)

var ginMode sync.Once

// Serve serves app.New on a Manager over store (nil: the default memory
// store) on a free loopback port. opts come after the package's own
// WithLogger, so they may replace it.
func Serve(store stores.Store, opts ...ginsession.Option) (*App, error) {
	ginMode.Do(func() { gin.SetMode(gin.ReleaseMode) })
	a := &App{
		Logs:         NewLogCounter(),
		Panics:       &LineCounter{},
		ServerErrors: &LineCounter{},
		done:         make(chan error, 1),
	}
	a.Manager = ginsession.NewManager(store, append([]ginsession.Option{ginsession.WithLogger(slog.New(a.Logs))}, opts...)...)
	// gin.Recovery, which app.New installs, writes each panic it recovers
	// to gin.DefaultErrorWriter as the router is built.
	gin.DefaultErrorWriter = a.Panics
	h := app.New(a.Manager)
	gin.DefaultErrorWriter = io.Discard

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = a.Manager.Close()
		return nil, err
	}
	a.URL = "http://" + ln.Addr().String()
	a.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          log.New(a.ServerErrors, "", 0),
	}
	go func() { a.done <- a.srv.Serve(ln) }()
	return a, nil
}

// Close shuts the server down (waiting up to 5s for requests in flight)
// and closes the Manager, which closes a default memory store; stores
// passed to Serve stay open.
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := a.srv.Shutdown(ctx)
	if serr := <-a.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if cerr := a.Manager.Close(); err == nil {
		err = cerr
	}
	return err
}

// LineCounter is an io.Writer that counts the writes it gets (a logger
// writes each record once) and keeps the first one.
type LineCounter struct {
	n     atomic.Int64
	mu    sync.Mutex
	first string
}

func (c *LineCounter) Write(p []byte) (int, error) {
	if c.n.Add(1) == 1 {
		c.mu.Lock()
		c.first = strings.TrimSpace(string(p))
		c.mu.Unlock()
	}
	return len(p), nil
}

// Count returns the number of writes.
func (c *LineCounter) Count() int64 { return c.n.Load() }

// First returns the first write, or "".
func (c *LineCounter) First() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first
}

// LogRecord is what LogCounter keeps of a record.
type LogRecord struct {
	Time       time.Time
	Level      slog.Level
	Message    string
	Suppressed uint64 // the "suppressed" attribute, if any
	Failures   uint64 // the "failures" attribute, if any
	Attrs      string // the attributes, formatted, for the report
}

// LogCounter is a slog.Handler that keeps every record it handles (their
// time, level, message and attributes), so that a run can count them. It
// is safe for concurrent use.
type LogCounter struct {
	mu      sync.Mutex
	records []LogRecord
}

// NewLogCounter returns an empty LogCounter.
func NewLogCounter() *LogCounter { return &LogCounter{} }

// Enabled reports true for every level: the run counts them all.
func (l *LogCounter) Enabled(context.Context, slog.Level) bool { return true }

// Handle keeps r.
func (l *LogCounter) Handle(_ context.Context, r slog.Record) error {
	rec := LogRecord{Time: r.Time, Level: r.Level, Message: r.Message}
	var attrs []string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "suppressed":
			rec.Suppressed = a.Value.Uint64()
		case "failures":
			rec.Failures = a.Value.Uint64()
		}
		attrs = append(attrs, a.String())
		return true
	})
	rec.Attrs = strings.Join(attrs, " ")
	l.mu.Lock()
	l.records = append(l.records, rec)
	l.mu.Unlock()
	return nil
}

// WithAttrs returns l: ginsession adds no attributes through it.
func (l *LogCounter) WithAttrs([]slog.Attr) slog.Handler { return l }

// WithGroup returns l.
func (l *LogCounter) WithGroup(string) slog.Handler { return l }

// Records returns a copy of the records so far.
func (l *LogCounter) Records() []LogRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LogRecord(nil), l.records...)
}

// ProcStats are the process's goroutines and heap.
type ProcStats struct {
	// Goroutines counts the process's goroutines but those that watch
	// the run's server processes (started by package servers and
	// os/exec), which come and go with the servers, not the application.
	Goroutines int
	// GoRedis counts those of them that go-redis started (per-node
	// machinery of its clients).
	GoRedis int
	// Origins groups the counted goroutines by the function that started
	// them.
	Origins map[string]int
	// HeapInuse is runtime.MemStats.HeapInuse after two full
	// collections: the bytes of the heap's spans in use.
	HeapInuse uint64
}

// Stats collects garbage and returns the process's figures.
func Stats() ProcStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := ProcStats{HeapInuse: ms.HeapInuse, Origins: make(map[string]int)}
	for origin, c := range Goroutines() {
		if watcher(origin) {
			continue
		}
		st.Origins[origin] += c
		st.Goroutines += c
		if strings.HasPrefix(origin, "github.com/redis/go-redis/") {
			st.GoRedis += c
		}
	}
	return st
}

// AppGoroutines returns the number of goroutines but those that watch the
// run's server processes, and but go-redis's when withoutGoRedis is set.
func AppGoroutines(withoutGoRedis bool) int {
	n := 0
	for origin, c := range Goroutines() {
		if !watcher(origin) && !(withoutGoRedis && strings.HasPrefix(origin, "github.com/redis/go-redis/")) {
			n += c
		}
	}
	return n
}

// watcher reports whether a goroutine started by origin watches a server
// process.
func watcher(origin string) bool {
	return strings.HasPrefix(origin, "os/exec.") || strings.Contains(origin, "/loadtest/internal/servers.")
}

// SettleGoroutines waits up to limit for the number of goroutines (as
// AppGoroutines counts them) to fall to target or below, and returns the
// last count and how long it waited.
func SettleGoroutines(target int, withoutGoRedis bool, limit time.Duration) (int, time.Duration) {
	start := time.Now()
	for {
		n := AppGoroutines(withoutGoRedis)
		if n <= target || time.Since(start) >= limit {
			return n, time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// MiB formats bytes as mebibytes.
func MiB(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// RedisLog counts go-redis's own log lines (redis.SetLogger): it logs one
// per failed dial, which a store outage under load turns into thousands.
// The load runs count and discard them.
type RedisLog struct{ n atomic.Int64 }

// Printf counts one line.
func (l *RedisLog) Printf(context.Context, string, ...any) { l.n.Add(1) }

// Count returns the number of lines so far.
func (l *RedisLog) Count() int64 { return l.n.Load() }

// Goroutines returns the process's goroutines grouped by the function each
// was started with (the last frame of its stack), for reports on those
// that did not exit.
func Goroutines() map[string]int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	groups := make(map[string]int)
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		lines := strings.Split(strings.TrimSpace(g), "\n")
		// lines[0] is "goroutine N [state]:", then function and file
		// lines in turn; "created by F in goroutine M" ends the stack.
		origin := "?"
		for i := len(lines) - 1; i > 0; i-- {
			if f, ok := strings.CutPrefix(lines[i], "created by "); ok {
				origin = f
				if j := strings.Index(origin, " in goroutine"); j >= 0 {
					origin = origin[:j]
				}
				break
			}
		}
		if origin == "?" && len(lines) > 1 {
			origin = lines[len(lines)-2] // main or a runtime goroutine
		}
		groups[origin]++
	}
	return groups
}
