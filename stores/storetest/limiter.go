package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/internal/limitertest"
	"github.com/securestack/ginsession/stores"
)

// LimiterHarness is a fresh admission history under test and the two
// backends that share it.
type LimiterHarness struct {
	// Instances are two backends over one history, as two application
	// instances configured alike see it on one server: what either
	// records, the other decides on. A backend that is not meant to be
	// shared may give the same value twice. The history must be empty:
	// the suite uses keys of its own, a few fixed ones among them (the
	// empty key too), so give each harness a prefix of its own.
	Instances [2]stores.LimiterBackend

	// Exact declares that the backend refuses nothing early: it admits an
	// event exactly when fewer than limit recorded admissions lie in
	// (c-window, c], c being the instant it decides at, so that every
	// Decision is the ideal sliding log's, to the nanosecond, a refusal's
	// RetryAfter included. Without it, the suite checks only what the
	// contract promises of every backend (see RunLimiterBackend).
	Exact bool
}

// MakeLimiterBackend returns a LimiterHarness with a fresh history for one
// subtest, reporting to that subtest's t. RunLimiterBackend calls it once
// per subtest.
type MakeLimiterBackend func(t *testing.T) LimiterHarness

// RunLimiterBackend runs the conformance suite of stores.LimiterBackend.
// newHarness is called once per subtest, with that subtest's t, and must
// return a LimiterHarness with a fresh history, as in the package
// documentation's example.
//
// The suite checks Admit against a reference model, the ideal sliding log
// on the recorded admissions, in which an admission is recorded at
// max(now, the latest admission recorded for the key), as the contract
// requires. It calls Admit at instants counted from one a second after
// the real time, never sleeps, and uses windows of ten minutes and more,
// so that the real-time lifetime of a backend's items outlasts every
// subtest.
//
// The subtests check: step tables across both instances (Steps: the
// window sliding, an admission leaving at exactly one window, ties, the
// clock stepping back and an admission recorded at the later instant,
// nanosecond boundaries, a limit of one); seeded random sequences, with
// ties, bursts, gaps and exact window boundaries (Random) and with steps
// back of up to three windows (ClockBackwards), every decision checked
// against the model and, after some refusals, an event at now+RetryAfter
// admitted (and, for an exact backend, one a nanosecond earlier refused);
// a history of 150 admissions (ManyAdmissions); keys independent of each
// other, among them the empty key, NUL bytes, spaces, newlines, 1000
// bytes, invalid UTF-8, a Redis hash tag, and keys that differ in their
// last byte only or by case (Keys); policies differing by key on one
// backend (Policies); a canceled or expired context reported as its error,
// with nothing recorded, also on a full key (ContextDone); a limit or
// window that is zero or negative refused with an error, with nothing
// recorded (InvalidPolicy); and 16 goroutines on one key across both
// instances within one window, never more than limit admitted and, for an
// exact backend, exactly limit (TwoInstancesOneWindow), and 12 goroutines
// on two keys over 24 windows of a shared fake clock, some stepping back,
// with no interval of length window holding more than limit admissions
// and, for an exact backend, every refusal accounted for by limit
// admissions (TwoInstancesSliding).
//
// Every decision is checked field by field: for an exact backend, equal to
// the model's; otherwise an admission has a zero RetryAfter, a Remaining
// between zero and the model's and a ResetAfter past the instant decided
// at, and a refusal a zero Remaining and a RetryAfter past that instant,
// no shorter than the model's, and equal to its ResetAfter.
//
// In the concurrent subtests an Admit may fail with stores.ErrConflict,
// as the contract allows; its outcome is then unknown, and the suite
// counts it as possibly recorded. Their order of recording is not known
// either: the suite bounds each admission's recorded time by its now and
// the latest now handed out when it returned, and reports only what no
// order can explain. Like Run, the suite has no false positives: every
// failure is a broken contract point. It runs many goroutines on one key
// and is meant to be run with -race.
func RunLimiterBackend(t *testing.T, newHarness MakeLimiterBackend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h *limHarness)
	}{
		{"Steps", testLimSteps},
		{"Random", testLimRandom},
		{"ClockBackwards", testLimClockBackwards},
		{"ManyAdmissions", testLimManyAdmissions},
		{"Keys", testLimKeys},
		{"Policies", testLimPolicies},
		{"ContextDone", testLimContextDone},
		{"InvalidPolicy", testLimInvalidPolicy},
		{"TwoInstancesOneWindow", testLimOneWindow},
		{"TwoInstancesSliding", testLimSliding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			for i, b := range h.Instances {
				require.NotNil(t, b, "storetest: LimiterHarness.Instances[%d] is nil", i)
			}
			// A second after the real time, at the last nanosecond of a
			// second, so that adding nanoseconds carries into seconds.
			t0 := time.Now().Truncate(time.Second).Add(2*time.Second - time.Nanosecond)
			tt.fn(t, &limHarness{LimiterHarness: h, t0: t0})
		})
	}
}

// limHarness wraps a LimiterHarness with the instant its subtest counts
// from.
type limHarness struct {
	LimiterHarness
	t0 time.Time
}

// limModel is the reference model of one key: the ideal sliding log on its
// recorded admission times.
type limModel struct {
	limit  int
	window int64
	times  []int64 // recorded admissions, Unix nanoseconds, non-decreasing
}

// decide returns the decision of the ideal sliding log for an event at
// now, and the instant c it is decided, and would be recorded, at: now, or
// the latest recorded admission if that is later. It records nothing.
func (m *limModel) decide(now int64) (stores.Decision, int64) {
	c := now
	if n := len(m.times); n > 0 {
		c = max(c, m.times[n-1])
	}
	in := m.inWindow(c)
	if len(in) >= m.limit {
		wait := time.Duration(in[len(in)-m.limit] + m.window - now)
		return stores.Decision{RetryAfter: wait, ResetAfter: wait}, c
	}
	oldest := c
	if len(in) > 0 {
		oldest = in[0]
	}
	return stores.Decision{
		Allowed:    true,
		Remaining:  m.limit - len(in) - 1,
		ResetAfter: time.Duration(oldest + m.window - now),
	}, c
}

// inWindow returns the recorded admissions in (c-window, c], for c at or
// after the latest.
func (m *limModel) inWindow(c int64) []int64 {
	first, _ := slices.BinarySearch(m.times, c-m.window+1)
	return m.times[first:]
}

// limSeq makes Admit calls one after another and checks each decision
// against the model of its key.
type limSeq struct {
	h      *limHarness
	t      *testing.T
	models map[string]*limModel
}

func (h *limHarness) seq(t *testing.T) *limSeq {
	return &limSeq{h: h, t: t, models: map[string]*limModel{}}
}

// admit calls Admit on instance inst for an event at now, checks the
// decision, updates the model and returns the decision. A key must keep
// its policy.
func (s *limSeq) admit(inst int, key string, limit int, window time.Duration, now time.Time) stores.Decision {
	t := s.t
	t.Helper()
	m := s.models[key]
	if m == nil {
		m = &limModel{limit: limit, window: int64(window)}
		s.models[key] = m
	}
	require.True(t, m.limit == limit && m.window == int64(window), "storetest: key %q used with two policies", key)
	want, c := m.decide(now.UnixNano())
	d, err := s.h.Instances[inst].Admit(context.Background(), key, limit, window, now)
	msg := fmt.Sprintf("instance %d, key %q, limit %d, window %v, at %s (decided at %s), after %d admissions",
		inst, key, limit, window, rel(now.Sub(s.h.t0)), rel(time.Duration(c-s.h.t0.UnixNano())), len(m.times))
	require.NoError(t, err, msg)
	if s.h.Exact {
		if !assert.Equal(t, want, d, msg) && d.Allowed != want.Allowed {
			t.FailNow()
		}
	} else {
		checkBounds(t, want, d, time.Duration(c-now.UnixNano()), msg)
	}
	if d.Allowed {
		m.times = append(m.times, c)
	}
	return d
}

// checkBounds checks a decision of a backend that may refuse early against
// the model's decision want, the backend having decided at now+late.
func checkBounds(t *testing.T, want, d stores.Decision, late time.Duration, msg string) {
	t.Helper()
	if d.Allowed {
		if !want.Allowed {
			require.Fail(t, "more than limit admissions in one window", "admitted, where the window already holds limit admissions: %s", msg)
		}
		assert.Zero(t, d.RetryAfter, "RetryAfter of an admission: %s", msg)
		assert.GreaterOrEqual(t, d.Remaining, 0, "Remaining: %s", msg)
		assert.LessOrEqual(t, d.Remaining, want.Remaining, "Remaining above the sliding log's: %s", msg)
		assert.Greater(t, d.ResetAfter, late, "ResetAfter, which the admission itself bounds: %s", msg)
		return
	}
	assert.Zero(t, d.Remaining, "Remaining of a refusal: %s", msg)
	assert.Greater(t, d.RetryAfter, late, "RetryAfter, past the instant decided at: %s", msg)
	assert.Equal(t, d.RetryAfter, d.ResetAfter, "ResetAfter of a refusal: %s", msg)
	if !want.Allowed {
		assert.GreaterOrEqual(t, d.RetryAfter, want.RetryAfter, "RetryAfter shorter than the sliding log's: %s", msg)
	}
}

// probe checks the RetryAfter of a refusal d of an event at now: an event
// at now+RetryAfter is admitted and, for an exact backend, one a
// nanosecond earlier is not. inst picks the instances.
func (s *limSeq) probe(inst int, key string, now time.Time, d stores.Decision) {
	t := s.t
	t.Helper()
	m := s.models[key]
	at := now.Add(d.RetryAfter)
	if s.h.Exact {
		s.admit(inst, key, m.limit, time.Duration(m.window), at.Add(-time.Nanosecond))
	}
	next := s.admit(1-inst, key, m.limit, time.Duration(m.window), at)
	require.True(t, next.Allowed, "refused at %s, RetryAfter %v after a refusal at %s", rel(at.Sub(s.h.t0)), d.RetryAfter, rel(now.Sub(s.h.t0)))
}

// limStep is one event of a steps table and its decision.
type limStep struct {
	at   time.Duration // after t0
	inst int
	want stores.Decision
}

func allow(remaining int, resetAfter time.Duration) stores.Decision {
	return stores.Decision{Allowed: true, Remaining: remaining, ResetAfter: resetAfter}
}

func refuse(retryAfter time.Duration) stores.Decision {
	return stores.Decision{RetryAfter: retryAfter, ResetAfter: retryAfter}
}

func testLimSteps(t *testing.T, h *limHarness) {
	const m, ns = time.Minute, time.Nanosecond
	const w = time.Hour + ns // for the nanosecond table
	tests := []struct {
		name   string
		limit  int
		window time.Duration
		steps  []limStep
	}{
		{
			name: "Ring", limit: 3, window: 10 * m,
			steps: []limStep{
				{0, 0, allow(2, 10*m)},
				{1 * m, 1, allow(1, 9*m)},
				{2 * m, 0, allow(0, 8*m)},
				{3 * m, 1, refuse(7 * m)},
				{10*m - ns, 0, refuse(ns)},
				// The admission at 0 leaves the window at 10m exactly.
				{10 * m, 1, allow(0, m)},
				{10*m + 30*time.Second, 0, refuse(30 * time.Second)},
				{11 * m, 0, allow(0, m)},
				{11 * m, 1, refuse(m)},
				// Everything left the window.
				{25 * m, 1, allow(2, 10*m)},
			},
		},
		{
			name: "StepBack", limit: 2, window: 10 * m,
			steps: []limStep{
				{0, 0, allow(1, 10*m)},
				{1 * m, 1, allow(0, 9*m)},
				{2 * m, 0, refuse(8 * m)},
				{10 * m, 1, allow(0, m)},
				// The clock steps back: the event is decided at 10m,
				// where (0, 10m] holds two admissions.
				{5 * m, 0, refuse(6 * m)},
				{11 * m, 1, allow(0, 9*m)},
				{8 * m, 0, refuse(12 * m)},
				{25 * m, 1, allow(1, 10*m)},
				// Admitted at 15m, recorded at 25m: ResetAfter counts
				// from now.
				{15 * m, 0, allow(0, 20*m)},
				{34 * m, 1, refuse(m)},
				// Both admissions recorded at 25m leave together.
				{35 * m, 0, allow(1, 10*m)},
				// Far back: recorded at 35m.
				{0, 1, allow(0, 45*m)},
				{1 * m, 0, refuse(44 * m)},
			},
		},
		{
			name: "Ties", limit: 3, window: 10 * m,
			steps: []limStep{
				{0, 0, allow(2, 10*m)},
				{0, 1, allow(1, 10*m)},
				{0, 0, allow(0, 10*m)},
				{0, 1, refuse(10 * m)},
				{10*m - ns, 0, refuse(ns)},
				{10 * m, 1, allow(2, 10*m)},
			},
		},
		{
			name: "Nanoseconds", limit: 1, window: w,
			steps: []limStep{
				{0, 0, allow(0, w)},
				{time.Hour, 1, refuse(ns)},
				{w, 0, allow(0, w)},
				{w + time.Hour - ns, 1, refuse(2 * ns)},
				{2*w - ns, 0, refuse(ns)},
				{2 * w, 1, allow(0, w)},
			},
		},
		{
			name: "LimitOne", limit: 1, window: time.Hour,
			steps: []limStep{
				{0, 0, allow(0, time.Hour)},
				{59 * m, 1, refuse(m)},
				{60 * m, 0, allow(0, time.Hour)},
				{60 * m, 1, refuse(time.Hour)},
				{3 * time.Hour, 1, allow(0, time.Hour)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := h.seq(t)
			for i, st := range tt.steps {
				d := s.admit(st.inst, tt.name, tt.limit, tt.window, h.t0.Add(st.at))
				if h.Exact {
					assert.Equal(t, st.want, d, "step %d at %s", i, rel(st.at))
				}
			}
		})
	}
}

// runArrivals admits the arrivals on one key of a fresh sequence, on
// random instances, and probes the RetryAfter of one refusal in three.
func runArrivals(t *testing.T, h *limHarness, key string, rng *rand.Rand, limit int, window time.Duration, arrivals []int64) {
	t.Helper()
	s := h.seq(t)
	for _, off := range arrivals {
		now := h.t0.Add(time.Duration(off))
		inst := rng.IntN(2)
		d := s.admit(inst, key, limit, window, now)
		if !d.Allowed && rng.IntN(3) == 0 {
			s.probe(inst, key, now, d)
		}
	}
}

func testLimRandom(t *testing.T, h *limHarness) {
	for c, limit := range []int{1, 2, 3, 5, 8, 20} {
		t.Run(fmt.Sprintf("limit%d", limit), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			window := time.Hour + time.Duration(c)*7
			arrivals := limitertest.Arrivals(rng, 250, limit, int64(window), c%2 == 0, false)
			runArrivals(t, h, t.Name(), rng, limit, window, arrivals)
		})
	}
}

func testLimClockBackwards(t *testing.T, h *limHarness) {
	for c, limit := range []int{1, 3, 6} {
		t.Run(fmt.Sprintf("limit%d", limit), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(c), 2))
			window := time.Hour
			arrivals := limitertest.Arrivals(rng, 300, limit, int64(window), c == 1, true)
			runArrivals(t, h, t.Name(), rng, limit, window, arrivals)
		})
	}
}

func testLimManyAdmissions(t *testing.T, h *limHarness) {
	const limit, window = 150, time.Hour
	s := h.seq(t)
	// 150 admissions in threes, a second apart, on alternating instances,
	// and a refusal.
	for i := range limit + 1 {
		s.admit(i%2, "many", limit, window, h.t0.Add(time.Duration(i/3)*time.Second))
	}
	// From one window on, four events a second, as three admissions a
	// second leave: the first three together, at exactly one window.
	for i := range 2 * limit {
		s.admit(i%2, "many", limit, window, h.t0.Add(window+time.Duration(i)*time.Second/4))
	}
}

func testLimKeys(t *testing.T, h *limHarness) {
	// Keys that differ in their last byte only, or by case, or are
	// prefixes of each other.
	keys := []string{
		"", "\x00", "a", "A", "a ", "a\x00", "ab", "{a}",
		"user:1", "user:2", "user:10", "user@example.com", "with space", "new\nline",
		strings.Repeat("x", 1000), strings.Repeat("x", 999) + "y", strings.Repeat("x", 250),
		"ünïcode ☃", "\xff\xfe",
	}
	s := h.seq(t)
	for i, k := range keys {
		d := s.admit(i%2, k, 1, time.Hour, h.t0)
		require.True(t, d.Allowed, "the first event of key %q, after %d other keys filled", k, i)
	}
	for i, k := range keys {
		d := s.admit(1-i%2, k, 1, time.Hour, h.t0.Add(time.Minute))
		require.False(t, d.Allowed, "key %q is full", k)
	}
}

func testLimPolicies(t *testing.T, h *limHarness) {
	// One backend serves several limiters, whose keys differ.
	policies := []struct {
		key    string
		limit  int
		window time.Duration
	}{
		{"login:alice", 1, 10 * time.Minute},
		{"signup:203.0.113.7", 3, 20 * time.Minute},
		{"api:alice", 5, time.Hour},
	}
	s := h.seq(t)
	for i := range 90 {
		p := policies[i%len(policies)]
		s.admit(i%2, p.key, p.limit, p.window, h.t0.Add(time.Duration(i)*time.Minute))
	}
}

func testLimContextDone(t *testing.T, h *limHarness) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	done := []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"canceled", canceled, context.Canceled},
		{"expired", expired, context.DeadlineExceeded},
	}
	const key, limit, window = "alice", 2, time.Hour
	admitDone := func(at time.Duration, what string) {
		t.Helper()
		for i, b := range h.Instances {
			for _, c := range done {
				_, err := b.Admit(c.ctx, key, limit, window, h.t0.Add(at))
				require.ErrorIs(t, err, c.want, "instance %d, %s context, %s", i, c.name, what)
			}
		}
	}
	s := h.seq(t)
	admitDone(0, "new key")
	// Nothing was recorded, or the window would be full by the second
	// admission.
	s.admit(0, key, limit, window, h.t0)
	require.True(t, s.admit(1, key, limit, window, h.t0.Add(time.Second)).Allowed, "after Admits with a done context")
	// On a full key, the context's error too, not a refusal; nothing
	// recorded, as the model checks after the window.
	admitDone(time.Minute, "full key")
	s.admit(0, key, limit, window, h.t0.Add(window+time.Second))
}

func testLimInvalidPolicy(t *testing.T, h *limHarness) {
	policies := []struct {
		limit  int
		window time.Duration
	}{
		{0, time.Hour},
		{-1, time.Hour},
		{math.MinInt, time.Hour},
		{1, 0},
		{1, -time.Nanosecond},
		{1, math.MinInt64},
		{0, 0},
	}
	const key = "alice"
	for i, b := range h.Instances {
		for _, p := range policies {
			_, err := b.Admit(context.Background(), key, p.limit, p.window, h.t0)
			assert.Error(t, err, "instance %d, limit %d, window %v", i, p.limit, p.window)
		}
	}
	// Nothing was recorded.
	s := h.seq(t)
	require.True(t, s.admit(0, key, 1, time.Hour, h.t0).Allowed, "after Admits with invalid policies")
}

// limCall is one Admit call of a concurrent subtest.
type limCall struct {
	inst int
	key  string
	// now is the call's now; hi the latest now handed out to any call
	// when it returned, which bounds the instant it was decided at.
	now, hi int64
	d       stores.Decision
	err     error
}

// failures collects the failures of a concurrent subtest, to report the
// first few.
type failures struct{ msgs []string }

func (f *failures) addf(format string, args ...any) {
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

func (f *failures) report(t *testing.T) {
	t.Helper()
	const most = 10
	for i, m := range f.msgs {
		if i == most {
			t.Errorf("and %d more", len(f.msgs)-most)
			break
		}
		t.Error(m)
	}
}

// sortOut splits calls into admissions, refusals and calls of unknown
// outcome (errors), reporting errors other than stores.ErrConflict.
func sortOut(calls []limCall, f *failures) (admitted, refused, unknown []limCall) {
	for _, c := range calls {
		switch {
		case c.err != nil:
			if !errors.Is(c.err, stores.ErrConflict) {
				f.addf("instance %d, key %q: %v", c.inst, c.key, c.err)
			}
			unknown = append(unknown, c)
		case c.d.Allowed:
			admitted = append(admitted, c)
		default:
			refused = append(refused, c)
		}
	}
	return admitted, refused, unknown
}

// checkCall checks a concurrent call's decision against the bounds that
// hold whatever the order of recording: the instant decided at lies in
// [now, hi], and so, for an exact backend, does the oldest admission that
// RetryAfter or ResetAfter counts from, less one window.
func (h *limHarness) checkCall(f *failures, c limCall, limit int, window time.Duration) {
	d := c.d
	most := time.Duration(c.hi-c.now) + window
	msg := fmt.Sprintf("instance %d, key %q, at %s: %+v", c.inst, c.key, rel(time.Duration(c.now-h.t0.UnixNano())), d)
	if d.Allowed {
		switch {
		case d.RetryAfter != 0:
			f.addf("RetryAfter of an admission is not zero: %s", msg)
		case d.Remaining < 0 || d.Remaining >= limit:
			f.addf("Remaining of an admission not in [0, %d): %s", limit, msg)
		case d.ResetAfter <= 0:
			f.addf("ResetAfter of an admission is not positive: %s", msg)
		case h.Exact && d.ResetAfter > most:
			f.addf("ResetAfter of an admission over %v: %s", most, msg)
		}
		return
	}
	switch {
	case d.Remaining != 0:
		f.addf("Remaining of a refusal is not zero: %s", msg)
	case d.RetryAfter <= 0:
		f.addf("RetryAfter of a refusal is not positive: %s", msg)
	case d.ResetAfter != d.RetryAfter:
		f.addf("ResetAfter of a refusal differs from RetryAfter: %s", msg)
	case h.Exact && d.RetryAfter > most:
		f.addf("RetryAfter of a refusal over %v: %s", most, msg)
	}
}

func testLimOneWindow(t *testing.T, h *limHarness) {
	const (
		limit      = 20
		window     = time.Hour
		goroutines = 8 // per instance
		calls      = 15
		key        = "203.0.113.7"
	)
	// Every call's now lies within 240ms, far less than the window.
	first := h.t0.UnixNano()
	last := h.t0.Add((2*goroutines*calls - 1) * time.Millisecond).UnixNano()
	results := make([][]limCall, 2*goroutines)
	var wg sync.WaitGroup
	for i, b := range h.Instances {
		for g := range goroutines {
			slot := i*goroutines + g
			wg.Go(func() {
				for c := range calls {
					now := h.t0.Add(time.Duration(slot*calls+c) * time.Millisecond)
					d, err := b.Admit(context.Background(), key, limit, window, now)
					results[slot] = append(results[slot], limCall{inst: i, key: key, now: now.UnixNano(), hi: last, d: d, err: err})
				}
			})
		}
	}
	wg.Wait()

	var f failures
	admitted, refused, unknown := sortOut(slices.Concat(results...), &f)
	for _, c := range slices.Concat(admitted, refused) {
		h.checkCall(&f, c, limit, window)
		if h.Exact {
			// The oldest admission in the window was recorded within
			// [first, last].
			d := c.d.ResetAfter
			if least := time.Duration(first-c.now) + window; d < least {
				f.addf("instance %d at %s: ResetAfter %v, less than %v", c.inst, rel(time.Duration(c.now-first)), d, least)
			}
		}
	}
	f.report(t)
	t.Logf("%d admitted, %d refused, %d of unknown outcome", len(admitted), len(refused), len(unknown))
	// All admissions are recorded within [first, last], in one window.
	require.LessOrEqual(t, len(admitted), limit, "admitted in one window")
	if !h.Exact {
		return
	}
	if len(refused) > 0 {
		require.GreaterOrEqual(t, len(admitted)+len(unknown), limit, "refusals before limit admissions")
	}
	// Each admission counts one more in the window.
	remaining := make([]int, 0, len(admitted))
	for _, c := range admitted {
		remaining = append(remaining, c.d.Remaining)
	}
	slices.Sort(remaining)
	require.Equal(t, len(remaining), len(slices.Compact(slices.Clone(remaining))), "two admissions with the same Remaining: %v", remaining)
	if len(unknown) == 0 {
		want := make([]int, 0, len(admitted))
		for r := limit - len(admitted); r < limit; r++ {
			want = append(want, r)
		}
		require.Equal(t, want, remaining, "Remaining of the admissions")
	}
}

func testLimSliding(t *testing.T, h *limHarness) {
	const (
		limit      = 10
		window     = time.Hour
		step       = window / 100 // fake time per call: about 5 calls per admission and key
		goroutines = 6            // per instance
		calls      = 200
	)
	keys := [2]string{"alice", "bob"}
	instant := func(tick int64) int64 { return h.t0.Add(time.Duration(tick) * step).UnixNano() }
	var tick atomic.Int64
	results := make([][]limCall, 2*goroutines)
	var wg sync.WaitGroup
	for i, b := range h.Instances {
		for g := range goroutines {
			slot := i*goroutines + g
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(slot), 3))
				key := keys[g%2]
				for range calls {
					now := instant(tick.Add(1))
					if rng.IntN(8) == 0 { // a clock behind
						now -= rng.Int64N(int64(window))
					}
					d, err := b.Admit(context.Background(), key, limit, window, time.Unix(0, now))
					hi := instant(tick.Load())
					results[slot] = append(results[slot], limCall{inst: i, key: key, now: now, hi: hi, d: d, err: err})
				}
			})
		}
	}
	wg.Wait()

	var f failures
	all := slices.Concat(results...)
	for _, key := range keys {
		calls := slices.DeleteFunc(slices.Clone(all), func(c limCall) bool { return c.key != key })
		admitted, refused, unknown := sortOut(calls, &f)
		for _, c := range slices.Concat(admitted, refused) {
			h.checkCall(&f, c, limit, window)
		}
		checkGuarantee(&f, key, h.t0, admitted, limit, int64(window))
		if h.Exact {
			checkRefusals(&f, key, h.t0, refused, slices.Concat(admitted, unknown), limit, int64(window))
		}
		t.Logf("%s: %d admitted, %d refused, %d of unknown outcome", key, len(admitted), len(refused), len(unknown))
	}
	f.report(t)
}

// checkGuarantee reports limit+1 admissions that every order of recording
// consistent with the calls puts within less than window: admissions
// recorded within [lo, hi], hi-lo < window. An admission is recorded in
// [now, hi].
func checkGuarantee(f *failures, key string, t0 time.Time, admitted []limCall, limit int, window int64) {
	admitted = slices.SortedFunc(slices.Values(admitted), func(a, b limCall) int { return cmp.Compare(a.now, b.now) })
	for i, a := range admitted {
		var his []int64
		for _, b := range admitted[i:] {
			if b.now-a.now >= window {
				break
			}
			his = append(his, b.hi)
		}
		if len(his) <= limit {
			continue
		}
		slices.Sort(his)
		if his[limit]-a.now < window {
			f.addf("key %q: %d admissions recorded within [%s, %s], less than the window %v",
				key, limit+1, rel(time.Duration(a.now-t0.UnixNano())), rel(time.Duration(his[limit]-t0.UnixNano())), time.Duration(window))
			return
		}
	}
}

// checkRefusals reports refusals by an exact backend that fewer than
// limit admissions can account for: a refusal decided at c in [now, hi]
// needs limit admissions recorded in (c-window, c], which lie in
// (now-window, hi]. possible holds the admissions and the calls of unknown
// outcome.
func checkRefusals(f *failures, key string, t0 time.Time, refused, possible []limCall, limit int, window int64) {
	for _, r := range refused {
		n := 0
		for _, a := range possible {
			if a.hi > r.now-window && a.now <= r.hi {
				n++
			}
		}
		if n < limit {
			f.addf("key %q: refused at %s (decided by %s), but at most %d admissions can lie in its window",
				key, rel(time.Duration(r.now-t0.UnixNano())), rel(time.Duration(r.hi-t0.UnixNano())), n)
		}
	}
}

// rel formats an offset from the subtest's t0.
func rel(d time.Duration) string {
	if d < 0 {
		return "t0" + d.String()
	}
	return "t0+" + d.String()
}
