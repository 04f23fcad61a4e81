package limiter

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/stores"
)

// t0 is the fixed instant the tests count from.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// defaultMaxKeys is ginsession.DefaultLimiterMaxKeys, the key cap of a
// Limiter without WithMaxKeys.
const defaultMaxKeys = 1 << 20

// newTable returns a Table with the default key cap, failing closed.
func newTable(limit int, window time.Duration) *Table {
	return New(limit, window, defaultMaxKeys, false)
}

// step is one event of a steps table and the decision expected for it.
type step struct {
	at         time.Duration // after t0
	key        string        // "k" if empty
	allowed    bool
	remaining  int
	retryAfter time.Duration
	resetAfter time.Duration
}

// runSteps reserves each step's event on a fresh Table and checks its
// decision.
func runSteps(t *testing.T, limit int, window time.Duration, steps []step) {
	t.Helper()
	tb := newTable(limit, window)
	for i, st := range steps {
		key := st.key
		if key == "" {
			key = "k"
		}
		d := tb.Reserve(key, t0.Add(st.at))
		want := stores.Decision{Allowed: st.allowed, Remaining: st.remaining, RetryAfter: st.retryAfter, ResetAfter: st.resetAfter}
		assert.Equal(t, want, d, "step %d at %s", i, st.at)
	}
}

// idealLog is the brute-force reference: the ideal sliding log, which
// admits an event at t when fewer than limit admissions lie in
// (t-window, t].
type idealLog struct {
	limit  int
	window int64
	times  []int64
}

// count returns the admissions in (from, to].
func (r *idealLog) count(from, to int64) int {
	n := 0
	for _, x := range r.times {
		if x > from && x <= to {
			n++
		}
	}
	return n
}

// allow decides at t, which must not precede earlier calls, and returns
// the decision and, for a refusal, the exact wait.
func (r *idealLog) allow(t int64) (bool, int64) {
	if r.count(t-r.window, t) < r.limit {
		r.times = append(r.times, t)
		return true, 0
	}
	return false, r.times[len(r.times)-r.limit] + r.window - t
}

// checkRecorded fails unless every interval of length window holds at most
// limit of the sorted times.
func checkRecorded(t *testing.T, times []int64, limit int, window int64, msg string) {
	t.Helper()
	require.True(t, slices.IsSorted(times), "%s: recorded times out of order", msg)
	for i := 0; i+limit < len(times); i++ {
		if times[i+limit]-times[i] < window {
			require.Failf(t, "guarantee broken", "%s: %d admissions within %v starting at %d", msg, limit+1, time.Duration(times[i+limit]-times[i]), times[i])
		}
	}
}
