package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// CookieName is the example's session cookie (ginsession's default).
const CookieName = "__Host-session"

// Op is a kind of request.
type Op uint8

// The requests of the mix, and the checks made after it.
const (
	OpProfile Op = iota // GET /profile
	OpUpdate            // POST /profile/data
	OpLogin             // POST /login
	OpLogout            // POST /logout
	OpCheck             // a final check: GET /profile with a held or retired cookie
	numOps
)

var opNames = [numOps]string{"profile", "update", "login", "logout", "check"}

func (o Op) String() string { return opNames[o] }

// Kind tells how a request ended.
type Kind uint8

// Kinds of outcome.
const (
	KindStatus  Kind = iota // an HTTP status came back
	KindTimeout             // the client's timeout passed first
	KindConn                // the connection failed (refused, reset, closed)
	KindOther               // any other error
	numKinds
)

var kindNames = [numKinds]string{"status", "timeout", "connection error", "other error"}

func (k Kind) String() string { return kindNames[k] }

// Mix is the share of each kind of request, in percent of all requests:
// read the profile, update one key of the data, log in, log out. A client
// that logs out signs in again at its next step, so Login must be at least
// Logout; the rest of the logins (Login - Logout) are made by clients that
// are logged in, and must end the session they replace. The shares must
// sum to 100.
type Mix struct{ Profile, Update, Login, Logout int }

// DefaultMix is 70% profile reads, 20% updates, 5% logins (each after a
// logout) and 5% logouts.
var DefaultMix = Mix{Profile: 70, Update: 20, Login: 5, Logout: 5}

// check reports what is wrong with m, or nil.
func (m Mix) check() error {
	if m.Profile < 0 || m.Update < 0 || m.Login < m.Logout || m.Logout < 0 {
		return fmt.Errorf("load: mix %+v: shares must not be negative, and logins at least as many as logouts", m)
	}
	if s := m.Profile + m.Update + m.Login + m.Logout; s != 100 {
		return fmt.Errorf("load: mix %+v sums to %d%%, not 100%%", m, s)
	}
	return nil
}

// pick draws the next request of a logged-in client. Of every 100
// requests, Logout are sign-ins after a logout; the other 100 - Logout are
// drawn here, so the weights are the shares themselves, with only the
// logins in excess of the logouts.
func (m Mix) pick(r *rand.Rand) Op {
	n := r.IntN(100 - m.Logout)
	switch {
	case n < m.Profile:
		return OpProfile
	case n < m.Profile+m.Update:
		return OpUpdate
	case n < m.Profile+m.Update+m.Logout:
		return OpLogout
	default:
		return OpLogin
	}
}

// Config configures Run.
type Config struct {
	// URL is the application's base URL.
	URL string
	// Clients is the number of concurrent clients (default 64).
	Clients int
	// Duration is how long the clients send the mix (default 30s); the
	// final checks come after it.
	Duration time.Duration
	// Timeout is each request's client timeout (default 5s).
	Timeout time.Duration
	// Mix is the requests' mix (default DefaultMix).
	Mix Mix
	// Keys is how many keys of its data a client updates (default 8).
	Keys int
	// Users prefixes the clients' user IDs, so that runs on one store do
	// not share users (default "load").
	Users string
	// Timeline keeps every request's times and outcome in Result.Events.
	Timeline bool
	// Seed makes each client's sequence of requests repeatable: client i
	// draws from a PCG seeded with (Seed, i).
	Seed uint64
}

func (c *Config) defaults() {
	if c.Clients <= 0 {
		c.Clients = 64
	}
	if c.Duration <= 0 {
		c.Duration = 30 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Mix == (Mix{}) {
		c.Mix = DefaultMix
	}
	if c.Keys <= 0 {
		c.Keys = 8
	}
	if c.Users == "" {
		c.Users = "load"
	}
}

// Event is one request of the mix, for timelines.
type Event struct {
	Start, End time.Duration // since Result.Start
	Op         Op
	Kind       Kind
	Status     int // with KindStatus
}

// OK reports whether the request got a 200.
func (e Event) OK() bool { return e.Kind == KindStatus && e.Status == http.StatusOK }

// Failed reports whether the request failed for a reason other than the
// client's own session: an error or a 5xx status.
func (e Event) Failed() bool { return e.Kind != KindStatus || e.Status >= 500 }

// OpStats counts the outcomes of one kind of request.
type OpStats struct {
	Count    int64
	Status   map[int]int64
	Timeouts int64
	Conn     int64
	Other    int64
}

func (s *OpStats) add(e Event) {
	s.Count++
	switch e.Kind {
	case KindStatus:
		if s.Status == nil {
			s.Status = make(map[int]int64)
		}
		s.Status[e.Status]++
	case KindTimeout:
		s.Timeouts++
	case KindConn:
		s.Conn++
	default:
		s.Other++
	}
}

func (s *OpStats) merge(o *OpStats) {
	s.Count += o.Count
	s.Timeouts += o.Timeouts
	s.Conn += o.Conn
	s.Other += o.Other
	for code, n := range o.Status {
		if s.Status == nil {
			s.Status = make(map[int]int64)
		}
		s.Status[code] += n
	}
}

// Result is what Run measured and checked.
type Result struct {
	// Start is when the clients started; Elapsed is how long the mix ran.
	Start   time.Time
	Elapsed time.Duration
	// Ops counts the outcomes of the mix's requests by kind of request.
	Ops [numOps]OpStats
	// Latency holds every request of the mix; Latency503 those answered
	// 503 Service Unavailable.
	Latency, Latency503 Hist

	// Unexpected counts the mix's answers that were neither what a
	// working application answers nor a 503 or a 401 of a lost session:
	// other statuses, malformed bodies.
	Unexpected int64
	// LostUpdates counts reads (and update answers) that missed a value
	// the client had written and been answered 200 for, or showed one it
	// never wrote. A write that failed may or may not have been applied:
	// both outcomes are accepted until a read tells.
	LostUpdates int64
	// SessionsLost counts 401s for a session the client held: the store
	// lost it (a restart, a failover, an eviction) or it ended by itself.
	SessionsLost int64
	// SessionsGone counts 401s for a session whose logout (or a login
	// over it) had failed, so that it may have ended: not a loss.
	SessionsGone int64
	// Resurrected counts ended sessions that answered: a cookie whose
	// logout (or the login that replaced it) had been answered 200, and
	// that still got a 200 in the final checks.
	Resurrected int64
	// RetiredChecked counts the ended sessions checked; FinalChecked the
	// live ones read back after the mix; CheckErrors the checks that got
	// no clear answer.
	RetiredChecked, FinalChecked, CheckErrors int64
	// Samples describes up to a few failed checks and unexpected answers.
	Samples []string

	// Events holds every request of the mix, with Config.Timeline.
	Events []Event
}

// Requests returns the number of requests of the mix.
func (r *Result) Requests() int64 {
	var n int64
	for op := range OpCheck {
		n += r.Ops[op].Count
	}
	return n
}

// RPS returns the requests of the mix per second.
func (r *Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests()) / r.Elapsed.Seconds()
}

// Failures returns how many requests of the mix failed, by kind of
// failure: "503", "500", ..., "timeout", "connection error", "other error".
func (r *Result) Failures() map[string]int64 {
	f := make(map[string]int64)
	for op := range OpCheck {
		s := &r.Ops[op]
		for code, n := range s.Status {
			if code >= 500 {
				f[strconv.Itoa(code)] += n
			}
		}
		if s.Timeouts > 0 {
			f[KindTimeout.String()] += s.Timeouts
		}
		if s.Conn > 0 {
			f[KindConn.String()] += s.Conn
		}
		if s.Other > 0 {
			f[KindOther.String()] += s.Other
		}
	}
	return f
}

// Statuses returns how many requests of the mix got each status, over all
// kinds of request.
func (r *Result) Statuses() map[int]int64 {
	st := make(map[int]int64)
	for op := range OpCheck {
		for code, n := range r.Ops[op].Status {
			st[code] += n
		}
	}
	return st
}

// maxSamples bounds Result.Samples.
const maxSamples = 8

// maxRetired bounds the ended sessions a client keeps for the final
// checks (a uniform sample beyond it).
const maxRetired = 512

// Run runs cfg.Clients clients against the application for cfg.Duration,
// then makes each check what it holds: its live session reads back every
// value it wrote, and every session it ended answers 401. ctx ends the run
// early. Run returns when every client is done; its error is about the
// run itself (the configuration), never about what was measured.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	if err := cfg.Mix.check(); err != nil {
		return nil, err
	}
	base, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	res := &Result{Start: time.Now()}
	end := res.Start.Add(cfg.Duration)
	clients := make([]*client, cfg.Clients)
	var wg sync.WaitGroup
	var mixDone sync.WaitGroup
	mixDone.Add(cfg.Clients)
	for i := range clients {
		c := newClient(&cfg, base, i, res.Start)
		clients[i] = c
		wg.Go(func() {
			c.mix(ctx, end)
			c.mixEnd = time.Now()
			mixDone.Done()
			// Checks start once every client has stopped, so that
			// none races a request still in flight.
			mixDone.Wait()
			c.finalChecks(ctx)
		})
	}
	wg.Wait()
	for _, c := range clients {
		res.Elapsed = max(res.Elapsed, c.mixEnd.Sub(res.Start))
		res.merge(c)
		c.http.CloseIdleConnections()
	}
	if cfg.Timeline {
		slices.SortFunc(res.Events, func(a, b Event) int { return int(a.Start - b.Start) })
	}
	return res, nil
}

func (r *Result) merge(c *client) {
	for op := range numOps {
		r.Ops[op].merge(&c.ops[op])
	}
	r.Latency.Merge(&c.lat)
	r.Latency503.Merge(&c.lat503)
	r.Unexpected += c.unexpected
	r.LostUpdates += c.lostUpdates
	r.SessionsLost += c.sessionsLost
	r.SessionsGone += c.sessionsGone
	r.Resurrected += c.resurrected
	r.RetiredChecked += c.retiredChecked
	r.FinalChecked += c.finalChecked
	r.CheckErrors += c.checkErrors
	for _, s := range c.samples {
		if len(r.Samples) < maxSamples {
			r.Samples = append(r.Samples, s)
		}
	}
	r.Events = append(r.Events, c.events...)
}

// value is one possible state of a key: absent, or present with v.
type value struct {
	present bool
	v       string
}

// client is one user: its own jar and connection, one session at a time.
// Its fields are its own; Run merges them at the end.
type client struct {
	cfg    *Config
	base   *url.URL
	user   string
	rnd    *rand.Rand
	http   *http.Client
	start  time.Time
	mixEnd time.Time

	loggedIn bool
	// maybeEnded is set when a logout or a login over the session failed:
	// it may have ended, so a 401 for it proves nothing.
	maybeEnded bool
	cookie     string             // the session cookie's value while logged in
	expect     map[string][]value // per key, the values a read may show
	seq        int
	retired    []string // ended sessions' cookies (a sample)
	nRetired   int

	ops                                   [numOps]OpStats
	lat, lat503                           Hist
	unexpected, lostUpdates, sessionsLost int64
	sessionsGone                          int64
	resurrected, retiredChecked           int64
	finalChecked, checkErrors             int64
	samples                               []string
	events                                []Event
}

func newClient(cfg *Config, base *url.URL, i int, start time.Time) *client {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     10 * time.Second,
		DisableCompression:  true,
	}
	return &client{
		cfg:   cfg,
		base:  base,
		user:  cfg.Users + "-" + strconv.Itoa(i),
		rnd:   rand.New(rand.NewPCG(cfg.Seed, uint64(i))),
		start: start,
		http: &http.Client{
			Jar:       jar,
			Transport: tr,
			Timeout:   cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// mix sends requests until end, or until ctx is done. A request under way
// at the end is not cut short: its answer counts, and tells the client
// what it holds.
func (c *client) mix(ctx context.Context, end time.Time) {
	for ctx.Err() == nil && time.Now().Before(end) {
		op := OpLogin
		if c.loggedIn {
			op = c.cfg.Mix.pick(c.rnd)
		}
		switch op {
		case OpProfile:
			c.profile(ctx)
		case OpUpdate:
			c.update(ctx)
		case OpLogin:
			c.login(ctx)
		case OpLogout:
			c.logout(ctx)
		}
	}
}

// answer is a response, read in full, or the error that ended the request.
type answer struct {
	status int
	body   []byte
	kind   Kind
	err    error
}

// do sends one request of the mix and records it, unless ctx ended it
// (the run was interrupted).
func (c *client) do(ctx context.Context, op Op, method, path string, body []byte) (answer, bool) {
	a, start, end := c.send(ctx, method, path, body, nil)
	if a.kind != KindStatus && ctx.Err() != nil {
		return a, false // interrupted: not a measurement
	}
	e := Event{Start: start.Sub(c.start), End: end.Sub(c.start), Op: op, Kind: a.kind, Status: a.status}
	c.ops[op].add(e)
	d := end.Sub(start)
	c.lat.Add(d)
	if a.status == http.StatusServiceUnavailable {
		c.lat503.Add(d)
	}
	if c.cfg.Timeline {
		c.events = append(c.events, e)
	}
	return a, true
}

// send sends one request through the client's jar, or with only the given
// cookie when cookie is not nil.
func (c *client) send(ctx context.Context, method, path string, body []byte, cookie *string) (answer, time.Time, time.Time) {
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, bytes.NewReader(body))
	if err != nil {
		return answer{kind: KindOther, err: err}, time.Now(), time.Now()
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.http
	if cookie != nil {
		hc = &http.Client{Transport: c.http.Transport, Timeout: c.cfg.Timeout, CheckRedirect: c.http.CheckRedirect}
		req.AddCookie(&http.Cookie{Name: CookieName, Value: *cookie})
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return answer{kind: classify(err), err: err}, start, time.Now()
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	end := time.Now()
	if err != nil {
		return answer{kind: classify(err), err: err}, start, end
	}
	return answer{status: resp.StatusCode, body: b}, start, end
}

// classify tells a timeout from a connection failure.
func classify(err error) Kind {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return KindConn
	default:
		return KindOther
	}
}

// jarCookie returns the session cookie the jar holds, or "".
func (c *client) jarCookie() string {
	for _, k := range c.http.Jar.Cookies(c.base) {
		if k.Name == CookieName {
			return k.Value
		}
	}
	return ""
}

// forget drops the session: the jar is emptied, nothing is checked.
func (c *client) forget() {
	c.loggedIn, c.maybeEnded, c.cookie, c.expect = false, false, "", nil
	jar, _ := cookiejar.New(nil)
	c.http.Jar = jar
}

// retire notes a session the application promised to have ended.
func (c *client) retire(cookie string) {
	if cookie == "" {
		return
	}
	c.nRetired++
	if len(c.retired) < maxRetired {
		c.retired = append(c.retired, cookie)
	} else if j := c.rnd.IntN(c.nRetired); j < maxRetired {
		c.retired[j] = cookie
	}
}

func (c *client) sample(format string, args ...any) {
	if len(c.samples) < maxSamples {
		c.samples = append(c.samples, c.user+": "+fmt.Sprintf(format, args...))
	}
}

// lost handles a 401 for the session the client holds.
func (c *client) lost() {
	if c.maybeEnded {
		c.sessionsGone++
	} else {
		c.sessionsLost++
	}
	c.forget()
}

// failed handles an answer that is an error or a status other than 200
// and 401: a 503 or a transport error is what a store failure explains,
// anything else is counted as unexpected.
func (c *client) failed(op Op, a answer) {
	if a.kind == KindStatus && a.status != http.StatusServiceUnavailable {
		c.unexpected++
		c.sample("%s: status %d: %.200s", op, a.status, a.body)
	}
}

func (c *client) login(ctx context.Context) {
	old := c.cookie
	body, _ := json.Marshal(map[string]string{"userId": c.user, "role": "load"})
	a, ok := c.do(ctx, OpLogin, http.MethodPost, "/login", body)
	if !ok {
		return
	}
	if a.kind != KindStatus || a.status != http.StatusOK {
		c.failed(OpLogin, a)
		// As a browser would, the client goes on with what its jar
		// holds: the old session if the answer did not clear its
		// cookie, which may or may not have ended; no session if it
		// did. A new session may exist too: nothing was promised.
		if !c.loggedIn || c.jarCookie() != old {
			c.forget()
		} else {
			c.maybeEnded = true
		}
		return
	}
	if !bytes.Equal(bytes.TrimSpace(a.body), []byte(`{"message":"Logged in successfully"}`)) {
		c.unexpected++
		c.sample("login: body %.200s", a.body)
	}
	cookie := c.jarCookie()
	if cookie == "" || cookie == old {
		c.unexpected++
		c.sample("login: no new session cookie")
		c.forget()
		return
	}
	// A login ends the session the request carried (no fixation).
	c.retire(old)
	c.loggedIn, c.maybeEnded, c.cookie = true, false, cookie
	c.expect = map[string][]value{"role": {{present: true, v: "load"}}}
}

func (c *client) logout(ctx context.Context) {
	cookie := c.cookie
	a, ok := c.do(ctx, OpLogout, http.MethodPost, "/logout", nil)
	if !ok {
		return
	}
	switch {
	case a.kind == KindStatus && a.status == http.StatusOK:
		c.retire(cookie)
		c.forget()
	case a.kind == KindStatus && a.status == http.StatusUnauthorized:
		c.lost()
	default:
		// The browser keeps its cookie, and the session may or may not
		// have ended.
		c.failed(OpLogout, a)
		if c.jarCookie() != cookie {
			c.forget()
		} else {
			c.maybeEnded = true
		}
	}
}

// profileBody is GET /profile's answer.
type profileBody struct {
	UserID string         `json:"userId"`
	Data   map[string]any `json:"data"`
}

func (c *client) profile(ctx context.Context) {
	a, ok := c.do(ctx, OpProfile, http.MethodGet, "/profile", nil)
	if !ok {
		return
	}
	switch {
	case a.kind == KindStatus && a.status == http.StatusOK:
		var p profileBody
		if err := json.Unmarshal(a.body, &p); err != nil || p.UserID != c.user {
			c.unexpected++
			c.sample("profile: body %.200s", a.body)
			return
		}
		c.maybeEnded = false
		c.check("profile", p.Data)
	case a.kind == KindStatus && a.status == http.StatusUnauthorized:
		c.lost()
	default:
		c.failed(OpProfile, a)
	}
}

func (c *client) update(ctx context.Context) {
	key := "k" + strconv.Itoa(c.rnd.IntN(c.cfg.Keys))
	c.seq++
	v := strconv.Itoa(c.seq)
	body, _ := json.Marshal(map[string]string{"key": key, "value": v})
	a, ok := c.do(ctx, OpUpdate, http.MethodPost, "/profile/data", body)
	if !ok {
		// Interrupted: it may have been applied.
		c.expect[key] = addValue(c.expect[key], value{present: true, v: v})
		return
	}
	switch {
	case a.kind == KindStatus && a.status == http.StatusOK:
		var d struct {
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(a.body, &d); err != nil {
			c.unexpected++
			c.sample("update: body %.200s", a.body)
			return
		}
		c.expect[key] = []value{{present: true, v: v}}
		c.check("update", d.Data)
	case a.kind == KindStatus && a.status == http.StatusUnauthorized:
		c.lost()
	default:
		// It may have been applied (a timeout after the write, a WAIT
		// that timed out): both values are right until a read tells.
		c.failed(OpUpdate, a)
		c.expect[key] = addValue(c.expect[key], value{present: true, v: v})
	}
}

func addValue(vs []value, v value) []value {
	if len(vs) == 0 {
		vs = []value{{present: false}}
	}
	if !slices.Contains(vs, v) {
		vs = append(vs, v)
	}
	return vs
}

// check compares data with what the client expects; it counts a lost
// update for each key that differs, then believes what it read.
func (c *client) check(what string, data map[string]any) {
	for key, want := range c.expect {
		got := value{}
		if raw, ok := data[key]; ok {
			s, isString := raw.(string)
			if !isString {
				c.lostUpdates++
				c.sample("%s: key %s holds %T %v", what, key, raw, raw)
				continue
			}
			got = value{present: true, v: s}
		}
		if !slices.Contains(want, got) {
			c.lostUpdates++
			c.sample("%s: key %s reads %+v, want one of %+v", what, key, got, want)
		}
		if got.present {
			c.expect[key] = []value{got}
		} else {
			delete(c.expect, key)
		}
	}
	for key, raw := range data {
		if _, ok := c.expect[key]; !ok {
			c.lostUpdates++
			c.sample("%s: key %s = %v was never written", what, key, raw)
		}
	}
}

// finalChecks reads back the live session and every ended one.
func (c *client) finalChecks(ctx context.Context) {
	if c.loggedIn {
		c.finalChecked++
		a := c.checkRequest(ctx, nil)
		switch {
		case a.kind == KindStatus && a.status == http.StatusOK:
			var p profileBody
			if err := json.Unmarshal(a.body, &p); err != nil || p.UserID != c.user {
				c.checkErrors++
				c.sample("final read: body %.200s", a.body)
				break
			}
			c.check("final read", p.Data)
		case a.kind == KindStatus && a.status == http.StatusUnauthorized:
			if c.maybeEnded {
				c.sessionsGone++
			} else {
				c.sessionsLost++
			}
		default:
			c.checkErrors++
			c.sample("final read: %v %d %.100s", a.kind, a.status, a.body)
		}
	}
	for _, cookie := range c.retired {
		c.retiredChecked++
		a := c.checkRequest(ctx, &cookie)
		switch {
		case a.kind == KindStatus && a.status == http.StatusUnauthorized:
		case a.kind == KindStatus && a.status == http.StatusOK:
			c.resurrected++
			c.sample("an ended session answers: %.200s", a.body)
		default:
			c.checkErrors++
			c.sample("retired check: %v %d %.100s", a.kind, a.status, a.body)
		}
	}
}

// checkRequest reads the profile through the jar (cookie nil) or with
// one cookie, retrying a few times when the store fails (a fault run's
// store may still be recovering).
func (c *client) checkRequest(ctx context.Context, cookie *string) answer {
	var a answer
	for attempt := range 5 {
		if attempt > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		var start, end time.Time
		a, start, end = c.send(ctx, http.MethodGet, "/profile", nil, cookie)
		c.ops[OpCheck].add(Event{Start: start.Sub(c.start), End: end.Sub(c.start), Op: OpCheck, Kind: a.kind, Status: a.status})
		if a.kind == KindStatus && a.status < 500 {
			return a
		}
	}
	return a
}
