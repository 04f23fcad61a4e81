package benchmarks

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// scenario is one kind of request, sent the same way to every library.
type scenario struct {
	name   string
	method string
	path   string
	// cookie picks the Cookie header from the subject; "" sends none.
	cookie func(*subject) string
	// status is what a library with sessions must answer (bare gin,
	// having none, answers as if every request were signed in).
	status int
	// applies reports whether the scenario makes sense for l.
	applies func(l library) bool
}

func always(library) bool           { return true }
func withSessions(l library) bool   { return !l.readOnly }
func withServerSide(l library) bool { return !l.readOnly && !l.noMiss }

var scenarios = []scenario{
	// ReadExisting: a valid session cookie; the handler reads one value;
	// nothing changes.
	{"ReadExisting", http.MethodGet, "/read", func(s *subject) string { return s.existing }, http.StatusOK, always},
	// WriteOne: the handler sets one key of the session.
	{"WriteOne", http.MethodPost, "/write", func(s *subject) string { return s.existing }, http.StatusNoContent, withSessions},
	// Create: no cookie; the handler logs a user in.
	{"Create", http.MethodPost, "/login", func(*subject) string { return "" }, http.StatusNoContent, withSessions},
	// Miss: a well-formed cookie naming a session the store does not have.
	{"Miss", http.MethodGet, "/read", func(s *subject) string { return s.miss }, http.StatusUnauthorized, withServerSide},
	// Junk: a malformed cookie.
	{"Junk", http.MethodGet, "/read", func(s *subject) string { return s.junk }, http.StatusUnauthorized, withSessions},
}

// readParallel is ReadExisting under b.RunParallel.
var readParallel = scenario{"ReadExistingParallel", http.MethodGet, "/read", func(s *subject) string { return s.existing }, http.StatusOK, always}

func BenchmarkReadExisting(b *testing.B)         { benchScenario(b, scenarios[0], false) }
func BenchmarkWriteOne(b *testing.B)             { benchScenario(b, scenarios[1], false) }
func BenchmarkCreate(b *testing.B)               { benchScenario(b, scenarios[2], false) }
func BenchmarkMiss(b *testing.B)                 { benchScenario(b, scenarios[3], false) }
func BenchmarkJunk(b *testing.B)                 { benchScenario(b, scenarios[4], false) }
func BenchmarkReadExistingParallel(b *testing.B) { benchScenario(b, readParallel, true) }

// benchScenario measures sc for every library it applies to, one
// sub-benchmark per library. Each iteration builds a fresh *http.Request
// and recorder (gorilla caches the session inside the request, so reusing
// one would measure nothing). Memcached cases also report the server's
// commands per request, from its stats before and after.
func benchScenario(b *testing.B, sc scenario, parallel bool) {
	for _, l := range libraries {
		if !sc.applies(l) {
			continue
		}
		b.Run("lib="+l.name, func(b *testing.B) {
			s := l.setup(b)
			cookie := sc.cookie(s)
			// One checked request first, so that a broken setup fails
			// instead of timing an error path.
			if rec := serve(s.h, sc.method, sc.path, cookie); !l.bare && rec.Code != sc.status {
				b.Fatalf("%s %s: status %d, want %d: %s", sc.name, l.name, rec.Code, sc.status, rec.Body)
			}
			var before mcCounts
			if l.memcached {
				before = s.mc.counts(b)
			}
			b.ReportAllocs()
			if parallel {
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						req := httptest.NewRequest(sc.method, sc.path, nil)
						if cookie != "" {
							req.Header.Set("Cookie", cookie)
						}
						s.h.ServeHTTP(httptest.NewRecorder(), req)
					}
				})
			} else {
				for b.Loop() {
					req := httptest.NewRequest(sc.method, sc.path, nil)
					if cookie != "" {
						req.Header.Set("Cookie", cookie)
					}
					s.h.ServeHTTP(httptest.NewRecorder(), req)
				}
			}
			b.StopTimer()
			if l.memcached {
				reportCommands(b, before, s.mc.counts(b))
			}
		})
	}
}
