// Package limitertest generates the event sequences on which the rate
// limiter's engine (internal/limiter) and the limiter backends
// (storetest.RunLimiterBackend) are checked against the sliding-window
// guarantee.
package limitertest

import "math/rand/v2"

// Arrivals returns n random arrival offsets in nanoseconds: mostly about
// limit per window, with ties, bursts and gaps of up to three windows. On
// a grid, the offsets are multiples of window/limit, so that events often
// fall exactly on window boundaries. Without back they never decrease;
// with back, one offset in six steps back by up to three windows, as a
// clock that is not monotonic would.
func Arrivals(rng *rand.Rand, n, limit int, window int64, grid, back bool) []int64 {
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
		if back && rng.IntN(6) == 0 {
			t -= rng.Int64N(3 * window)
		}
		if grid {
			unit := max(1, window/int64(limit))
			t -= t % unit
		}
		at[i] = t
	}
	return at
}
