package limiter

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/internal/limitertest"
)

func TestExactSteps(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name   string
		limit  int
		window time.Duration
		steps  []step
	}{
		{
			name: "ring", limit: 3, window: 10 * s,
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSteps(t, tt.limit, tt.window, tt.steps)
		})
	}
}

// TestPropertyExact checks random arrivals against the ideal sliding log:
// the exact mode refuses nothing that the log admits, and retries and
// remaining counts match it.
func TestPropertyExact(t *testing.T) {
	const cases = 3000
	for c := range cases {
		seed := uint64(c)
		rng := rand.New(rand.NewPCG(seed, 1))
		limit := 1 + rng.IntN(ExactMax)
		if c%2 == 0 {
			limit = 1 + rng.IntN(6)
		}
		window := 1 + rng.Int64N(int64(time.Minute))
		grid := c%3 == 0
		if grid {
			window = max(int64(limit), window-window%int64(limit))
		}
		tb := newTable(limit, time.Duration(window))
		ref := &idealLog{limit: limit, window: window}
		for i, off := range limitertest.Arrivals(rng, 200, limit, window, grid, false) {
			now := t0.Add(time.Duration(off))
			d := tb.Reserve("k", now)
			allowed, wait := ref.allow(tb.offset(now))
			if d.Allowed != allowed || d.RetryAfter != time.Duration(wait) {
				require.Failf(t, "differs from the reference",
					"seed %d (limit %d, window %v), event %d at %v: got %+v, want allowed=%v retry=%v",
					seed, limit, time.Duration(window), i, time.Duration(off), d, allowed, time.Duration(wait))
			}
			if allowed {
				require.Equal(t, limit-ref.count(tb.offset(now)-window, tb.offset(now)), d.Remaining, "seed %d event %d", seed, i)
			}
		}
		checkRecorded(t, ref.times, limit, window, fmt.Sprintf("seed %d", seed))
	}
}
