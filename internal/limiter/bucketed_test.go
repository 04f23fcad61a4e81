package limiter

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/internal/limitertest"
)

func TestBucketedSteps(t *testing.T) {
	const s = time.Second
	// 64 buckets of 1s: refusals are early by at most one bucket.
	runSteps(t, 100, 64*s, []step{
		{at: 500 * time.Millisecond, allowed: true, remaining: 99, resetAfter: 64*s + 500*time.Millisecond},
		{at: 10 * s, allowed: true, remaining: 98, resetAfter: 55 * s},
	})
}

func TestBucketLayout(t *testing.T) {
	tests := []struct {
		name      string
		window    time.Duration
		wantWidth time.Duration
		wantNB    int
	}{
		{name: "whole milliseconds", window: 90 * time.Second, wantWidth: 90 * time.Second / 64, wantNB: 65},
		{name: "largest divisor below 64", window: 63, wantWidth: 1, wantNB: 64},
		{name: "prime window", window: 67, wantWidth: 67, wantNB: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t0.Add(123)
			width, nb, shift := bucketLayout(int64(tt.window), base)
			assert.Equal(t, int64(tt.wantWidth), width)
			assert.Equal(t, tt.wantNB, nb)
			assert.Zero(t, floorMod(base.UnixNano()-shift, width), "buckets start at multiples of the width in Unix time")
		})
	}
}

func TestBucketedRefusal(t *testing.T) {
	// 100 admissions per 64s in buckets of 1s.
	tb := newTable(100, 64*time.Second)
	at := t0.Add(500 * time.Millisecond)
	for range 100 {
		require.True(t, tb.Allow("k", at))
	}
	d := tb.Reserve("k", at.Add(time.Second))
	assert.False(t, d.Allowed)
	// The exact limiter admits again at 64.5s; the bucket of [0s,1s)
	// leaves at 65s, one bucket width later at most.
	assert.Equal(t, 64*time.Second-time.Second+500*time.Millisecond, d.RetryAfter)
	assert.False(t, tb.Allow("k", at.Add(64*time.Second)))
	assert.True(t, tb.Allow("k", at.Add(64*time.Second+500*time.Millisecond)))
}

// TestPropertyBucketed checks random arrivals against the recorded
// admissions: the guarantee holds, refusals are early by at most one
// bucket, and retries are at most one bucket later than the exact ones.
func TestPropertyBucketed(t *testing.T) {
	const cases = 1000
	for c := range cases {
		seed := uint64(c)
		rng := rand.New(rand.NewPCG(seed, 2))
		limit := ExactMax + 1 + rng.IntN(100)
		window := 1 + rng.Int64N(int64(time.Minute))
		if c%2 == 0 {
			window = 64 * (1 + rng.Int64N(int64(time.Second))) // whole multiples of 64ns
		}
		tb := newTable(limit, time.Duration(window))
		var recorded []int64
		tb.record = func(_ string, at int64) { recorded = append(recorded, at) }
		ref := &idealLog{limit: limit, window: window}
		for i, off := range limitertest.Arrivals(rng, 400, limit, window, c%3 == 0, false) {
			now := t0.Add(time.Duration(off))
			at := tb.offset(now)
			d := tb.Reserve("k", now)
			ref.times = recorded
			msg := fmt.Sprintf("seed %d (limit %d, window %v, width %v), event %d", seed, limit, time.Duration(window), time.Duration(tb.width), i)
			if d.Allowed {
				require.Equal(t, at, recorded[len(recorded)-1], msg)
				continue
			}
			// Early by at most one bucket: limit admissions in
			// (at-window-width, at].
			require.GreaterOrEqual(t, ref.count(at-window-tb.width, at), limit, msg)
			// Retry no sooner than the exact limiter, at most one bucket
			// later.
			exact := recorded[len(recorded)-limit] + window - at
			require.GreaterOrEqual(t, int64(d.RetryAfter), exact, msg)
			require.LessOrEqual(t, int64(d.RetryAfter), exact+tb.width, msg)
		}
		checkRecorded(t, recorded, limit, window, fmt.Sprintf("seed %d", seed))
	}
}
