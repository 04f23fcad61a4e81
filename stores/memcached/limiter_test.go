package memcached

import (
	"context"
	"errors"
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
	"github.com/securestack/ginsession/stores/storetest"
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

// TestLimiterConformance runs the conformance suite on two backends, two
// application instances with clients of their own, sharing one memcached.
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

// TestLimiterBackendKeys checks where items are stored: under the digest
// of the key, never the key itself. The suite checks that keys are
// independent.
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

// TestLimiterBackendContextDone checks that a done context sends nothing
// to memcached. The suite checks the error.
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
	var rec limRecorder
	start := make(chan struct{})
	for range callers {
		b := NewLimiterBackend(limClient(srv), "rl:conflict:", WithLimiterMaxAttempts(1))
		rec.attach(b)
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
	// Every admission is in the item, at the time it was recorded: none
	// was lost to a race.
	it, err := limClient(srv).Get(NewLimiterBackend(limClient(srv), "rl:conflict:").itemKey("k"))
	require.NoError(t, err)
	times, err := limDecode(it.Value)
	require.NoError(t, err)
	assert.Len(t, times, int(admitted.Load()))
	assert.Equal(t, slices.Sorted(slices.Values(rec.times["k"])), times)
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
