package memcached

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/internal/memcachedtest"
	"github.com/securestack/ginsession/stores"
)

func TestExpiration(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 500_000_000, time.UTC)
	const day = 24 * time.Hour
	tests := []struct {
		name string
		exp  time.Time
		want int32
	}{
		{"past", now.Add(-time.Hour), expireNow},
		{"now", now, expireNow},
		{"zero time", time.Time{}, expireNow},
		{"1ns", now.Add(time.Nanosecond), 2},
		{"sub-second", now.Add(300 * time.Millisecond), 2},
		{"1s", now.Add(time.Second), 2},
		{"1.5s", now.Add(1500 * time.Millisecond), 3},
		{"1h", now.Add(time.Hour), 3601},
		{"30 days minus 1s is relative", now.Add(30*day - time.Second), maxRelative},
		{"30 days is absolute", now.Add(30 * day), int32(now.Add(30*day).Unix()) + 1},
		{"60 days is absolute", now.Add(60 * day), int32(now.Add(60*day).Unix()) + 1},
		{"whole-second absolute", time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), int32(time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC).Unix())},
		{"past 2038 is capped", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), 1<<31 - 1},
		{"far future", now.Add(1<<63 - 1), 1<<31 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := expiration(tt.exp, now)
			assert.Equal(t, tt.want, got)
			assert.NotZero(t, got, "0 means never expire")
			if got > maxRelative {
				assert.False(t, time.Unix(int64(got), 0).Before(tt.exp) && tt.exp.Before(maxExpiry), "absolute expiration before the expiry")
			}
		})
	}
}

// TestExpirationLimiterWindows checks the expirations of the
// LimiterBackend's items, which expire one window after the write: the
// same rule as the Store's, windows over 30 days included.
func TestExpirationLimiterWindows(t *testing.T) {
	const day = 24 * time.Hour
	for _, now := range []time.Time{time.Unix(1_800_000_000, 0), time.Unix(1_800_000_000, 250_000_000)} {
		tests := []struct {
			window time.Duration
			want   int32
		}{
			{time.Millisecond, 2},
			{time.Second, 2},
			{1500 * time.Millisecond, 3},
			{time.Minute, 61},
			{30*day - time.Second, maxRelative},
			// Past 30 days, memcached reads expirations as Unix
			// times: the end of the window, rounded up.
			{30 * day, 1_800_000_000 + 30*24*60*60 + int32(now.Nanosecond()+999_999_999)/1e9},
			{60 * day, 1_800_000_000 + 60*24*60*60 + int32(now.Nanosecond()+999_999_999)/1e9},
			{100 * 365 * day, 1<<31 - 1},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%v/%v", now.Nanosecond(), tt.window), func(t *testing.T) {
				assert.Equal(t, tt.want, expiration(now.Add(tt.window), now))
			})
		}
	}
}

// TestLimiterBackendLongWindow checks on the server that a window over 30
// days is sent as an absolute time: as relative seconds, memcached would
// read it as a time in 1970 and drop the history at once.
func TestLimiterBackendLongWindow(t *testing.T) {
	ctx := context.Background()
	srv := memcachedtest.Start(t)
	b := NewLimiterBackend(limClient(srv), "rl:long:")
	const window = 60 * 24 * time.Hour
	now := time.Now()
	d, err := b.Admit(ctx, "alice", 1, window, now)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	metas := srv.Metadump(t)
	require.Len(t, metas, 1)
	assert.InDelta(t, now.Add(window).Unix(), metas[0].Exp, 2, "server-side expiry is the absolute time")
	d, err = b.Admit(ctx, "alice", 1, window, now.Add(time.Hour))
	require.NoError(t, err)
	assert.False(t, d.Allowed, "the history is kept")
	assert.Equal(t, window-time.Hour, d.RetryAfter)
}

// TestPrefixRule checks that the Store and the LimiterBackend accept the
// same prefixes and explain a refusal in the same words.
func TestPrefixRule(t *testing.T) {
	c := memcache.New("127.0.0.1:1")
	tests := []struct {
		prefix string
		want   string // the refusal, after the function's name; "" accepts
	}{
		{"", ""},
		{"gs:", ""},
		{"rl:login:", ""},
		{"café:", ""}, // bytes over 0x7f are legal in keys
		{strings.Repeat("p", 207), ""},
		{strings.Repeat("p", 208), "prefix of 208 bytes, over the 207 that keep keys within memcached's 250"},
		{"my app:", `prefix "my app:" has a space or control character at byte 2`},
		{"app\n", `prefix "app\n" has a space or control character at byte 3`},
		{"app\x00", `prefix "app\x00" has a space or control character at byte 3`},
		{"app\x7f", `prefix "app\x7f" has a space or control character at byte 3`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.prefix), func(t *testing.T) {
			if tt.want == "" {
				assert.NotPanics(t, func() { New(c, WithPrefix(tt.prefix)) })
				assert.NotPanics(t, func() { NewLimiterBackend(c, tt.prefix) })
				return
			}
			assert.PanicsWithValue(t, "memcached.New: WithPrefix: "+tt.want, func() { New(c, WithPrefix(tt.prefix)) })
			assert.PanicsWithValue(t, "memcached.NewLimiterBackend: "+tt.want, func() { NewLimiterBackend(c, tt.prefix) })
			_, err := NewFromServers([]string{"127.0.0.1:1"}, WithPrefix(tt.prefix))
			assert.EqualError(t, err, "memcached.NewFromServers: WithPrefix: "+tt.want)
		})
	}
}

func TestKeys(t *testing.T) {
	c := memcache.New("127.0.0.1:1")
	key := testKey()
	s := New(c, WithPrefix("app:"))
	assert.Equal(t, "app:"+key.String(), s.key(key))
	b := NewLimiterBackend(c, "rl:")
	assert.Equal(t, "rl:"+stores.Key(sha256.Sum256([]byte("203.0.113.7"))).String(), b.itemKey("203.0.113.7"))
}

// opError is the error of a failed read on a connection, as net returns it.
func opError(err error) error {
	return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error // stores.ErrUnavailable, stores.ErrTooLarge or nil
	}{
		{"EOF", io.EOF, stores.ErrUnavailable},
		{"unexpected EOF", io.ErrUnexpectedEOF, stores.ErrUnavailable},
		{"reset", opError(syscall.ECONNRESET), stores.ErrUnavailable},
		{"broken pipe", &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}, stores.ErrUnavailable},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, stores.ErrUnavailable},
		{"timeout", opError(os.ErrDeadlineExceeded), stores.ErrUnavailable},
		{"connect timeout", &memcache.ConnectTimeoutError{Addr: &net.TCPAddr{}}, stores.ErrUnavailable},
		{"no servers", memcache.ErrNoServers, stores.ErrUnavailable},
		{"server error", memcache.ErrServerError, stores.ErrUnavailable},
		{"out of memory", errors.New(`memcache: unexpected response line from "add": "SERVER_ERROR out of memory storing object\r\n"`), stores.ErrUnavailable},
		{"too large", errors.New(`memcache: unexpected response line from "cas": "SERVER_ERROR object too large for cache\r\n"`), stores.ErrTooLarge},
		{"malformed key", memcache.ErrMalformedKey, nil},
		{"corrupt reply", errors.New("memcache: corrupt get result read"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fail("limiter get", tt.err)
			assert.ErrorIs(t, err, tt.err, "the cause is kept")
			assert.True(t, strings.HasPrefix(err.Error(), "memcached: limiter get: "), err.Error())
			for _, sentinel := range []error{stores.ErrUnavailable, stores.ErrTooLarge} {
				assert.Equal(t, sentinel == tt.want, errors.Is(err, sentinel), "errors.Is(%v, %v)", err, sentinel)
			}
		})
	}
}

func TestStaleRetry(t *testing.T) {
	// cmd fails with err for its first n calls, then succeeds.
	run := func(maxIdle, n int, err error) (calls int, got error) {
		c := client{mc: &memcache.Client{MaxIdleConns: maxIdle}}
		got = c.do("get", func() error {
			calls++
			if calls <= n {
				return err
			}
			return nil
		})
		return calls, got
	}
	tests := []struct {
		name      string
		maxIdle   int
		n         int
		err       error
		wantCalls int
		want      error // nil, or a sentinel the error matches
	}{
		{"every pooled connection dead", 8, 8, io.EOF, 9, nil},
		{"one more put back", 8, 9, opError(syscall.ECONNRESET), 10, nil},
		{"bound exhausted", 8, 100, io.EOF, 10, stores.ErrUnavailable},
		{"gomemcache's default pool", 0, 100, io.ErrUnexpectedEOF, 4, stores.ErrUnavailable},
		{"broken pipe", 2, 3, opError(syscall.EPIPE), 4, nil},
		{"timeout is not retried", 8, 100, opError(os.ErrDeadlineExceeded), 1, stores.ErrUnavailable},
		{"refused is not retried", 8, 100, opError(syscall.ECONNREFUSED), 1, stores.ErrUnavailable},
		{"answer", 8, 100, memcache.ErrCacheMiss, 1, memcache.ErrCacheMiss},
		{"cas conflict", 8, 100, memcache.ErrCASConflict, 1, memcache.ErrCASConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, err := run(tt.maxIdle, tt.n, tt.err)
			assert.Equal(t, tt.wantCalls, calls, "commands sent")
			if tt.want == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.want)
			}
		})
	}
	// A stale connection, then a refused dial: the server is down.
	c := client{mc: &memcache.Client{MaxIdleConns: 8}}
	var calls int
	err := c.do("get", func() error {
		calls++
		if calls == 1 {
			return io.EOF
		}
		return opError(syscall.ECONNREFUSED)
	})
	assert.Equal(t, 2, calls)
	assert.ErrorIs(t, err, stores.ErrUnavailable)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	// An answer after a stale connection is returned as it is.
	calls = 0
	err = c.do("get", func() error {
		calls++
		if calls == 1 {
			return io.EOF
		}
		return memcache.ErrNotStored
	})
	assert.Equal(t, memcache.ErrNotStored, err)
}

// TestServerErrorUnavailable fills a server that refuses to evict (-M):
// its "SERVER_ERROR out of memory" reply maps to stores.ErrUnavailable.
func TestServerErrorUnavailable(t *testing.T) {
	ctx := context.Background()
	srv := memcachedtest.Start(t, memcachedtest.WithMemory(2), memcachedtest.WithArgs("-M"))
	s := newStore(t, srv)
	rec := record("alice", bigData(100_000))
	var err error
	for range 100 {
		if err = s.Add(ctx, testKey(), rec, time.Now().Add(time.Hour)); err != nil {
			break
		}
	}
	require.Error(t, err, "2 MB hold no 100 items of 100 kB")
	assert.ErrorIs(t, err, stores.ErrUnavailable)
	assert.NotErrorIs(t, err, stores.ErrTooLarge)
	assert.Contains(t, err.Error(), "memcached: add: ")
	assert.Contains(t, err.Error(), "out of memory")
}
