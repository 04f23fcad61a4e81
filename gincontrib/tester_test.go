package gincontrib_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/tester"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/gincontrib"
)

// suite is one function of gin-contrib/sessions' tester package.
type suite struct {
	name string
	run  func(*testing.T, func(*testing.T) sessions.Store)
	// requests is how many requests the function sends.
	requests int
}

// testerSuites are the seven functions of the tester in v1.1.0.
var testerSuites = []suite{
	{"GetSet", func(t *testing.T, f func(*testing.T) sessions.Store) { tester.GetSet(t, f) }, 2},
	{"DeleteKey", func(t *testing.T, f func(*testing.T) sessions.Store) { tester.DeleteKey(t, f) }, 3},
	{"Flashes", func(t *testing.T, f func(*testing.T) sessions.Store) { tester.Flashes(t, f) }, 3},
	{"Clear", func(t *testing.T, f func(*testing.T) sessions.Store) { tester.Clear(t, f) }, 2},
	{"Options", func(t *testing.T, f func(*testing.T) sessions.Store) { tester.Options(t, f) }, 6},
	{"Many", func(t *testing.T, f func(*testing.T) sessions.Store) { tester.Many(t, f) }, 2},
	{"ManyStores", func(t *testing.T, f func(*testing.T) sessions.Store) { tester.ManyStores(t, f) }, 2},
}

// TestTester runs gin-contrib/sessions' own tester against NewStore, on
// every backend, strictly: besides the tester's checks, a panic, a
// response other than 200 or a log record fails the test (see watch).
func TestTester(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, s := range testerSuites {
			t.Run(s.name, func(t *testing.T) {
				newStore := func(t *testing.T) sessions.Store {
					return gincontrib.NewStore(newManager(t, b.store(t, time.Now)))
				}
				rep := watchTester(t, s, newStore)
				assert.Equal(t, s.requests, rep.requests, "requests seen in gin's log")
				for _, p := range rep.problems {
					t.Errorf("%s: %s", p.kind, p.detail)
				}
			})
		}
	})
}

// TestWatchCatches proves that watch catches each kind of failure the
// tester itself lets through, with stores broken on purpose that pass
// tester.GetSet.
func TestWatchCatches(t *testing.T) {
	cases := []struct {
		name  string
		wrap  func(sessions.Store) sessions.Store
		kinds []string // the kinds of problem watch must report
	}{
		{"panic in Get", func(s sessions.Store) sessions.Store { return panicking{s} }, []string{"panic", "status"}},
		{"500 without a panic", func(s sessions.Store) sessions.Store { return &failingStatus{Store: s} }, []string{"status"}},
		{"error log", func(s sessions.Store) sessions.Store { return loggingErr{s} }, []string{"log"}},
		{"nothing broken", func(s sessions.Store) sessions.Store { return s }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			newStore := func(t *testing.T) sessions.Store {
				return tc.wrap(gincontrib.NewStore(newManager(t, nil)))
			}
			rep := watchTester(t, testerSuites[0], newStore)
			t.Logf("watch reported %d requests, problems %v", rep.requests, rep.problems)
			assert.Equal(t, 2, rep.requests)
			var kinds []string
			for _, p := range rep.problems {
				if !containsString(kinds, p.kind) {
					kinds = append(kinds, p.kind)
				}
			}
			assert.ElementsMatch(t, tc.kinds, kinds, "problems: %v", rep.problems)
		})
	}
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// panicking panics on Get; the tester passes (Recovery swallows it).
type panicking struct{ sessions.Store }

func (panicking) Get(*http.Request, string) (*gsessions.Session, error) { panic("broken on purpose") }

// failingStatus answers 500 from Save, after saving, and sends the
// header at once (gin would let the handler's c.String(200) override a
// status not sent yet): the tester passes. Its sessions are its own, so
// that gorilla's Session.Save reaches it rather than the store it wraps.
type failingStatus struct {
	sessions.Store
	inner sync.Map // *gsessions.Session handed out → the wrapped store's
}

func (s *failingStatus) Get(r *http.Request, name string) (*gsessions.Session, error) {
	gs, err := s.Store.Get(r, name)
	out := gsessions.NewSession(s, name)
	out.ID, out.Values, out.Options, out.IsNew = gs.ID, gs.Values, gs.Options, gs.IsNew
	s.inner.Store(out, gs)
	return out, err
}

func (s *failingStatus) Save(r *http.Request, w http.ResponseWriter, out *gsessions.Session) error {
	v, _ := s.inner.Load(out)
	gs := v.(*gsessions.Session)
	gs.Options = out.Options
	err := s.Store.Save(r, w, gs)
	out.ID = gs.ID
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write(nil)
	return err
}

// loggingErr returns an error with every session it loads, which
// gin-contrib only logs: the tester passes.
type loggingErr struct{ sessions.Store }

func (s loggingErr) Get(r *http.Request, name string) (*gsessions.Session, error) {
	gs, err := s.Store.Get(r, name)
	return gs, errors.Join(err, errors.New("broken on purpose"))
}

// problem is one failure watch saw.
type problem struct{ kind, detail string }

// report is what watch saw during one tester function.
type report struct {
	requests int
	problems []problem
}

// watch watches a tester function through gin's and slog's global
// outputs, the only handles the tester leaves: every engine it builds is
// gin.Default(), whose Logger writes one line per request, with its status,
// to gin.DefaultWriter and whose Recovery writes every panic it swallows to
// gin.DefaultErrorWriter, both read when the engine is built; and
// gin-contrib/sessions logs store errors with slog.Error("[sessions]
// ERROR!"). A response other than 200, anything written by Recovery, any
// slog record and any log line that does not parse are problems. Tests
// using it must not run in parallel.
type watch struct {
	mu      sync.Mutex
	partial []byte
	rep     report
}

// ginLine is a line of gin's default log format, without colours (the
// output is not a terminal): "[GIN] 2026/12/01 - 10:00:00 | 200 |  1.2ms |
// 192.0.2.1 | GET      "/set"".
var ginLine = regexp.MustCompile(`^\[GIN\] \d{4}/\d\d/\d\d - \d\d:\d\d:\d\d \| (\d{3}) \|.*\| (\S+)\s+"([^"]*)"$`)

func (w *watch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.line(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
}

// line handles one line of gin's log; w.mu is held.
func (w *watch) line(l string) {
	m := ginLine.FindStringSubmatch(l)
	if m == nil {
		w.add("unparsed", fmt.Sprintf("gin log line %q", l))
		return
	}
	w.rep.requests++
	if m[1] != "200" {
		w.add("status", fmt.Sprintf("%s %s answered %s", m[2], m[3], m[1]))
	}
}

// add records a problem; w.mu is held.
func (w *watch) add(kind, detail string) {
	w.rep.problems = append(w.rep.problems, problem{kind, detail})
}

// recoveryWriter receives what gin's Recovery writes: panics.
type recoveryWriter struct{ w *watch }

func (rw recoveryWriter) Write(p []byte) (int, error) {
	rw.w.mu.Lock()
	defer rw.w.mu.Unlock()
	// "[Recovery] <time> panic recovered:\n<value>\n<stack>": keep the
	// first two lines.
	lines := strings.SplitN(strings.TrimSpace(strings.ReplaceAll(string(p), "\x1b[31m", "")), "\n", 3)
	rw.w.add("panic", strings.Join(lines[:min(2, len(lines))], " "))
	return len(p), nil
}

// slogWatch is a slog.Handler reporting every record as a problem.
type slogWatch struct{ w *watch }

func (h slogWatch) Enabled(context.Context, slog.Level) bool { return true }
func (h slogWatch) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h slogWatch) WithGroup(string) slog.Handler            { return h }
func (h slogWatch) Handle(_ context.Context, r slog.Record) error {
	var attrs []string
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a.String())
		return true
	})
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	h.w.add("log", fmt.Sprintf("%s %q %v", r.Level, r.Message, attrs))
	return nil
}

// watchTester runs the tester function s with newStore under a watch and
// returns what it saw.
func watchTester(t *testing.T, s suite, newStore func(*testing.T) sessions.Store) report {
	t.Helper()
	w := new(watch)
	prevOut, prevErr, prevLog := gin.DefaultWriter, gin.DefaultErrorWriter, slog.Default()
	gin.DefaultWriter, gin.DefaultErrorWriter = w, recoveryWriter{w}
	slog.SetDefault(slog.New(slogWatch{w}))
	defer func() {
		gin.DefaultWriter, gin.DefaultErrorWriter = prevOut, prevErr
		slog.SetDefault(prevLog)
	}()
	require.Equal(t, gin.TestMode, gin.Mode(), "debug mode would print warnings into the watched log")

	s.run(t, newStore)

	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.add("unparsed", fmt.Sprintf("gin log tail %q", w.partial))
	}
	return w.rep
}
