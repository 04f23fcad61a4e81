package memcached

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/internal/memcachedtest"
	"github.com/securestack/ginsession/stores"
)

// limClient returns a client of the server sized for concurrent tests.
func limClient(srv *memcachedtest.Server) *memcache.Client {
	c := memcache.New(srv.Addr)
	c.MaxIdleConns = 64
	c.Timeout = 2 * time.Second
	return c
}

// limRecorder collects the admission times recorded by backends.
type limRecorder struct {
	mu    sync.Mutex
	times map[string][]int64
}

func (r *limRecorder) attach(b *LimiterBackend) {
	b.record = func(key string, at int64) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.times == nil {
			r.times = map[string][]int64{}
		}
		r.times[key] = append(r.times[key], at)
	}
}

// limCheckWindows fails unless every interval of length window holds at
// most limit of times.
func limCheckWindows(t *testing.T, times []int64, limit int, window time.Duration) {
	t.Helper()
	times = slices.Sorted(slices.Values(times))
	for i := 0; i+limit < len(times); i++ {
		if gap := time.Duration(times[i+limit] - times[i]); gap < window {
			require.Failf(t, "guarantee broken", "%d admissions within %v", limit+1, gap)
		}
	}
}

// TestLimiterBackendTwoInstancesOneWindow runs concurrent callers on two
// backends (two application instances) sharing one memcached: when all
// calls fall in one window, exactly limit are admitted in total.
func TestLimiterBackendTwoInstancesOneWindow(t *testing.T) {
	const (
		limit      = 20
		window     = time.Minute
		goroutines = 8 // per instance
		calls      = 15
	)
	srv := memcachedtest.Start(t)
	instances := []*LimiterBackend{
		NewLimiterBackend(limClient(srv), "rl:one:"),
		NewLimiterBackend(limClient(srv), "rl:one:"),
	}
	var rec limRecorder
	for _, b := range instances {
		rec.attach(b)
	}
	start := time.Now()
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for i, b := range instances {
		for g := range goroutines {
			wg.Go(func() {
				for c := range calls {
					now := start.Add(time.Duration(i*goroutines*calls+g*calls+c) * time.Millisecond)
					d, err := b.Admit(context.Background(), "203.0.113.7", limit, window, now)
					if !assert.NoError(t, err) {
						return
					}
					if d.Allowed {
						admitted.Add(1)
						assert.Zero(t, d.RetryAfter)
					} else {
						refused.Add(1)
						assert.Positive(t, d.RetryAfter)
						// Measured from this caller's now, which may be
						// earlier than admissions recorded by others.
						assert.LessOrEqual(t, d.RetryAfter, window+2*goroutines*calls*time.Millisecond)
					}
				}
			})
		}
	}
	wg.Wait()
	assert.Equal(t, int64(limit), admitted.Load())
	assert.Equal(t, int64(2*goroutines*calls-limit), refused.Load())
	limCheckWindows(t, rec.times["203.0.113.7"], limit, window)
}

// TestLimiterBackendTwoInstancesSliding runs concurrent callers on two
// backends over many windows of a shared fake clock: no interval of length
// window ever holds more than limit recorded admissions in total.
func TestLimiterBackendTwoInstancesSliding(t *testing.T) {
	const (
		limit      = 10
		window     = 50 * time.Millisecond
		step       = time.Millisecond // fake time per call: ~5 calls per admission
		goroutines = 6                // per instance
		calls      = 200
	)
	srv := memcachedtest.Start(t)
	instances := []*LimiterBackend{
		NewLimiterBackend(limClient(srv), "rl:slide:"),
		NewLimiterBackend(limClient(srv), "rl:slide:"),
	}
	var rec limRecorder
	for _, b := range instances {
		rec.attach(b)
	}
	start := time.Now()
	var tick atomic.Int64
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for _, b := range instances {
		for g := range goroutines {
			wg.Go(func() {
				for range calls {
					now := start.Add(time.Duration(tick.Add(1)) * step / 2)
					key := fmt.Sprintf("user-%d", g%2)
					d, err := b.Admit(context.Background(), key, limit, window, now)
					if !assert.NoError(t, err) {
						return
					}
					if d.Allowed {
						admitted.Add(1)
						assert.GreaterOrEqual(t, d.Remaining, 0)
						assert.Less(t, d.Remaining, limit)
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Duration(tick.Load()) * step / 2
	for _, key := range []string{"user-0", "user-1"} {
		times := rec.times[key]
		limCheckWindows(t, times, limit, window)
		// Not starved either: most windows are filled.
		assert.Greater(t, len(times), int(elapsed/window)*limit/2, key)
	}
	assert.Equal(t, int64(len(rec.times["user-0"])+len(rec.times["user-1"])), admitted.Load())
}

func TestLimiterBackendSteps(t *testing.T) {
	srv := memcachedtest.Start(t)
	b := NewLimiterBackend(limClient(srv), "rl:steps:")
	const window = 10 * time.Second
	start := time.Now().Truncate(time.Second)
	steps := []struct {
		at   time.Duration
		want stores.Decision
	}{
		{0, stores.Decision{Allowed: true, Remaining: 1, ResetAfter: 10 * time.Second}},
		{1 * time.Second, stores.Decision{Allowed: true, Remaining: 0, ResetAfter: 9 * time.Second}},
		{2 * time.Second, stores.Decision{RetryAfter: 8 * time.Second, ResetAfter: 8 * time.Second}},
		{10 * time.Second, stores.Decision{Allowed: true, Remaining: 0, ResetAfter: time.Second}},
		// The clock steps back: the admission would be recorded at 10s,
		// and two lie in (0s, 10s], so it is refused until 11s.
		{5 * time.Second, stores.Decision{RetryAfter: 6 * time.Second, ResetAfter: 6 * time.Second}},
		{11 * time.Second, stores.Decision{Allowed: true, Remaining: 0, ResetAfter: 9 * time.Second}},
	}
	for i, st := range steps {
		d, err := b.Admit(context.Background(), "alice", 2, window, start.Add(st.at))
		require.NoError(t, err, "step %d", i)
		assert.Equal(t, st.want, d, "step %d at %s", i, st.at)
	}
}

// TestLimiterBackendClockBackwards checks the guarantee on the recorded
// times with random steps back and forth.
func TestLimiterBackendClockBackwards(t *testing.T) {
	srv := memcachedtest.Start(t)
	b := NewLimiterBackend(limClient(srv), "rl:back:")
	var rec limRecorder
	rec.attach(b)
	const (
		limit  = 3
		window = 100 * time.Millisecond
	)
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	var last int64
	for i := range 500 {
		switch rng.IntN(6) {
		case 0:
			now = now.Add(-time.Duration(rng.Int64N(int64(3 * window))))
		default:
			now = now.Add(time.Duration(rng.Int64N(int64(window / 2))))
		}
		d, err := b.Admit(context.Background(), "k", limit, window, now)
		require.NoError(t, err, "event %d", i)
		if d.Allowed {
			times := rec.times["k"]
			at := times[len(times)-1]
			require.GreaterOrEqual(t, at, max(now.UnixNano(), last), "event %d recorded too early", i)
			last = at
		}
	}
	require.True(t, slices.IsSorted(rec.times["k"]))
	limCheckWindows(t, rec.times["k"], limit, window)
}

func TestLimiterBackendKeys(t *testing.T) {
	srv := memcachedtest.Start(t)
	b := NewLimiterBackend(limClient(srv), "rl:keys:")
	raw := []string{"user@example.com", "with space", "new\nline", strings.Repeat("x", 1000), ""}
	for _, k := range raw {
		_, err := b.Admit(context.Background(), k, 1, time.Minute, time.Now())
		require.NoError(t, err, "%q", k)
	}
	assert.Equal(t, uint64(len(raw)), srv.Stats(t)["curr_items"])
	client := limClient(srv)
	for _, k := range raw {
		key := b.itemKey(k)
		assert.Regexp(t, `^rl:keys:[A-Za-z0-9_-]{43}$`, key)
		if k != "" {
			assert.NotContains(t, key, k)
		}
		_, err := client.Get(key)
		assert.NoError(t, err, "the item of %q is stored under its digest", k)
	}
}

func TestLimiterBackendStoreDown(t *testing.T) {
	srv := memcachedtest.Start(t)
	client := limClient(srv)
	client.Timeout = 200 * time.Millisecond
	b := NewLimiterBackend(client, "rl:down:")
	_, err := b.Admit(context.Background(), "k", 1, time.Minute, time.Now())
	require.NoError(t, err)
	srv.Stop(t)
	_, err = b.Admit(context.Background(), "k", 1, time.Minute, time.Now())
	require.Error(t, err)
	assert.ErrorIs(t, err, stores.ErrUnavailable)
	assert.Contains(t, err.Error(), "memcached: limiter get")
}

func TestLimiterBackendContextDone(t *testing.T) {
	srv := memcachedtest.Start(t)
	b := NewLimiterBackend(limClient(srv), "rl:ctx:")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.Admit(ctx, "k", 1, time.Minute, time.Now())
	require.ErrorIs(t, err, context.Canceled)
	stats := srv.Stats(t)
	assert.Zero(t, stats["cmd_get"], "nothing was sent")
	assert.Zero(t, stats["cmd_set"], "nothing was sent")
}

func TestLimiterBackendConflict(t *testing.T) {
	srv := memcachedtest.Start(t)
	// With a single attempt, racing admissions on a new key lose to each
	// other; the losers fail with ErrConflict and are not admitted.
	const callers = 32
	var wg sync.WaitGroup
	var admitted, conflicts atomic.Int64
	start := make(chan struct{})
	for range callers {
		b := NewLimiterBackend(limClient(srv), "rl:conflict:", WithLimiterMaxAttempts(1))
		wg.Go(func() {
			<-start
			d, err := b.Admit(context.Background(), "k", callers, time.Minute, time.Now())
			switch {
			case err == nil:
				assert.True(t, d.Allowed)
				admitted.Add(1)
			case errors.Is(err, stores.ErrConflict):
				conflicts.Add(1)
			default:
				assert.NoError(t, err)
			}
		})
	}
	close(start)
	wg.Wait()
	assert.Equal(t, int64(callers), admitted.Load()+conflicts.Load())
	// Every admission is in the item: none was lost to a race.
	it, err := limClient(srv).Get(NewLimiterBackend(limClient(srv), "rl:conflict:").itemKey("k"))
	require.NoError(t, err)
	times, err := limDecode(it.Value)
	require.NoError(t, err)
	assert.Len(t, times, int(admitted.Load()))
}

func TestLimiterBackendMalformedItem(t *testing.T) {
	srv := memcachedtest.Start(t)
	client := limClient(srv)
	b := NewLimiterBackend(client, "rl:bad:")
	require.NoError(t, client.Set(&memcache.Item{Key: b.itemKey("k"), Value: []byte("garbage")}))
	_, err := b.Admit(context.Background(), "k", 1, time.Minute, time.Now())
	require.ErrorIs(t, err, errLimMalformed)
}

func TestLimiterCodec(t *testing.T) {
	for _, times := range [][]int64{
		{},
		{0},
		{-5, -5, 0, 1 << 40},
		{time.Now().UnixNano(), time.Now().UnixNano() + 1, time.Now().UnixNano() + int64(time.Hour)},
	} {
		got, err := limDecode(limEncode(times))
		require.NoError(t, err)
		assert.Equal(t, times, got)
	}
	good := limEncode([]int64{1, 2, 3})
	for name, b := range map[string][]byte{
		"empty":          nil,
		"wrong format":   append([]byte{9}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(slices.Clone(good), 0),
		"huge count":     {limFormat, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		_, err := limDecode(b)
		assert.ErrorIs(t, err, errLimMalformed, name)
	}
}

func TestNewLimiterBackendPanics(t *testing.T) {
	client := memcache.New("127.0.0.1:1")
	tests := []struct {
		name string
		f    func()
		want string
	}{
		{"nil client", func() { NewLimiterBackend(nil, "p:") }, "memcached.NewLimiterBackend expects a non-nil client"},
		{"long prefix", func() { NewLimiterBackend(client, strings.Repeat("p", 208)) }, "memcached.NewLimiterBackend: prefix of 208 bytes, over the 207 that keep keys within memcached's 250"},
		{"space in prefix", func() { NewLimiterBackend(client, "rate limit:") }, `memcached.NewLimiterBackend: prefix "rate limit:" has a space or control character at byte 4`},
		{"control in prefix", func() { NewLimiterBackend(client, "rl\x00") }, `memcached.NewLimiterBackend: prefix "rl\x00" has a space or control character at byte 2`},
		{"zero attempts", func() { NewLimiterBackend(client, "p:", WithLimiterMaxAttempts(0)) }, "memcached.NewLimiterBackend: WithLimiterMaxAttempts(0) expects n > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.want, tt.f)
		})
	}
	assert.NotPanics(t, func() { NewLimiterBackend(client, strings.Repeat("p", 207)) })
}

func TestLimiterBackendInvalidPolicy(t *testing.T) {
	b := NewLimiterBackend(memcache.New("127.0.0.1:1"), "p:")
	_, err := b.Admit(context.Background(), "k", 0, time.Minute, time.Now())
	assert.Error(t, err)
	_, err = b.Admit(context.Background(), "k", 1, 0, time.Now())
	assert.Error(t, err)
}
