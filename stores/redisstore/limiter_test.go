package redisstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/internal/redistest"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/storetest"
)

// soon bounds how long a test waits for something that should be quick.
const soon = 5 * time.Second

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

// limHistory decodes the history stored for key, as the script encodes
// it.
func limHistory(t *testing.T, srv *redistest.Server, b *LimiterBackend, key string) []int64 {
	t.Helper()
	v, ok := srv.MustDo(t, "GET", b.itemKey(key)).(string)
	require.True(t, ok, "no history for %q", key)
	require.Equal(t, byte(limFormat), v[0])
	require.Zero(t, (len(v)-1)%limEntrySize)
	var times []int64
	for p := 1; p < len(v); p += limEntrySize {
		sec := int64(binary.BigEndian.Uint64([]byte(v[p : p+8])))
		nsec := int64(binary.BigEndian.Uint32([]byte(v[p+8 : p+12])))
		times = append(times, sec*1e9+nsec)
	}
	return times
}

// TestLimiterConformance runs the conformance suite on two backends, two
// application instances with clients of their own, sharing one Redis.
func TestLimiterConformance(t *testing.T) {
	storetest.RunLimiterBackend(t, func(t *testing.T) storetest.LimiterHarness {
		srv := sharedServer(t)
		prefix := uniquePrefix()
		return storetest.LimiterHarness{
			Instances: [2]stores.LimiterBackend{
				NewLimiterBackend(newClient(t, srv.Addr), prefix),
				NewLimiterBackend(newClient(t, srv.Addr), prefix),
			},
			Exact: true,
		}
	})
}

// TestLimiterBackendNanoseconds checks that decisions are exact to the
// nanosecond far from today's times too, which Lua's doubles would not be
// on Unix nanoseconds, and across the sign of Unix seconds. The suite
// checks nanoseconds near the real time.
func TestLimiterBackendNanoseconds(t *testing.T) {
	b := NewLimiterBackend(newClient(t, sharedServer(t).Addr), uniquePrefix())
	const window = time.Second + time.Nanosecond
	for _, start := range []time.Time{
		time.Unix(0, 1<<62+123), // 2116, far past 2^53 ns
		time.Unix(-3, 999_999_999),
		time.Unix(-1, 0),
	} {
		t.Run(start.String(), func(t *testing.T) {
			key := start.String()
			steps := []struct {
				at   time.Duration
				want stores.Decision
			}{
				{0, stores.Decision{Allowed: true, Remaining: 0, ResetAfter: window}},
				{time.Second, stores.Decision{RetryAfter: time.Nanosecond, ResetAfter: time.Nanosecond}},
				{window - 1, stores.Decision{RetryAfter: 1, ResetAfter: 1}},
				{window, stores.Decision{Allowed: true, Remaining: 0, ResetAfter: window}},
				{window + 999_999_999, stores.Decision{RetryAfter: 2, ResetAfter: 2}},
			}
			for i, st := range steps {
				d, err := b.Admit(context.Background(), key, 1, window, start.Add(st.at))
				require.NoError(t, err, "step %d", i)
				assert.Equal(t, st.want, d, "step %d at %v", i, st.at)
			}
		})
	}
}

// TestLimiterBackendKeys checks where histories are stored: under the
// digest of the key, never the key itself. The suite checks that keys are
// independent.
func TestLimiterBackendKeys(t *testing.T) {
	srv := redistest.Start(t)
	b := NewLimiterBackend(newClient(t, srv.Addr), "rl:keys:")
	raw := []string{"user@example.com", "with space", "new\nline", strings.Repeat("x", 1000), ""}
	for _, k := range raw {
		_, err := b.Admit(context.Background(), k, 1, time.Minute, time.Now())
		require.NoError(t, err, "%q", k)
	}
	dump := srv.Dump(t)
	assert.Len(t, dump, len(raw))
	for _, k := range raw {
		key := b.itemKey(k)
		assert.Regexp(t, `^rl:keys:[A-Za-z0-9_-]{43}$`, key)
		if k != "" {
			assert.NotContains(t, key, k)
		}
		assert.Contains(t, dump, key, "the history of %q is stored under its digest", k)
	}
}

func TestLimiterBackendExpiry(t *testing.T) {
	srv := sharedServer(t)
	b := NewLimiterBackend(newClient(t, srv.Addr), uniquePrefix())
	for _, window := range []time.Duration{time.Millisecond, 1500 * time.Microsecond, time.Minute, 60 * 24 * time.Hour} {
		key := window.String()
		_, err := b.Admit(context.Background(), key, 5, window, time.Now())
		require.NoError(t, err)
		want := int64((window+time.Millisecond-1)/time.Millisecond) + 1000
		ttl := srv.MustDo(t, "PTTL", b.itemKey(key)).(int64)
		assert.LessOrEqual(t, ttl, want, key)
		assert.Greater(t, ttl, want-1000, key)
		// A refusal writes nothing.
		d, err := b.Admit(context.Background(), key, 1, window, time.Now())
		require.NoError(t, err)
		if !d.Allowed {
			assert.Len(t, limHistory(t, srv, b, key), 1)
		}
	}
	// The history goes once the window and a second have passed.
	_, err := b.Admit(context.Background(), "short", 1, time.Millisecond, time.Now())
	require.NoError(t, err)
	assert.Eventually(t, func() bool {
		return srv.MustDo(t, "EXISTS", b.itemKey("short")) == int64(0)
	}, soon, 50*time.Millisecond)
}

func TestLimiterBackendStoreDown(t *testing.T) {
	srv := redistest.Start(t)
	b := NewLimiterBackend(recommendedClient(t, srv.Addr), "rl:down:")
	_, err := b.Admit(context.Background(), "k", 1, time.Minute, time.Now())
	require.NoError(t, err)
	srv.Stop(t)
	_, err = b.Admit(context.Background(), "k", 1, time.Minute, time.Now())
	require.Error(t, err)
	assert.ErrorIs(t, err, stores.ErrUnavailable)
	assert.Contains(t, err.Error(), "redisstore: limiter")
	srv.Restart(t) // empty, no scripts: works again
	d, err := b.Admit(context.Background(), "k", 1, time.Minute, time.Now())
	require.NoError(t, err)
	assert.True(t, d.Allowed)
}

func TestLimiterBackendOutOfMemory(t *testing.T) {
	srv := redistest.Start(t)
	b := NewLimiterBackend(newClient(t, srv.Addr), "rl:oom:")
	_, err := b.Admit(context.Background(), "warm", 1, time.Minute, time.Now())
	require.NoError(t, err)
	srv.MustDo(t, "CONFIG", "SET", "maxmemory", "1mb")
	for i := 0; ; i++ {
		if _, err := srv.Do("SET", fmt.Sprintf("filler:%d", i), strings.Repeat("x", 16<<10)); err != nil {
			break
		}
		require.Less(t, i, 1000)
	}
	_, err = b.Admit(context.Background(), "k", 1, time.Minute, time.Now())
	require.ErrorIs(t, err, ErrOutOfMemory)
	require.ErrorIs(t, err, stores.ErrUnavailable)
}

// TestLimiterBackendContextDone checks that a done context sends nothing
// to Redis. The suite checks the error.
func TestLimiterBackendContextDone(t *testing.T) {
	srv := sharedServer(t)
	client := newClient(t, srv.Addr)
	counts := new(counter)
	client.AddHook(counts)
	b := NewLimiterBackend(client, uniquePrefix())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.Admit(ctx, "k", 1, time.Minute, time.Now())
	require.ErrorIs(t, err, context.Canceled)
	cmds, _ := counts.take()
	assert.Empty(t, cmds, "nothing was sent")
}

func TestLimiterBackendOneCommand(t *testing.T) {
	srv := sharedServer(t)
	client := newClient(t, srv.Addr)
	counts := new(counter)
	client.AddHook(counts)
	b := NewLimiterBackend(client, uniquePrefix())
	_, err := b.Admit(context.Background(), "k", 2, time.Minute, time.Now())
	require.NoError(t, err)
	counts.take()
	for i := range 3 {
		_, err := b.Admit(context.Background(), "k", 2, time.Minute, time.Now())
		require.NoError(t, err)
		cmds, _ := counts.take()
		assert.Equal(t, map[string]int{"evalsha": 1}, cmds, "admission %d", i)
	}
}

func TestLimiterBackendNoConflict(t *testing.T) {
	// Racing admissions on a new key never fail each other: the script
	// runs atomically, and every admission is in the history, at the time
	// the script reported recording it.
	srv := sharedServer(t)
	prefix := uniquePrefix()
	const callers = 32
	var wg sync.WaitGroup
	var admitted atomic.Int64
	var rec limRecorder
	start := make(chan struct{})
	for range callers {
		b := NewLimiterBackend(newClient(t, srv.Addr), prefix)
		rec.attach(b)
		wg.Go(func() {
			<-start
			d, err := b.Admit(context.Background(), "k", callers-2, time.Minute, time.Now())
			if assert.NoError(t, err) && d.Allowed {
				admitted.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	assert.Equal(t, int64(callers-2), admitted.Load())
	history := limHistory(t, srv, NewLimiterBackend(newClient(t, srv.Addr), prefix), "k")
	assert.Len(t, history, callers-2)
	assert.Equal(t, slices.Sorted(slices.Values(rec.times["k"])), history)
}

func TestLimiterBackendMalformedItem(t *testing.T) {
	srv := sharedServer(t)
	b := NewLimiterBackend(newClient(t, srv.Addr), uniquePrefix())
	for _, v := range []string{"garbage", "\x01short", "\x02" + strings.Repeat("x", 12), "\x01" + strings.Repeat("\xff", 12)} {
		srv.MustDo(t, "SET", b.itemKey("k"), v, "EX", 60)
		_, err := b.Admit(context.Background(), "k", 1, time.Minute, time.Now())
		require.ErrorIs(t, err, errLimMalformed, "%q", v)
	}
}

func TestLimiterBackendTooLarge(t *testing.T) {
	srv := sharedServer(t)
	client := newClient(t, srv.Addr)
	counts := new(counter)
	client.AddHook(counts)
	b := NewLimiterBackend(client, uniquePrefix(), WithLimiterMaxItemSize(1+12*100))
	_, err := b.Admit(context.Background(), "k", 101, time.Minute, time.Now())
	require.ErrorIs(t, err, stores.ErrTooLarge)
	cmds, _ := counts.take()
	assert.Empty(t, cmds, "nothing was sent")
	_, err = b.Admit(context.Background(), "k", 100, time.Minute, time.Now())
	require.NoError(t, err)
	_, err = NewLimiterBackend(client, "p:").Admit(context.Background(), "k", (DefaultMaxItemSize-1)/12+1, time.Minute, time.Now())
	require.ErrorIs(t, err, stores.ErrTooLarge, "the default bounds limits at 87,381")
}

func TestSplitNanos(t *testing.T) {
	for _, ns := range []int64{0, 1, 999_999_999, 1e9, -1, -1e9, -1e9 - 1, 1<<63 - 1, -1 << 63} {
		sec, nsec := splitNanos(ns)
		assert.GreaterOrEqual(t, nsec, int64(0), "%d", ns)
		assert.Less(t, nsec, int64(1e9), "%d", ns)
		assert.Equal(t, ns, sec*1e9+nsec, "%d", ns)
	}
}

func TestNewLimiterBackendPanics(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	tests := []struct {
		name string
		f    func()
		want string
	}{
		{"nil client", func() { NewLimiterBackend(nil, "p:") }, "redisstore.NewLimiterBackend expects a non-nil client"},
		{"long prefix", func() { NewLimiterBackend(client, strings.Repeat("p", 513)) }, "redisstore.NewLimiterBackend: prefix: 513 bytes, more than 512"},
		{"control in prefix", func() { NewLimiterBackend(client, "rl\x00") }, "redisstore.NewLimiterBackend: prefix(\"rl\\x00\"): control character at byte 2"},
		{"hash tag", func() { NewLimiterBackend(client, "rl:{login}:") }, "redisstore.NewLimiterBackend: prefix(\"rl:{login}:\"): holds a Redis Cluster hash tag, which would put every key in one slot"},
		{"tiny item size", func() { NewLimiterBackend(client, "p:", WithLimiterMaxItemSize(13)) }, "redisstore.NewLimiterBackend: WithLimiterMaxItemSize(13) expects more than 13 bytes and at most 512 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.want, tt.f)
		})
	}
	assert.NotPanics(t, func() { NewLimiterBackend(client, strings.Repeat("p", 512)) })
	assert.NotPanics(t, func() { NewLimiterBackend(client, "rate limit:") })
}
