package limiter

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/stores"
)

// TestPropertyClockBackwards checks the guarantee on recorded admission
// times when now jumps back and forth, across several keys of one shard so
// that idle keys are dropped and come back.
func TestPropertyClockBackwards(t *testing.T) {
	const cases = 2000
	for c := range cases {
		seed := uint64(c)
		rng := rand.New(rand.NewPCG(seed, 3))
		limit := 1 + rng.IntN(8)
		if c%4 == 0 {
			limit = ExactMax + 1 + rng.IntN(40)
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
		tb := New(limit, time.Duration(window), 16, false)
		require.Len(t, tb.shards, 1)
		tb.record = record
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
			at := tb.offset(t0.Add(time.Duration(now)))
			before := len(recorded[key])
			d := tb.Reserve(key, t0.Add(time.Duration(now)))
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
			ref := &idealLog{times: recorded[key]}
			if tb.nb == 0 {
				// Exact: refused only with limit admissions in the window.
				require.Equal(t, limit, ref.count(clock-window, clock), msg)
				require.Equal(t, time.Duration(recorded[key][len(recorded[key])-limit]+window-at), d.RetryAfter, msg)
			} else {
				require.GreaterOrEqual(t, ref.count(clock-window-tb.width, clock), limit, msg)
			}
		}
		for _, key := range keys {
			checkRecorded(t, recorded[key], limit, window, fmt.Sprintf("seed %d key %s", seed, key))
		}
	}
}

func TestClockBackwardsStandsStill(t *testing.T) {
	tb := newTable(2, 10*time.Second)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	require.True(t, tb.Allow("k", at(100)))
	// The clock steps back 50s: the key's clock stays at 100s, so the
	// admission is recorded there and the next waits for 110s.
	assert.True(t, tb.Allow("k", at(50)))
	d := tb.Reserve("k", at(55))
	assert.False(t, d.Allowed)
	assert.Equal(t, 55*time.Second, d.RetryAfter, "measured from the caller's now")
	assert.False(t, tb.Allow("k", at(109)))
	assert.True(t, tb.Allow("k", at(110)))
}

func TestDropsIdleKeys(t *testing.T) {
	tb := New(3, time.Minute, 10000, false)
	for i := range 500 {
		require.True(t, tb.Allow(fmt.Sprintf("key-%d", i), t0))
	}
	require.Equal(t, 500, tb.Len())
	// Still in the window: nothing is dropped however often keys are used.
	for range 1000 {
		tb.Allow("key-0", t0.Add(59*time.Second))
	}
	assert.Equal(t, 500, tb.Len())
	// A window later, operations on every shard drop its idle keys. (Idle
	// keys are dropped by operations on their shard, so the active keys must
	// reach every shard: 2000 keys leave none of the 64 shards empty but with
	// a chance of about 2e-14.)
	later := t0.Add(2 * time.Minute)
	for i := range 20000 {
		tb.Allow(fmt.Sprintf("active-%d", i%2000), later)
	}
	assert.Equal(t, 2000, tb.Len())
	// A dropped key starts afresh.
	assert.Equal(t, stores.Decision{Allowed: true, Remaining: 2, ResetAfter: time.Minute}, tb.Reserve("key-1", later))
}

func TestCompactsAfterFlood(t *testing.T) {
	tb := newTable(1, time.Second)
	for i := range 100_000 {
		require.True(t, tb.Allow(fmt.Sprintf("flood-%d", i), t0))
	}
	for i := range tb.shards {
		require.GreaterOrEqual(t, cap(tb.shards[i].ents), compactMin)
	}
	// Shards are swept by their own operations: use keys that reach all.
	var steady []string
	hit := map[int]bool{}
	for i := 0; len(hit) < tb.Shards(); i++ {
		k := fmt.Sprintf("steady-%d", i)
		steady = append(steady, k)
		hit[tb.ShardOf(k)] = true
	}
	// Each operation examines two entries: 1000 rounds examine at least
	// 2000 per shard, more than the ~1600 flood keys each holds.
	for range 1000 {
		for _, k := range steady {
			tb.Allow(k, t0.Add(time.Hour))
		}
	}
	assert.Equal(t, len(steady), tb.Len())
	for i := range tb.shards {
		s := &tb.shards[i]
		assert.Less(t, cap(s.ents), compactMin, "shard %d", i)
		assert.Equal(t, len(s.ents), len(s.idx), "shard %d", i)
	}
}

func TestCap(t *testing.T) {
	const window = time.Minute
	tests := []struct {
		name    string
		capOpen bool
		wantNew stores.Decision
	}{
		{name: "fail closed", wantNew: stores.Decision{RetryAfter: window, ResetAfter: window}},
		{name: "fail open", capOpen: true, wantNew: stores.Decision{Allowed: true, Remaining: 1, ResetAfter: window}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := New(2, window, 8, tt.capOpen)
			require.Len(t, tb.shards, 1)
			for i := range 8 {
				require.True(t, tb.Allow(fmt.Sprintf("k%d", i), t0))
			}
			assert.Equal(t, tt.wantNew, tb.Reserve("new", t0.Add(time.Second)))
			assert.Equal(t, 8, tb.Len(), "the table never exceeds its cap")
			// Tracked keys keep their exact limits.
			assert.True(t, tb.Allow("k0", t0.Add(time.Second)))
			assert.False(t, tb.Allow("k0", t0.Add(time.Second)))
			// Once tracked keys are idle, new keys get their place.
			assert.Equal(t, stores.Decision{Allowed: true, Remaining: 1, ResetAfter: window}, tb.Reserve("new", t0.Add(2*window)))
			assert.LessOrEqual(t, tb.Len(), 8)
		})
	}
}

func TestCapSpreadsOverShards(t *testing.T) {
	tb := New(1, time.Minute, 10_000, false)
	require.Len(t, tb.shards, shardsMax)
	admitted := 0
	for i := range 20_000 {
		if tb.Allow(fmt.Sprintf("k%d", i), t0) {
			admitted++
		}
	}
	assert.Equal(t, admitted, tb.Len())
	assert.LessOrEqual(t, tb.Len(), 10_000+shardsMax-1)
	assert.Greater(t, tb.Len(), 9_000)
}

func TestConcurrentExact(t *testing.T) {
	const (
		limit      = 7
		keys       = 5
		goroutines = 32
		calls      = 200
	)
	tb := newTable(limit, time.Minute)
	var admitted [keys]atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				k := (g + i) % keys
				if tb.Allow(fmt.Sprintf("key-%d", k), t0.Add(time.Duration(i)*time.Millisecond)) {
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

func TestAllowDoesNotAllocate(t *testing.T) {
	for _, limit := range []int{5, 1000} {
		tb := newTable(limit, time.Minute)
		now := t0
		tb.Allow("203.0.113.9", now)
		allocs := testing.AllocsPerRun(1000, func() {
			now = now.Add(time.Millisecond)
			tb.Allow("203.0.113.9", now)
		})
		assert.Zero(t, allocs, "limit %d", limit)
	}
}
