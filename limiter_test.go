package ginsession

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/stores"
)

// limT0 is the fixed instant the limiter tests count from.
var limT0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func TestLimiterSteps(t *testing.T) {
	const s = time.Second
	type step struct {
		at         time.Duration // after limT0
		key        string
		allowed    bool
		remaining  int
		retryAfter time.Duration
		resetAfter time.Duration
	}
	tests := []struct {
		name   string
		limit  int
		window time.Duration
		steps  []step
	}{
		{
			name: "exact ring", limit: 3, window: 10 * s,
			steps: []step{
				{at: 0, allowed: true, remaining: 2, resetAfter: 10 * s},
				{at: 1 * s, allowed: true, remaining: 1, resetAfter: 9 * s},
				{at: 2 * s, allowed: true, remaining: 0, resetAfter: 8 * s},
				{at: 3 * s, retryAfter: 7 * s, resetAfter: 7 * s},
				{at: 9*s + 999*time.Millisecond, retryAfter: time.Millisecond, resetAfter: time.Millisecond},
				// The admission at 0 leaves the window (10s-0s >= window).
				{at: 10 * s, allowed: true, remaining: 0, resetAfter: 1 * s},
				{at: 10*s + 500*time.Millisecond, retryAfter: 500 * time.Millisecond, resetAfter: 500 * time.Millisecond},
				{at: 11 * s, allowed: true, remaining: 0, resetAfter: 1 * s},
				{at: 11 * s, retryAfter: s, resetAfter: s},
				{at: 11 * s, key: "other", allowed: true, remaining: 2, resetAfter: 10 * s},
				// Everything left the window.
				{at: 60 * s, allowed: true, remaining: 2, resetAfter: 10 * s},
			},
		},
		{
			name: "limit one", limit: 1, window: time.Minute,
			steps: []step{
				{at: 0, allowed: true, resetAfter: time.Minute},
				{at: 59 * s, retryAfter: 1 * s, resetAfter: 1 * s},
				{at: 60 * s, allowed: true, resetAfter: time.Minute},
			},
		},
		{
			// 64 buckets of 1s: refusals are early by at most one bucket.
			name: "bucketed", limit: 100, window: 64 * s,
			steps: []step{
				{at: 500 * time.Millisecond, allowed: true, remaining: 99, resetAfter: 64*s + 500*time.Millisecond},
				{at: 10 * s, allowed: true, remaining: 98, resetAfter: 55 * s},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter(tt.limit, tt.window)
			for i, st := range tt.steps {
				key := st.key
				if key == "" {
					key = "k"
				}
				d := l.ReserveAt(key, limT0.Add(st.at))
				want := Decision{Allowed: st.allowed, Remaining: st.remaining, RetryAfter: st.retryAfter, ResetAfter: st.resetAfter}
				assert.Equal(t, want, d, "step %d at %s", i, st.at)
			}
		})
	}
}

func TestLimiterBucketedRefusal(t *testing.T) {
	// 100 admissions per 64s in buckets of 1s.
	l := NewLimiter(100, 64*time.Second)
	at := limT0.Add(500 * time.Millisecond)
	for range 100 {
		require.True(t, l.AllowAt("k", at))
	}
	d := l.ReserveAt("k", at.Add(time.Second))
	assert.False(t, d.Allowed)
	// The exact limiter admits again at 64.5s; the bucket of [0s,1s)
	// leaves at 65s, one bucket width later at most.
	assert.Equal(t, 64*time.Second-time.Second+500*time.Millisecond, d.RetryAfter)
	assert.False(t, l.AllowAt("k", at.Add(64*time.Second)))
	assert.True(t, l.AllowAt("k", at.Add(64*time.Second+500*time.Millisecond)))
}

func TestLimiterAllowUsesMonotonicClock(t *testing.T) {
	l := NewLimiter(2, time.Hour)
	assert.True(t, l.Allow("k"))
	assert.True(t, l.Reserve("k").Allowed)
	d := l.Reserve("k")
	assert.False(t, d.Allowed)
	assert.InDelta(t, float64(time.Hour), float64(d.RetryAfter), float64(time.Minute))
	assert.Equal(t, 2, l.Limit())
	assert.Equal(t, time.Hour, l.Window())
}

// limRef is the brute-force reference: the ideal sliding log, which admits
// an event at t when fewer than limit admissions lie in (t-window, t].
type limRef struct {
	limit  int
	window int64
	times  []int64
}

// count returns the admissions in (from, to].
func (r *limRef) count(from, to int64) int {
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
func (r *limRef) allow(t int64) (bool, int64) {
	if r.count(t-r.window, t) < r.limit {
		r.times = append(r.times, t)
		return true, 0
	}
	return false, r.times[len(r.times)-r.limit] + r.window - t
}

// limCheckRecorded fails unless every interval of length window holds at
// most limit of the sorted times.
func limCheckRecorded(t *testing.T, times []int64, limit int, window int64, msg string) {
	t.Helper()
	require.True(t, slices.IsSorted(times), "%s: recorded times out of order", msg)
	for i := 0; i+limit < len(times); i++ {
		if times[i+limit]-times[i] < window {
			require.Failf(t, "guarantee broken", "%s: %d admissions within %v starting at %d", msg, limit+1, time.Duration(times[i+limit]-times[i]), times[i])
		}
	}
}

// limArrivals returns n non-decreasing random arrival offsets: mostly
// about limit per window, with ties, bursts, and gaps of up to three
// windows. On a grid, all offsets are multiples of window/limit, so that
// events often fall exactly on window boundaries.
func limArrivals(rng *rand.Rand, n, limit int, window int64, grid bool) []int64 {
	gap := max(1, 2*window/int64(limit))
	at := make([]int64, n)
	var t int64
	for i := range at {
		switch rng.IntN(12) {
		case 0: // tie
		case 1: // long gap
			t += rng.Int64N(3 * window)
		case 2, 3: // burst
			t += rng.Int64N(gap/16 + 1)
		default:
			t += rng.Int64N(gap)
		}
		if grid {
			unit := max(1, window/int64(limit))
			t -= t % unit
		}
		at[i] = t
	}
	return at
}

func TestLimiterPropertyExact(t *testing.T) {
	const cases = 3000
	for c := range cases {
		seed := uint64(c)
		rng := rand.New(rand.NewPCG(seed, 1))
		limit := 1 + rng.IntN(LimiterExactMax)
		if c%2 == 0 {
			limit = 1 + rng.IntN(6)
		}
		window := 1 + rng.Int64N(int64(time.Minute))
		grid := c%3 == 0
		if grid {
			window = max(int64(limit), window-window%int64(limit))
		}
		l := NewLimiter(limit, time.Duration(window))
		ref := &limRef{limit: limit, window: window}
		for i, off := range limArrivals(rng, 200, limit, window, grid) {
			now := limT0.Add(time.Duration(off))
			d := l.ReserveAt("k", now)
			allowed, wait := ref.allow(l.offset(now))
			if d.Allowed != allowed || d.RetryAfter != time.Duration(wait) {
				require.Failf(t, "differs from the reference",
					"seed %d (limit %d, window %v), event %d at %v: got %+v, want allowed=%v retry=%v",
					seed, limit, time.Duration(window), i, time.Duration(off), d, allowed, time.Duration(wait))
			}
			if allowed {
				require.Equal(t, limit-ref.count(l.offset(now)-window, l.offset(now)), d.Remaining, "seed %d event %d", seed, i)
			}
		}
		limCheckRecorded(t, ref.times, limit, window, fmt.Sprintf("seed %d", seed))
	}
}

func TestLimiterPropertyBucketed(t *testing.T) {
	const cases = 1000
	for c := range cases {
		seed := uint64(c)
		rng := rand.New(rand.NewPCG(seed, 2))
		limit := LimiterExactMax + 1 + rng.IntN(100)
		window := 1 + rng.Int64N(int64(time.Minute))
		if c%2 == 0 {
			window = 64 * (1 + rng.Int64N(int64(time.Second))) // whole multiples of 64ns
		}
		l := NewLimiter(limit, time.Duration(window))
		var recorded []int64
		l.record = func(_ string, at int64) { recorded = append(recorded, at) }
		ref := &limRef{limit: limit, window: window}
		for i, off := range limArrivals(rng, 400, limit, window, c%3 == 0) {
			now := limT0.Add(time.Duration(off))
			at := l.offset(now)
			d := l.ReserveAt("k", now)
			ref.times = recorded
			msg := fmt.Sprintf("seed %d (limit %d, window %v, width %v), event %d", seed, limit, time.Duration(window), time.Duration(l.width), i)
			if d.Allowed {
				require.Equal(t, at, recorded[len(recorded)-1], msg)
				continue
			}
			// Early by at most one bucket: limit admissions in
			// (at-window-width, at].
			require.GreaterOrEqual(t, ref.count(at-window-l.width, at), limit, msg)
			// Retry no sooner than the exact limiter, at most one bucket
			// later.
			exact := recorded[len(recorded)-limit] + window - at
			require.GreaterOrEqual(t, int64(d.RetryAfter), exact, msg)
			require.LessOrEqual(t, int64(d.RetryAfter), exact+l.width, msg)
		}
		limCheckRecorded(t, recorded, limit, window, fmt.Sprintf("seed %d", seed))
	}
}

// TestLimiterPropertyClockBackwards checks the guarantee on recorded
// admission times when now jumps back and forth, across several keys of
// one shard so that idle keys are dropped and come back.
func TestLimiterPropertyClockBackwards(t *testing.T) {
	const cases = 2000
	for c := range cases {
		seed := uint64(c)
		rng := rand.New(rand.NewPCG(seed, 3))
		limit := 1 + rng.IntN(8)
		if c%4 == 0 {
			limit = LimiterExactMax + 1 + rng.IntN(40)
		}
		window := 1 + rng.Int64N(int64(time.Second))
		keys := []string{"a", "b", "c", "d"}
		recorded := map[string][]int64{}
		seen := map[string]int64{}
		var last int64
		record := func(key string, at int64) {
			recorded[key] = append(recorded[key], at)
			last = at
		}
		var now int64
		unit := int64(1)
		if c%3 == 0 {
			unit = max(1, window/8) // land on window boundaries often
			window = unit * 8
		}
		l := NewLimiter(limit, time.Duration(window), WithMaxKeys(16))
		require.Len(t, l.shards, 1)
		l.record = record
		for i := range 300 {
			switch rng.IntN(8) {
			case 0:
				now -= rng.Int64N(3 * window) // step back
			case 1:
				now += rng.Int64N(3 * window)
			default:
				now += rng.Int64N(window / 4)
			}
			now -= now % unit
			key := keys[rng.IntN(len(keys))]
			at := l.offset(limT0.Add(time.Duration(now)))
			before := len(recorded[key])
			d := l.ReserveAt(key, limT0.Add(time.Duration(now)))
			msg := fmt.Sprintf("seed %d (limit %d, window %v), event %d key %s at %v", seed, limit, time.Duration(window), i, key, time.Duration(now))
			prev, tracked := seen[key]
			if d.Allowed {
				require.Equal(t, before+1, len(recorded[key]), msg)
				require.GreaterOrEqual(t, last, at, msg)
				if tracked {
					require.GreaterOrEqual(t, last, prev, msg)
				}
				seen[key] = last
				continue
			}
			require.Equal(t, before, len(recorded[key]), msg)
			require.True(t, tracked, "%s: refused on first sight", msg)
			clock := max(at, prev)
			seen[key] = clock
			ref := &limRef{times: recorded[key]}
			if l.nb == 0 {
				// Exact: refused only with limit admissions in the window.
				require.Equal(t, limit, ref.count(clock-window, clock), msg)
				require.Equal(t, time.Duration(recorded[key][len(recorded[key])-limit]+window-at), d.RetryAfter, msg)
			} else {
				require.GreaterOrEqual(t, ref.count(clock-window-l.width, clock), limit, msg)
			}
		}
		for _, key := range keys {
			limCheckRecorded(t, recorded[key], limit, window, fmt.Sprintf("seed %d key %s", seed, key))
		}
	}
}

func TestLimiterClockBackwardsStandsStill(t *testing.T) {
	l := NewLimiter(2, 10*time.Second)
	at := func(s int) time.Time { return limT0.Add(time.Duration(s) * time.Second) }
	require.True(t, l.AllowAt("k", at(100)))
	// The clock steps back 50s: the key's clock stays at 100s, so the
	// admission is recorded there and the next waits for 110s.
	assert.True(t, l.AllowAt("k", at(50)))
	d := l.ReserveAt("k", at(55))
	assert.False(t, d.Allowed)
	assert.Equal(t, 55*time.Second, d.RetryAfter, "measured from the caller's now")
	assert.False(t, l.AllowAt("k", at(109)))
	assert.True(t, l.AllowAt("k", at(110)))
}

func TestLimiterDropsIdleKeys(t *testing.T) {
	l := NewLimiter(3, time.Minute, WithMaxKeys(10000))
	for i := range 500 {
		require.True(t, l.AllowAt(fmt.Sprintf("key-%d", i), limT0))
	}
	require.Equal(t, 500, l.Len())
	// Still in the window: nothing is dropped however often keys are used.
	for range 1000 {
		l.AllowAt("key-0", limT0.Add(59*time.Second))
	}
	assert.Equal(t, 500, l.Len())
	// A window later, operations on every shard drop its idle keys. (Idle
	// keys are dropped by operations on their shard, so the active keys must
	// reach every shard: 2000 keys leave none of the 64 shards empty but with
	// a chance of about 2e-14.)
	later := limT0.Add(2 * time.Minute)
	for i := range 20000 {
		l.AllowAt(fmt.Sprintf("active-%d", i%2000), later)
	}
	assert.Equal(t, 2000, l.Len())
	// A dropped key starts afresh.
	assert.Equal(t, Decision{Allowed: true, Remaining: 2, ResetAfter: time.Minute}, l.ReserveAt("key-1", later))
}

func TestLimiterCompactsAfterFlood(t *testing.T) {
	l := NewLimiter(1, time.Second)
	for i := range 100_000 {
		require.True(t, l.AllowAt(fmt.Sprintf("flood-%d", i), limT0))
	}
	for i := range l.shards {
		require.GreaterOrEqual(t, cap(l.shards[i].ents), limCompactMin)
	}
	// Shards are swept by their own operations: use keys that reach all.
	var steady []string
	hit := map[uint64]bool{}
	for i := 0; len(hit) < len(l.shards); i++ {
		k := fmt.Sprintf("steady-%d", i)
		steady = append(steady, k)
		hit[maphash.String(l.seed, k)&l.mask] = true
	}
	// Each operation examines two entries: 1000 rounds examine at least
	// 2000 per shard, more than the ~1600 flood keys each holds.
	for range 1000 {
		for _, k := range steady {
			l.AllowAt(k, limT0.Add(time.Hour))
		}
	}
	assert.Equal(t, len(steady), l.Len())
	for i := range l.shards {
		s := &l.shards[i]
		assert.Less(t, cap(s.ents), limCompactMin, "shard %d", i)
		assert.Equal(t, len(s.ents), len(s.idx), "shard %d", i)
	}
}

func TestLimiterCap(t *testing.T) {
	const window = time.Minute
	tests := []struct {
		name     string
		mode     FailMode
		wantNew  Decision
		wantLenN int
	}{
		{name: "fail closed", mode: FailClosed, wantNew: Decision{RetryAfter: window, ResetAfter: window}},
		{name: "fail open", mode: FailOpen, wantNew: Decision{Allowed: true, Remaining: 1, ResetAfter: window}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter(2, window, WithMaxKeys(8), WithCapFailMode(tt.mode))
			require.Len(t, l.shards, 1)
			for i := range 8 {
				require.True(t, l.AllowAt(fmt.Sprintf("k%d", i), limT0))
			}
			assert.Equal(t, tt.wantNew, l.ReserveAt("new", limT0.Add(time.Second)))
			assert.Equal(t, 8, l.Len(), "the table never exceeds its cap")
			// Tracked keys keep their exact limits.
			assert.True(t, l.AllowAt("k0", limT0.Add(time.Second)))
			assert.False(t, l.AllowAt("k0", limT0.Add(time.Second)))
			// Once tracked keys are idle, new keys get their place.
			assert.Equal(t, Decision{Allowed: true, Remaining: 1, ResetAfter: window}, l.ReserveAt("new", limT0.Add(2*window)))
			assert.LessOrEqual(t, l.Len(), 8)
		})
	}
}

func TestLimiterCapSpreadsOverShards(t *testing.T) {
	l := NewLimiter(1, time.Minute, WithMaxKeys(10_000))
	require.Len(t, l.shards, limShardsMax)
	admitted := 0
	for i := range 20_000 {
		if l.AllowAt(fmt.Sprintf("k%d", i), limT0) {
			admitted++
		}
	}
	assert.Equal(t, admitted, l.Len())
	assert.LessOrEqual(t, l.Len(), 10_000+limShardsMax-1)
	assert.Greater(t, l.Len(), 9_000)
}

func TestLimiterConcurrentExact(t *testing.T) {
	const (
		limit      = 7
		keys       = 5
		goroutines = 32
		calls      = 200
	)
	l := NewLimiter(limit, time.Minute)
	var admitted [keys]atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				k := (g + i) % keys
				if l.AllowAt(fmt.Sprintf("key-%d", k), limT0.Add(time.Duration(i)*time.Millisecond)) {
					admitted[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for k := range admitted {
		assert.Equal(t, int64(limit), admitted[k].Load(), "key %d", k)
	}
}

func TestLimiterAllowAtDoesNotAllocate(t *testing.T) {
	for _, limit := range []int{5, 1000} {
		l := NewLimiter(limit, time.Minute)
		now := limT0
		l.AllowAt("203.0.113.9", now)
		allocs := testing.AllocsPerRun(1000, func() {
			now = now.Add(time.Millisecond)
			l.AllowAt("203.0.113.9", now)
		})
		assert.Zero(t, allocs, "limit %d", limit)
	}
}

func TestNewLimiterPanics(t *testing.T) {
	tests := []struct {
		name   string
		limit  int
		window time.Duration
		opts   []LimiterOption
		want   string
	}{
		{"zero limit", 0, time.Second, nil, "ginsession.NewLimiter expects limit > 0"},
		{"negative limit", -1, time.Second, nil, "ginsession.NewLimiter expects limit > 0"},
		{"zero window", 1, 0, nil, "ginsession.NewLimiter expects window > 0"},
		{"negative window", 1, -time.Second, nil, "ginsession.NewLimiter expects window > 0"},
		{"huge window", 1, limWindowMax + 1, nil, "ginsession.NewLimiter expects window <= 2^62ns (146 years)"},
		{"zero max keys", 1, time.Second, []LimiterOption{WithMaxKeys(0)}, "ginsession.NewLimiter: WithMaxKeys(0) expects n > 0"},
		{"bad cap mode", 1, time.Second, []LimiterOption{WithCapFailMode(7)}, "ginsession.NewLimiter: WithCapFailMode(FailMode(7)) expects FailClosed or FailOpen"},
		{"bad backend mode", 1, time.Second, []LimiterOption{WithBackendFailMode(-1)}, "ginsession.NewLimiter: WithBackendFailMode(FailMode(-1)) expects FailClosed or FailOpen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.want, func() { NewLimiter(tt.limit, tt.window, tt.opts...) })
		})
	}
}

func TestFailModeString(t *testing.T) {
	assert.Equal(t, "FailClosed", FailClosed.String())
	assert.Equal(t, "FailOpen", FailOpen.String())
	assert.Equal(t, "FailMode(3)", FailMode(3).String())
}

// limFakeBackend is a LimiterBackend returning canned answers.
type limFakeBackend struct {
	d     Decision
	err   error
	calls []string
}

func (b *limFakeBackend) Admit(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (Decision, error) {
	b.calls = append(b.calls, fmt.Sprintf("%s %d %s %s", key, limit, window, now.Format(time.RFC3339)))
	return b.d, b.err
}

func TestLimiterBackend(t *testing.T) {
	down := fmt.Errorf("memcached: limiter get: %w: %w", stores.ErrUnavailable, errors.New("connection refused"))
	tests := []struct {
		name      string
		backend   *limFakeBackend
		mode      FailMode
		want      Decision
		wantErr   bool
		wantAllow bool
	}{
		{
			name:      "decision passed through",
			backend:   &limFakeBackend{d: Decision{Allowed: true, Remaining: 3, ResetAfter: time.Second}},
			want:      Decision{Allowed: true, Remaining: 3, ResetAfter: time.Second},
			wantAllow: true,
		},
		{
			name:    "error fails closed by default",
			backend: &limFakeBackend{err: down},
			want:    Decision{RetryAfter: time.Second, ResetAfter: time.Second},
			wantErr: true,
		},
		{
			name:      "error fails open",
			backend:   &limFakeBackend{err: down},
			mode:      FailOpen,
			want:      Decision{Allowed: true},
			wantErr:   true,
			wantAllow: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter(4, time.Minute, WithLimiterBackend(tt.backend), WithBackendFailMode(tt.mode))
			d, err := l.ReserveAtContext(context.Background(), "user-1", limT0)
			assert.Equal(t, tt.want, d)
			if tt.wantErr {
				var le *LimiterError
				require.ErrorAs(t, err, &le)
				assert.Equal(t, tt.wantAllow, le.Allowed)
				assert.ErrorIs(t, err, stores.ErrUnavailable)
				assert.Contains(t, err.Error(), "ginsession: rate limiter backend failed")
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.want, l.ReserveAt("user-1", limT0))
			assert.Equal(t, tt.wantAllow, l.AllowAt("user-1", limT0))
			assert.Equal(t, "user-1 4 1m0s 2026-03-04T05:06:07Z", tt.backend.calls[0])
			assert.Len(t, tt.backend.calls, 3)
			assert.Zero(t, l.Len())
		})
	}
}
