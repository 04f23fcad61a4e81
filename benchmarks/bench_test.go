package benchmarks

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/securestack/ginsession"
)

// maxSessionsPerUser is ginsession's default per-user cap of sessions.
const maxSessionsPerUser = ginsession.DefaultMaxSessionsPerUser

// scenario is one kind of request, sent the same way to every library.
type scenario struct {
	name   string
	method string
	path   string
	// cookie prepares the subject for the scenario and returns the Cookie
	// header of the first request; "" sends none.
	cookie func(tb testing.TB, s *subject) string
	// chain makes each request carry the session cookie that the
	// previous response set (a browser logging in again).
	chain bool
	// keyed builds the subject with a server key (env.keyed).
	keyed bool
	// status is what a library with sessions must answer (bare gin,
	// having none, answers as if every request were signed in).
	status int
	// applies reports whether the scenario makes sense for l.
	applies func(l library) bool
}

func always(library) bool           { return true }
func withSessions(l library) bool   { return !l.readOnly }
func withServerSide(l library) bool { return !l.readOnly && !l.noMiss }

// ginsessionOnly is for scenarios of ginsession's own API; bare gin stays
// as the floor.
func ginsessionOnly(l library) bool { return l.ginsession || l.bare }

func existingCookie(_ testing.TB, s *subject) string { return s.existing }
func missCookie(_ testing.TB, s *subject) string     { return s.miss }
func junkCookie(_ testing.TB, s *subject) string     { return s.junk }
func noCookie(testing.TB, *subject) string           { return "" }

// returningCookie logs the subject's own user in once and returns that
// session's cookie, which the next login carries.
func returningCookie(tb testing.TB, s *subject) string {
	if s.lib.bare {
		return s.existing
	}
	return s.login(tb, "/login/same", "")
}

// atCapCookie logs the subject's own user in, without a cookie, as many
// times as ginsession lets one user hold sessions
// (ginsession.DefaultMaxSessionsPerUser), so that from then on each such
// login also ends that user's oldest session. The peers, which have no
// cap, just do the same logins.
func atCapCookie(tb testing.TB, s *subject) string {
	for range maxSessionsPerUser {
		if rec := serve(s.h, http.MethodPost, "/login/same", ""); rec.Code >= 300 {
			tb.Fatalf("%s: login: status %d: %s", s.lib.name, rec.Code, rec.Body)
		}
	}
	return ""
}

var scenarios = []scenario{
	// ReadExisting: a valid session cookie; the handler reads one value;
	// nothing changes.
	{name: "ReadExisting", method: http.MethodGet, path: "/read", cookie: existingCookie, status: http.StatusOK, applies: always},
	// WriteOne: the handler sets one key of the session.
	{name: "WriteOne", method: http.MethodPost, path: "/write", cookie: existingCookie, status: http.StatusNoContent, applies: withSessions},
	// WriteOneManager: WriteOne through Manager.UpdateSession with the
	// request's context instead of the Gin helper.
	{name: "WriteOneManager", method: http.MethodPost, path: "/write-manager", cookie: existingCookie, status: http.StatusNoContent, applies: ginsessionOnly},
	// Create: no cookie; the handler logs in a new user each time.
	{name: "Create", method: http.MethodPost, path: "/login", cookie: noCookie, status: http.StatusNoContent, applies: withSessions},
	// CreateReturning: one user logs in again and again, each time
	// carrying the cookie of its previous login.
	{name: "CreateReturning", method: http.MethodPost, path: "/login/same", cookie: returningCookie, chain: true, status: http.StatusNoContent, applies: withSessions},
	// CreateAtCap: one user logs in again and again without a cookie,
	// already holding ginsession's per-user cap of sessions.
	{name: "CreateAtCap", method: http.MethodPost, path: "/login/same", cookie: atCapCookie, status: http.StatusNoContent, applies: withSessions},
	// Miss: a well-formed cookie naming a session the store does not have.
	{name: "Miss", method: http.MethodGet, path: "/read", cookie: missCookie, status: http.StatusUnauthorized, applies: withServerSide},
	// MissSigned: ginsession with a server key; a random token of the
	// keyed form (ID, '.', 12-character MAC) whose MAC does not verify.
	{name: "MissSigned", method: http.MethodGet, path: "/read", cookie: missCookie, keyed: true, status: http.StatusUnauthorized, applies: ginsessionOnly},
	// Junk: a malformed cookie.
	{name: "Junk", method: http.MethodGet, path: "/read", cookie: junkCookie, status: http.StatusUnauthorized, applies: withSessions},
}

// readParallel is ReadExisting under b.RunParallel.
var readParallel = scenario{name: "ReadExistingParallel", method: http.MethodGet, path: "/read", cookie: existingCookie, status: http.StatusOK, applies: always}

// scenarioNamed returns the scenario called name.
func scenarioNamed(name string) scenario {
	for _, sc := range append(scenarios, readParallel) {
		if sc.name == name {
			return sc
		}
	}
	panic("no scenario " + name)
}

func BenchmarkReadExisting(b *testing.B) { benchScenario(b, scenarioNamed("ReadExisting"), false) }
func BenchmarkWriteOne(b *testing.B)     { benchScenario(b, scenarioNamed("WriteOne"), false) }
func BenchmarkWriteOneManager(b *testing.B) {
	benchScenario(b, scenarioNamed("WriteOneManager"), false)
}
func BenchmarkCreate(b *testing.B) { benchScenario(b, scenarioNamed("Create"), false) }
func BenchmarkCreateReturning(b *testing.B) {
	benchScenario(b, scenarioNamed("CreateReturning"), false)
}
func BenchmarkCreateAtCap(b *testing.B)          { benchScenario(b, scenarioNamed("CreateAtCap"), false) }
func BenchmarkMiss(b *testing.B)                 { benchScenario(b, scenarioNamed("Miss"), false) }
func BenchmarkMissSigned(b *testing.B)           { benchScenario(b, scenarioNamed("MissSigned"), false) }
func BenchmarkJunk(b *testing.B)                 { benchScenario(b, scenarioNamed("Junk"), false) }
func BenchmarkReadExistingParallel(b *testing.B) { benchScenario(b, readParallel, true) }

// client sends a scenario's requests to a subject, each a fresh
// *http.Request and recorder (gorilla caches the session inside the
// request, so reusing one would measure nothing), and follows the session
// cookie from response to request when the scenario chains.
type client struct {
	h      http.Handler
	sc     scenario
	cookie string
}

// newClient prepares s for sc and returns a client for it.
func newClient(tb testing.TB, sc scenario, s *subject) *client {
	return &client{h: s.h, sc: sc, cookie: sc.cookie(tb, s)}
}

// do sends one request.
func (c *client) do() *httptest.ResponseRecorder {
	req := httptest.NewRequest(c.sc.method, c.sc.path, nil)
	if c.cookie != "" {
		req.Header.Set("Cookie", c.cookie)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	if c.sc.chain {
		c.cookie = nextCookie(rec, c.cookie)
	}
	return rec
}

// nextCookie returns the first session cookie that rec sets, as a Cookie
// header value, or prev if it sets none.
func nextCookie(rec *httptest.ResponseRecorder, prev string) string {
	for _, v := range rec.Header().Values("Set-Cookie") {
		pair, _, _ := strings.Cut(v, ";")
		if name, value, ok := strings.Cut(pair, "="); ok && name != "" && value != "" {
			return pair
		}
	}
	return prev
}

// check sends c's first request and fails unless it answers sc.status, so
// that a broken setup fails instead of timing an error path.
func (c *client) check(tb testing.TB, l library) {
	tb.Helper()
	if rec := c.do(); !l.bare && rec.Code != c.sc.status {
		tb.Fatalf("%s %s: status %d, want %d: %s", c.sc.name, l.name, rec.Code, c.sc.status, rec.Body)
	}
}

// redisCountRequests is how many requests the counting pass of a Redis
// case sends through the counting proxy.
const redisCountRequests = 200

// benchScenario measures sc for every library it applies to, one
// sub-benchmark per library. Memcached cases also report the server's
// commands per request, from its stats before and after the timed loop.
// Redis cases are timed on a direct connection and then counted: a second
// subject of the same library, whose clients dial the counting proxy,
// serves redisCountRequests requests of the same scenario, and the
// commands its clients sent are reported per request. The proxy's extra
// hop is thus in no timing.
func benchScenario(b *testing.B, sc scenario, parallel bool) {
	for _, l := range libraries {
		if !sc.applies(l) {
			continue
		}
		b.Run("lib="+l.name, func(b *testing.B) {
			s := l.setupEnv(b, env{keyed: sc.keyed})
			c := newClient(b, sc, s)
			c.check(b, l)
			var before mcCounts
			if l.memcached {
				before = s.mc.counts(b)
			}
			b.ReportAllocs()
			if parallel {
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					pc := &client{h: c.h, sc: sc, cookie: c.cookie}
					for pb.Next() {
						pc.do()
					}
				})
			} else {
				for b.Loop() {
					c.do()
				}
			}
			b.StopTimer()
			if l.memcached {
				reportCommands(b, before, s.mc.counts(b))
			}
			if l.redis {
				reportRedisCommands(b, countRedisCommands(b, l, sc, redisCountRequests))
			}
		})
	}
}

// countRedisCommands sets up a subject of l whose Redis clients dial the
// counting proxy, prepares it for sc, sends one checked request and then n
// more, and returns the commands per request those n sent, by name.
func countRedisCommands(tb testing.TB, l library, sc scenario, n int) map[string]float64 {
	tb.Helper()
	s := l.setupEnv(tb, env{redisAddr: sharedRD.addr, keyed: sc.keyed})
	c := newClient(tb, sc, s)
	c.check(tb, l)
	before := sharedRD.proxy.snapshot()
	for range n {
		c.do()
	}
	after := sharedRD.proxy.snapshot()
	per := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			per[k] = float64(d) / float64(n)
		}
	}
	return per
}

// reportRedisCommands adds Redis commands per request to b's results: all
// of them as "redis-all/op" (also when there are none), and each command
// name's as "redis-NAME/op".
func reportRedisCommands(b *testing.B, per map[string]float64) {
	var all float64
	for _, k := range sortedKeys(per) {
		all += per[k]
		b.ReportMetric(per[k], "redis-"+k+"/op")
	}
	b.ReportMetric(all, "redis-all/op")
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
