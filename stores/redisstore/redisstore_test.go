package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/internal/redistest"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/codec"
	"github.com/securestack/ginsession/stores/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		return storetest.Harness{Store: newStore(t, nil)}
	})
}

// TestConformanceWithWait runs the suite on a primary with a replica,
// every write waiting for the replica.
func TestConformanceWithWait(t *testing.T) {
	primary := redistest.Start(t)
	redistest.Start(t, redistest.WithReplicaOf(primary))
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		return storetest.Harness{Store: newStore(t, primary, WithWait(1, time.Second))}
	})
}

// sent runs op and returns the commands the store's client sent for it,
// and the round trips.
func sent(t *testing.T, c *counter, op func()) (map[string]int, int) {
	t.Helper()
	c.take()
	op()
	return c.take()
}

func TestCommandsPerOperation(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	s, c := countingStore(t, srv)
	key := testKey()
	exp := time.Now().Add(time.Hour)
	// Load the scripts, so that the counts below are the steady state.
	require.NoError(t, s.Add(ctx, key, record("alice", map[string]any{"n": 1}), exp))
	_, err := s.Get(ctx, key)
	require.NoError(t, err)
	require.NoError(t, s.Update(ctx, key, mergeKey("warm", 1)))
	require.NoError(t, s.Touch(ctx, key, exp))

	var it stores.Item
	cmds, trips := sent(t, c, func() {
		it, err = s.Get(ctx, key)
		require.NoError(t, err)
	})
	assert.Equal(t, map[string]int{"get": 1}, cmds, "Get")
	assert.Equal(t, 1, trips, "Get")

	cmds, trips = sent(t, c, func() { require.NoError(t, s.UpdateFrom(ctx, key, it, mergeKey("a", 1))) })
	assert.Equal(t, map[string]int{"evalsha": 1}, cmds, "UpdateFrom")
	assert.Equal(t, 1, trips, "UpdateFrom")

	cmds, _ = sent(t, c, func() { require.NoError(t, s.Update(ctx, key, mergeKey("b", 2))) })
	assert.Equal(t, map[string]int{"get": 1, "evalsha": 1}, cmds, "Update: read and swap")

	// A stale UpdateFrom costs its swap, then an Update.
	cmds, _ = sent(t, c, func() { require.NoError(t, s.UpdateFrom(ctx, key, it, mergeKey("c", 3))) })
	assert.Equal(t, map[string]int{"get": 1, "evalsha": 2}, cmds, "stale UpdateFrom")
	got, err := s.Get(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"n": 1, "warm": 1, "a": 1, "b": 2, "c": 3}, got.Record.Data)

	cmds, _ = sent(t, c, func() { require.NoError(t, s.Touch(ctx, key, exp.Add(time.Hour))) })
	assert.Equal(t, map[string]int{"evalsha": 1}, cmds, "Touch")
	got, err = s.Get(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, exp.Add(time.Hour).UnixMilli(), got.ExpiresAt.UnixMilli(), "a plain GET sees the touch")

	cmds, _ = sent(t, c, func() { require.NoError(t, s.Add(ctx, testKey(), record("bob", nil), exp)) })
	assert.Equal(t, map[string]int{"set": 1}, cmds, "Add")

	cmds, _ = sent(t, c, func() { require.ErrorIs(t, s.Add(ctx, key, record("bob", nil), exp), stores.ErrExists) })
	assert.Equal(t, map[string]int{"set": 1}, cmds, "Add over a live item")

	cmds, _ = sent(t, c, func() { require.NoError(t, s.Delete(ctx, key)) })
	assert.Equal(t, map[string]int{"del": 1}, cmds, "Delete")

	cmds, _ = sent(t, c, func() { require.ErrorIs(t, s.UpdateFrom(ctx, key, it, mergeKey("d", 4)), stores.ErrNotFound) })
	assert.Equal(t, map[string]int{"evalsha": 1}, cmds, "UpdateFrom of a deleted item")
}

func TestCommandsPerOperationWithWait(t *testing.T) {
	ctx := context.Background()
	primary := redistest.Start(t)
	redistest.Start(t, redistest.WithReplicaOf(primary))
	s, c := countingStore(t, primary, WithWait(1, time.Second))
	key := testKey()
	exp := time.Now().Add(time.Hour)
	cmds, trips := sent(t, c, func() { require.NoError(t, s.Add(ctx, key, record("alice", nil), exp)) })
	assert.Equal(t, map[string]int{"set": 1, "wait": 1}, cmds, "Add")
	assert.Equal(t, 1, trips, "Add and WAIT in one round trip")

	it, err := s.Get(ctx, key)
	require.NoError(t, err)
	require.NoError(t, s.Update(ctx, key, mergeKey("warm", 1))) // loads the scripts
	require.NoError(t, s.Touch(ctx, key, exp))
	it, err = s.Get(ctx, key)
	require.NoError(t, err)
	cmds, trips = sent(t, c, func() { require.NoError(t, s.UpdateFrom(ctx, key, it, mergeKey("a", 1))) })
	assert.Equal(t, map[string]int{"evalsha": 1, "wait": 1}, cmds, "UpdateFrom")
	assert.Equal(t, 1, trips, "UpdateFrom")

	cmds, trips = sent(t, c, func() { require.NoError(t, s.Touch(ctx, key, exp.Add(time.Hour))) })
	assert.Equal(t, map[string]int{"evalsha": 1, "wait": 1}, cmds, "Touch")
	assert.Equal(t, 1, trips, "Touch")
	cmds, trips = sent(t, c, func() { require.NoError(t, s.Delete(ctx, key)) })
	assert.Equal(t, map[string]int{"del": 1, "wait": 1}, cmds, "Delete")
	assert.Equal(t, 1, trips, "Delete")
}

func TestNoScript(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	for _, opts := range [][]Option{nil, {WithWait(1, 20*time.Millisecond)}} {
		name := "plain"
		if opts != nil {
			name = "WithWait"
		}
		t.Run(name, func(t *testing.T) {
			s, c := countingStore(t, srv, opts...)
			key := testKey()
			err := s.Add(ctx, key, record("alice", map[string]any{"n": 1}), time.Now().Add(time.Hour))
			if opts != nil {
				require.ErrorIs(t, err, ErrNotReplicated, "no replica")
			} else {
				require.NoError(t, err)
			}
			for _, flush := range []func(){
				func() { srv.MustDo(t, "SCRIPT", "FLUSH") },
				func() {
					srv.Restart(t)
					// An empty server, as after a restart without
					// persistence: write the item again.
					require.NoError(t, New(newClient(t, srv.Addr), WithPrefix(s.prefix)).Add(ctx, key, record("alice", map[string]any{"n": 1}), time.Now().Add(time.Hour)))
				},
			} {
				flush()
				var it stores.Item
				cmds, _ := sent(t, c, func() {
					var err error
					it, err = s.Get(ctx, key)
					require.NoError(t, err)
				})
				assert.Equal(t, map[string]int{"get": 1}, cmds, "Get needs no script")
				assert.Equal(t, map[string]any{"n": 1}, it.Record.Data)

				srv.MustDo(t, "SCRIPT", "FLUSH")
				cmds, _ = sent(t, c, func() {
					err := s.UpdateFrom(ctx, key, it, mergeKey("a", 1))
					if opts != nil {
						require.ErrorIs(t, err, ErrNotReplicated)
					} else {
						require.NoError(t, err)
					}
				})
				want := map[string]int{"evalsha": 1, "eval": 1}
				if opts != nil {
					want["wait"] = 2
				}
				assert.Equal(t, want, cmds, "UpdateFrom after SCRIPT FLUSH")
				it, err := s.Get(ctx, key)
				require.NoError(t, err)
				assert.Equal(t, 1, it.Record.Data["a"])
			}
		})
	}
}

// bigData returns session data of about n bytes.
func bigData(n int) map[string]any {
	return map[string]any{"blob": make([]byte, n)}
}

func TestTooLarge(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	s, c := countingStore(t, srv, WithMaxItemSize(64<<10))
	t.Run("Add", func(t *testing.T) {
		key := testKey()
		cmds, _ := sent(t, c, func() {
			err := s.Add(ctx, key, record("alice", bigData(100<<10)), time.Now().Add(time.Hour))
			require.ErrorIs(t, err, stores.ErrTooLarge)
			assert.NotErrorIs(t, err, stores.ErrUnavailable)
			assert.Contains(t, err.Error(), "WithMaxItemSize")
		})
		assert.Empty(t, cmds, "an oversized value is not sent")
		_, err := s.Get(ctx, key)
		require.ErrorIs(t, err, stores.ErrNotFound)
	})
	t.Run("Update", func(t *testing.T) {
		key := testKey()
		exp := time.Now().Add(time.Hour)
		require.NoError(t, s.Add(ctx, key, record("alice", map[string]any{"n": 1}), exp))
		before, err := s.Get(ctx, key)
		require.NoError(t, err)
		cmds, _ := sent(t, c, func() {
			err := s.Update(ctx, key, func(cur stores.Item) (*stores.Record, time.Time, error) {
				return record("alice", bigData(100<<10)), exp.Add(time.Hour), nil
			})
			require.ErrorIs(t, err, stores.ErrTooLarge)
		})
		assert.Equal(t, map[string]int{"get": 1}, cmds, "only the read is sent")
		err = s.UpdateFrom(ctx, key, before, func(cur stores.Item) (*stores.Record, time.Time, error) {
			return record("alice", bigData(100<<10)), exp.Add(time.Hour), nil
		})
		require.ErrorIs(t, err, stores.ErrTooLarge)
		it, err := s.Get(ctx, key)
		require.NoError(t, err, "the old item must survive")
		assert.Equal(t, map[string]any{"n": 1}, it.Record.Data)
		assert.Equal(t, before.Version, it.Version)
		assert.Equal(t, before.ExpiresAt, it.ExpiresAt)
	})
	t.Run("Boundary", func(t *testing.T) {
		// The largest record that fits is stored and read back; one
		// byte more is refused.
		empty, err := codec.Append(nil, record("alice", bigData(0)), 0, 0)
		require.NoError(t, err)
		n := 64<<10 - headerSize - len(empty) - 32
		exp := time.Now().Add(time.Hour)
		size := func(n int) int {
			b, err := codec.Append(nil, record("alice", bigData(n)), unixNano(exp), time.Now().UnixNano())
			require.NoError(t, err)
			return headerSize + len(b)
		}
		for size(n+1) <= 64<<10 {
			n++
		}
		key := testKey()
		require.NoError(t, s.Add(ctx, key, record("alice", bigData(n)), exp))
		it, err := s.Get(ctx, key)
		require.NoError(t, err)
		assert.Len(t, it.Record.Data["blob"], n)
		require.ErrorIs(t, s.Add(ctx, testKey(), record("alice", bigData(n+1)), exp), stores.ErrTooLarge)
	})
}

func TestDefaultMaxItemSize(t *testing.T) {
	s := newStore(t, nil)
	err := s.Add(context.Background(), testKey(), record("alice", bigData(DefaultMaxItemSize)), time.Now().Add(time.Hour))
	require.ErrorIs(t, err, stores.ErrTooLarge)
	require.NoError(t, s.Add(context.Background(), testKey(), record("alice", bigData(DefaultMaxItemSize-1000)), time.Now().Add(time.Hour)))
}

func TestOutOfMemory(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.WithArgs("--maxmemory-policy", "noeviction"))
	s := newStore(t, srv)
	key, other := testKey(), testKey()
	exp := time.Now().Add(time.Hour)
	require.NoError(t, s.Add(ctx, key, record("alice", map[string]any{"n": 1}), exp))
	require.NoError(t, s.Add(ctx, other, record("bob", nil), exp))
	before, err := s.Get(ctx, key)
	require.NoError(t, err)
	// Warm the swap script up: the server may not take a new one once
	// full.
	require.NoError(t, s.UpdateFrom(ctx, other, mustGet(t, s, other), mergeKey("warm", 1)))

	// An idle server uses about 0.9 MB: fill the rest of 1 MB.
	srv.MustDo(t, "CONFIG", "SET", "maxmemory", "1mb")
	for i := 0; ; i++ {
		_, err := srv.Do("SET", fmt.Sprintf("filler:%d", i), strings.Repeat("x", 16<<10))
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "OOM "), "%v", err)
			break
		}
		require.Less(t, i, 1000, "the server never filled up")
	}

	checkOOM := func(name string, err error) {
		t.Helper()
		require.Error(t, err, name)
		assert.ErrorIs(t, err, ErrOutOfMemory, name)
		assert.ErrorIs(t, err, stores.ErrUnavailable, name)
		assert.NotErrorIs(t, err, stores.ErrNotFound, name)
		assert.Contains(t, err.Error(), "redisstore: ", name)
	}
	checkOOM("Add", s.Add(ctx, testKey(), record("carol", nil), exp))
	checkOOM("Update", s.Update(ctx, key, mergeKey("a", 1)))
	checkOOM("UpdateFrom", s.UpdateFrom(ctx, key, before, mergeKey("a", 1)))

	// Nothing was lost or half-written, and reads still work.
	it, err := s.Get(ctx, key)
	require.NoError(t, err, "reads work on a full server")
	assert.Equal(t, map[string]any{"n": 1}, it.Record.Data)
	assert.Equal(t, before.Version, it.Version)
	// PEXPIREAT and DEL free memory or do not grow it: Redis takes them.
	require.NoError(t, s.Touch(ctx, key, exp.Add(time.Hour)), "Touch on a full server")
	require.NoError(t, s.Delete(ctx, other), "Delete on a full server")

	// Once memory is available again, writes work.
	srv.MustDo(t, "CONFIG", "SET", "maxmemory", "0")
	require.NoError(t, s.Update(ctx, key, mergeKey("a", 1)))
	require.NoError(t, s.Add(ctx, testKey(), record("carol", nil), exp))
}

func mustGet(t *testing.T, s *Store, key stores.Key) stores.Item {
	t.Helper()
	it, err := s.Get(context.Background(), key)
	require.NoError(t, err)
	return it
}

// mergeKey returns an UpdateFunc merging k=v into the data.
func mergeKey(k string, v any) stores.UpdateFunc {
	return func(cur stores.Item) (*stores.Record, time.Time, error) {
		data, err := stores.MergeData(cur.Record.Data, map[string]any{k: v})
		if err != nil {
			return nil, time.Time{}, err
		}
		next := *cur.Record
		next.Data = data
		return &next, cur.ExpiresAt, nil
	}
}

// allOps runs every operation of s and returns their errors by name.
func allOps(ctx context.Context, s *Store, key stores.Key) map[string]error {
	_, getErr := s.Get(ctx, key)
	from := stores.Item{Record: record("alice", nil), Version: 1}
	return map[string]error{
		"Get":        getErr,
		"Add":        s.Add(ctx, testKey(), record("bob", nil), time.Now().Add(time.Hour)),
		"Update":     s.Update(ctx, key, func(cur stores.Item) (*stores.Record, time.Time, error) { return cur.Record, cur.ExpiresAt, nil }),
		"UpdateFrom": s.UpdateFrom(ctx, key, from, func(cur stores.Item) (*stores.Record, time.Time, error) { return cur.Record, cur.ExpiresAt, nil }),
		"Touch":      s.Touch(ctx, key, time.Now().Add(time.Hour)),
		"Delete":     s.Delete(ctx, key),
	}
}

// recommendedClient returns a client with the package documentation's
// recommended settings.
func recommendedClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:                  addr,
		DialTimeout:           500 * time.Millisecond,
		ReadTimeout:           500 * time.Millisecond,
		WriteTimeout:          500 * time.Millisecond,
		ContextTimeoutEnabled: true,
		MaxRetries:            1,
		DialerRetries:         1,
		PoolSize:              64,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	s := New(recommendedClient(t, srv.Addr))
	key := testKey()
	require.NoError(t, s.Add(ctx, key, record("alice", nil), time.Now().Add(time.Hour)))

	srv.Stop(t)
	start := time.Now()
	errs := allOps(ctx, s, key)
	for name, err := range errs {
		assert.ErrorIs(t, err, stores.ErrUnavailable, name)
		assert.NotErrorIs(t, err, stores.ErrNotFound, name)
		assert.NotErrorIs(t, err, ErrOutOfMemory, name)
	}
	assert.Less(t, time.Since(start), time.Second, "a refused connection fails fast with the recommended settings")
	_, err := s.Get(ctx, key)
	assert.Contains(t, err.Error(), "redisstore: get: ")

	srv.Restart(t) // an empty server on the same address, no scripts loaded
	_, err = s.Get(ctx, key)
	require.ErrorIs(t, err, stores.ErrNotFound, "works again once the server is back")
	require.NoError(t, s.Add(ctx, key, record("alice", nil), time.Now().Add(time.Hour)))
	require.NoError(t, s.Update(ctx, key, mergeKey("a", 1)))
	it, err := s.Get(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, 1, it.Record.Data["a"])

	// And again after a script flush.
	srv.MustDo(t, "SCRIPT", "FLUSH")
	require.NoError(t, s.UpdateFrom(ctx, key, it, mergeKey("b", 2)))
	it, err = s.Get(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, 2, it.Record.Data["b"])
}

func TestUnavailableDefaultClient(t *testing.T) {
	// go-redis's defaults retry a refused dial for a while (the package
	// documentation gives figures); the error is the same.
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	s := New(c)
	srv.Stop(t)
	start := time.Now()
	_, err := s.Get(context.Background(), testKey())
	require.ErrorIs(t, err, stores.ErrUnavailable)
	t.Logf("a Get against a refused port took %v with go-redis's defaults", time.Since(start))
}

func TestUnavailableHungServer(t *testing.T) {
	// A server that accepts connections but never answers: the client's
	// ReadTimeout bounds the wait.
	srv := redistest.Start(t)
	opts := clientOptions(srv.Addr)
	opts.ReadTimeout, opts.WriteTimeout, opts.MaxRetries = 100*time.Millisecond, 100*time.Millisecond, -1
	c := redis.NewClient(opts)
	defer c.Close()
	s := New(c, WithPrefix(uniquePrefix()))
	key := testKey()
	require.NoError(t, s.Add(context.Background(), key, record("alice", nil), time.Now().Add(time.Hour)))
	srv.Pause(t)
	defer srv.Resume(t)
	start := time.Now()
	_, err := s.Get(context.Background(), key)
	require.ErrorIs(t, err, stores.ErrUnavailable)
	assert.Less(t, time.Since(start), time.Second)

	// A request deadline bounds it too (ContextTimeoutEnabled), and is
	// reported as the context's error.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	opts.ReadTimeout = 10 * time.Second
	c2 := redis.NewClient(opts)
	defer c2.Close()
	start = time.Now()
	_, err = New(c2).Get(ctx, key)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), time.Second)
}

func TestContextCanceledSendsNothing(t *testing.T) {
	srv := sharedServer(t)
	s, c := countingStore(t, srv)
	key := testKey()
	require.NoError(t, s.Add(context.Background(), key, record("alice", nil), time.Now().Add(time.Hour)))

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, tt := range []struct {
		ctx  context.Context
		want error
	}{{canceled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		cmds, _ := sent(t, c, func() {
			for name, err := range allOps(tt.ctx, s, key) {
				assert.Equal(t, tt.want, err, name)
			}
		})
		assert.Empty(t, cmds)
	}
	_, err := s.Get(context.Background(), key)
	require.NoError(t, err)
}

// pttl returns the raw key's remaining lifetime (PTTL: -2 missing, -1 no
// expiry).
func pttl(t *testing.T, srv *redistest.Server, s *Store, key stores.Key) int64 {
	t.Helper()
	return srv.MustDo(t, "PTTL", s.key(key)).(int64)
}

func TestExpiryInPastNeverImmortal(t *testing.T) {
	ctx := context.Background()
	srv := sharedServer(t)
	s := newStore(t, srv)
	now := time.Now()
	pasts := map[string]time.Time{
		"now":                  now,
		"1ns ago":              now.Add(-time.Nanosecond),
		"an hour ago":          now.Add(-time.Hour),
		"zero time":            {},
		"Unix epoch":           time.Unix(0, 0),
		"1ms after the epoch":  time.UnixMilli(1),
		"before 1970":          time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC),
		"far past":             time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC),
		"sub-millisecond soon": now.Add(-500 * time.Microsecond),
	}
	for name, exp := range pasts {
		t.Run(name, func(t *testing.T) {
			t.Run("Add", func(t *testing.T) {
				key := testKey()
				require.NoError(t, s.Add(ctx, key, record("alice", nil), exp))
				assert.Equal(t, int64(-2), pttl(t, srv, s, key), "the key must not exist")
				_, err := s.Get(ctx, key)
				require.ErrorIs(t, err, stores.ErrNotFound)
				require.NoError(t, s.Add(ctx, key, record("bob", nil), time.Now().Add(time.Hour)), "a dead item does not block Add")
			})
			t.Run("AddOverLive", func(t *testing.T) {
				key := testKey()
				require.NoError(t, s.Add(ctx, key, record("alice", nil), time.Now().Add(time.Hour)))
				require.ErrorIs(t, s.Add(ctx, key, record("bob", nil), exp), stores.ErrExists)
				assert.Equal(t, "alice", mustGet(t, s, key).Record.UserID)
			})
			t.Run("Touch", func(t *testing.T) {
				key := testKey()
				require.NoError(t, s.Add(ctx, key, record("alice", nil), time.Now().Add(time.Hour)))
				require.NoError(t, s.Touch(ctx, key, exp))
				assert.Equal(t, int64(-2), pttl(t, srv, s, key))
			})
			t.Run("Update", func(t *testing.T) {
				key := testKey()
				require.NoError(t, s.Add(ctx, key, record("alice", nil), time.Now().Add(time.Hour)))
				require.NoError(t, s.Update(ctx, key, func(cur stores.Item) (*stores.Record, time.Time, error) {
					return cur.Record, exp, nil
				}))
				assert.Equal(t, int64(-2), pttl(t, srv, s, key))
			})
		})
	}
	// A few milliseconds ahead: the key lives, with a TTL, and is gone
	// soon after.
	key := testKey()
	exp := time.Now().Add(30 * time.Millisecond)
	require.NoError(t, s.Add(ctx, key, record("alice", nil), exp))
	if ttl := pttl(t, srv, s, key); ttl != -2 {
		assert.Positive(t, ttl, "a live key always has a TTL")
	}
	time.Sleep(time.Until(exp) + 5*time.Millisecond)
	assert.Equal(t, int64(-2), pttl(t, srv, s, key))
}

func TestExpiryExact(t *testing.T) {
	ctx := context.Background()
	srv := sharedServer(t)
	s := newStore(t, srv)
	for _, exp := range []time.Time{
		time.Now().Add(time.Hour),
		time.Now().Add(time.Hour).Truncate(time.Second), // sent as EXAT by go-redis
		time.Now().Add(time.Hour).Truncate(time.Millisecond).Add(999_999),
		time.Date(2100, 1, 1, 0, 0, 0, 1_500_000, time.UTC),
	} {
		key := testKey()
		require.NoError(t, s.Add(ctx, key, record("alice", nil), exp))
		want := exp.Truncate(time.Millisecond)
		assert.Equal(t, want.UnixMilli(), srv.MustDo(t, "PEXPIRETIME", s.key(key)), "the server's expiry, rounded down to the millisecond")
		it := mustGet(t, s, key)
		assert.True(t, it.ExpiresAt.Equal(want), "ExpiresAt = %v, want %v", it.ExpiresAt, want)

		touched := exp.Add(time.Minute + 123456789)
		require.NoError(t, s.Touch(ctx, key, touched))
		it = mustGet(t, s, key)
		assert.True(t, it.ExpiresAt.Equal(touched.Truncate(time.Millisecond)), "after Touch: %v", it.ExpiresAt)
	}
}

func TestFarFutureExpiry(t *testing.T) {
	ctx := context.Background()
	srv := sharedServer(t)
	s := newStore(t, srv)
	end := time.Unix(0, 1<<63-1).Truncate(time.Millisecond) // 2262, as in the memory store
	for name, exp := range map[string]time.Time{
		"60 days":   time.Now().Add(60 * 24 * time.Hour),
		"2262":      time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC),
		"year 3000": time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
		"max time":  time.Unix(1<<62, 0),
	} {
		t.Run(name, func(t *testing.T) {
			key := testKey()
			require.NoError(t, s.Add(ctx, key, record("alice", nil), exp))
			want := exp.Truncate(time.Millisecond)
			if want.After(end) {
				want = end
			}
			it := mustGet(t, s, key)
			assert.True(t, it.ExpiresAt.Equal(want), "ExpiresAt = %v, want %v", it.ExpiresAt, want)
			assert.Positive(t, pttl(t, srv, s, key))
			require.NoError(t, s.Touch(ctx, key, exp))
			require.NoError(t, s.Update(ctx, key, mergeKey("a", 1)))
			it = mustGet(t, s, key)
			assert.True(t, it.ExpiresAt.Equal(want), "after Touch and Update: %v", it.ExpiresAt)
		})
	}
}

func TestKeyWithoutExpiry(t *testing.T) {
	// A key written by something else without an expiry reads as living
	// until the end of the store's time.
	srv := sharedServer(t)
	s := newStore(t, srv)
	key := testKey()
	header := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 7), math.MaxUint64) // version 7, expiry -1
	b, err := codec.Append(header, record("alice", nil), 0, 0)
	require.NoError(t, err)
	srv.MustDo(t, "SET", s.key(key), string(b))
	it := mustGet(t, s, key)
	assert.True(t, it.ExpiresAt.Equal(maxExpiry.Truncate(time.Millisecond)), "%v", it.ExpiresAt)
	assert.Equal(t, uint64(7), it.Version)
}

var dumpKey = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

func TestDumpHoldsOnlyDigests(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	const prefix = "app1:"
	s := New(newClient(t, srv.Addr), WithPrefix(prefix))
	ids := map[string]bool{}
	for i := range 20 {
		id := fmt.Sprintf("raw-session-id-%02d-secret", i)
		ids[id] = true
		key := stores.Key(sha256.Sum256([]byte(id)))
		require.NoError(t, s.Add(ctx, key, record("alice", map[string]any{"i": i}), time.Now().Add(time.Hour)))
		require.NoError(t, s.Touch(ctx, key, time.Now().Add(2*time.Hour)))
		require.NoError(t, s.Update(ctx, key, mergeKey("j", i)))
		assert.Equal(t, prefix+key.String(), s.key(key))
	}
	dump := srv.Dump(t)
	require.Len(t, dump, 20)
	for k, v := range dump {
		rest, ok := strings.CutPrefix(k, prefix)
		require.True(t, ok, "key %q lacks the prefix", k)
		assert.Regexp(t, dumpKey, rest)
		for id := range ids {
			assert.NotContains(t, k, id)
			assert.NotContains(t, string(v), id, "a raw ID in a value")
		}
	}
}

func TestDefaultPrefix(t *testing.T) {
	srv := redistest.Start(t)
	s := New(newClient(t, srv.Addr))
	key := testKey()
	require.NoError(t, s.Add(context.Background(), key, record("alice", nil), time.Now().Add(time.Hour)))
	assert.Contains(t, srv.Dump(t), DefaultPrefix+key.String())
}

func TestVersions(t *testing.T) {
	// Versions are random: an item deleted and added again under the same
	// key gets a new one, so an UpdateFrom from before the deletion does
	// not apply to the new item (ABA).
	ctx := context.Background()
	s := newStore(t, nil)
	key := testKey()
	exp := time.Now().Add(time.Hour)
	require.NoError(t, s.Add(ctx, key, record("alice", map[string]any{"n": 1}), exp))
	old := mustGet(t, s, key)
	require.NotZero(t, old.Version)
	require.NoError(t, s.Delete(ctx, key))
	require.NoError(t, s.Add(ctx, key, record("alice", map[string]any{"n": 2}), exp))
	fresh := mustGet(t, s, key)
	require.NotEqual(t, old.Version, fresh.Version)

	var calls []int
	require.NoError(t, s.UpdateFrom(ctx, key, old, func(cur stores.Item) (*stores.Record, time.Time, error) {
		calls = append(calls, cur.Record.Data["n"].(int))
		return mergeKey("seen", cur.Record.Data["n"])(cur)
	}))
	assert.Equal(t, []int{1, 2}, calls, "the stale read is tried, refused, and the item read again")
	assert.Equal(t, map[string]any{"n": 2, "seen": 2}, mustGet(t, s, key).Record.Data)

	// Every write gets a new version.
	seen := map[uint64]bool{}
	for range 100 {
		require.NoError(t, s.Update(ctx, key, mergeKey("x", 1)))
		v := mustGet(t, s, key).Version
		require.False(t, seen[v], "version %d repeated", v)
		seen[v] = true
	}
}

func TestReplayedWritesApplyOnce(t *testing.T) {
	// A write whose reply is lost is sent again by go-redis (MaxRetries):
	// the second copy must neither fail nor apply the change twice.
	ctx := context.Background()
	srv := sharedServer(t)
	s, c := countingStore(t, srv)
	key := testKey()
	exp := time.Now().Add(time.Hour)
	require.NoError(t, s.Add(ctx, key, record("alice", map[string]any{"n": 0}), exp))
	mustGet(t, s, key)
	require.NoError(t, s.Update(ctx, key, mergeKey("warm", 1))) // loads the scripts

	c.mu.Lock()
	c.replay = map[string]bool{"set": true, "evalsha": true}
	c.mu.Unlock()

	other := testKey()
	require.NoError(t, s.Add(ctx, other, record("bob", nil), exp), "a replayed Add is not ErrExists")
	assert.Equal(t, "bob", mustGet(t, s, other).Record.UserID)

	increment := func(cur stores.Item) (*stores.Record, time.Time, error) {
		data, err := stores.MergeData(cur.Record.Data, map[string]any{"n": cur.Record.Data["n"].(int) + 1})
		if err != nil {
			return nil, time.Time{}, err
		}
		next := *cur.Record
		next.Data = data
		return &next, cur.ExpiresAt, nil
	}
	require.NoError(t, s.Update(ctx, key, increment))
	require.NoError(t, s.UpdateFrom(ctx, key, mustGet(t, s, key), increment))
	assert.Equal(t, 2, mustGet(t, s, key).Record.Data["n"], "each increment applied once")
}

func TestCorruptItem(t *testing.T) {
	ctx := context.Background()
	srv := sharedServer(t)
	s := newStore(t, srv)
	for name, value := range map[string]string{
		"garbage": "\x00\x00\x00\x00\x00\x00\x00\x01\x02\xff\xff garbage",
		"short":   "abc",
		"version": "12345678",
	} {
		t.Run(name, func(t *testing.T) {
			key := testKey()
			srv.MustDo(t, "SET", s.key(key), value, "EX", 60)
			_, err := s.Get(ctx, key)
			require.ErrorIs(t, err, codec.ErrMalformed)
			assert.NotErrorIs(t, err, stores.ErrNotFound)
			called := false
			err = s.Update(ctx, key, func(cur stores.Item) (*stores.Record, time.Time, error) {
				called = true
				return cur.Record, cur.ExpiresAt, nil
			})
			require.ErrorIs(t, err, codec.ErrMalformed)
			assert.False(t, called)
			require.NoError(t, s.Delete(ctx, key), "a corrupt item can be deleted")
		})
	}
	// A key of another type is an error, not "not found".
	key := testKey()
	srv.MustDo(t, "LPUSH", s.key(key), "x")
	_, err := s.Get(ctx, key)
	require.Error(t, err)
	assert.NotErrorIs(t, err, stores.ErrNotFound)
	assert.NotErrorIs(t, err, stores.ErrUnavailable)
	assert.Contains(t, err.Error(), "WRONGTYPE")
}

func TestUnsupportedValue(t *testing.T) {
	s := newStore(t, nil)
	key := testKey()
	err := s.Add(context.Background(), key, record("alice", map[string]any{"ch": make(chan int)}), time.Now().Add(time.Hour))
	var ute *stores.UnsupportedTypeError
	require.ErrorAs(t, err, &ute)
	assert.Equal(t, "ch", ute.Key)
	_, err = s.Get(context.Background(), key)
	require.ErrorIs(t, err, stores.ErrNotFound)
}

func TestConcurrentMergeNoConflict(t *testing.T) {
	const goroutines, perGoroutine = 50, 20
	// Instances are Stores with clients of their own, as separate
	// processes would have: their Updates of one key contend through the
	// swap script, while those of one instance take turns.
	for _, instances := range []int{1, 5} {
		t.Run(fmt.Sprintf("instances=%d", instances), func(t *testing.T) {
			ctx := context.Background()
			srv := sharedServer(t)
			prefix := uniquePrefix()
			ss := make([]*Store, instances)
			for i := range ss {
				ss[i] = New(newClient(t, srv.Addr), WithPrefix(prefix))
			}
			key := testKey()
			require.NoError(t, ss[0].Add(ctx, key, record("alice", map[string]any{}), time.Now().Add(time.Hour)))
			var wg sync.WaitGroup
			errs := make(chan error, goroutines*perGoroutine)
			start := time.Now()
			for g := range goroutines {
				s := ss[g%instances]
				wg.Go(func() {
					for i := range perGoroutine {
						if err := s.Update(ctx, key, mergeKey(fmt.Sprintf("%d-%d", g, i), i)); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err) // ErrConflict included: the retry bound must absorb this load
			}
			t.Logf("%d updates of one key through %d instances in %v", goroutines*perGoroutine, instances, time.Since(start))
			assert.Len(t, mustGet(t, ss[0], key).Record.Data, goroutines*perGoroutine)
			for _, s := range ss {
				assert.Zero(t, s.locks.Len(), "key locks left behind")
			}
		})
	}
}

func TestUpdateConflict(t *testing.T) {
	ctx := context.Background()
	srv := sharedServer(t)
	prefix := uniquePrefix()
	other := New(newClient(t, srv.Addr), WithPrefix(prefix))
	key := testKey()

	// interfere returns an UpdateFunc that lets another writer change
	// the item during its first n calls.
	interfere := func(n int, calls *int) stores.UpdateFunc {
		return func(cur stores.Item) (*stores.Record, time.Time, error) {
			*calls++
			if *calls <= n {
				require.NoError(t, other.Update(ctx, key, func(cur stores.Item) (*stores.Record, time.Time, error) {
					return record("other", nil), cur.ExpiresAt, nil
				}))
			}
			return record("mine", nil), time.Now().Add(time.Hour), nil
		}
	}
	require.NoError(t, other.Add(ctx, key, record("alice", nil), time.Now().Add(time.Hour)))

	t.Run("Exhausted", func(t *testing.T) {
		s := New(newClient(t, srv.Addr), WithPrefix(prefix), WithMaxAttempts(5))
		var calls int
		err := s.Update(ctx, key, interfere(100, &calls))
		require.ErrorIs(t, err, stores.ErrConflict)
		assert.Equal(t, 5, calls)
		assert.Equal(t, "other", mustGet(t, s, key).Record.UserID)
	})
	t.Run("Retried", func(t *testing.T) {
		s := New(newClient(t, srv.Addr), WithPrefix(prefix), WithMaxAttempts(5))
		var calls int
		require.NoError(t, s.Update(ctx, key, interfere(4, &calls)))
		assert.Equal(t, 5, calls)
		assert.Equal(t, "mine", mustGet(t, s, key).Record.UserID)
	})
	t.Run("UpdateFromThenUpdate", func(t *testing.T) {
		s := New(newClient(t, srv.Addr), WithPrefix(prefix), WithMaxAttempts(5))
		var calls int
		// The first call is UpdateFrom's, the other five Update's.
		err := s.UpdateFrom(ctx, key, mustGet(t, s, key), interfere(100, &calls))
		require.ErrorIs(t, err, stores.ErrConflict)
		assert.Equal(t, 6, calls)
	})
	t.Run("ContextBetweenAttempts", func(t *testing.T) {
		s := New(newClient(t, srv.Addr), WithPrefix(prefix))
		ctx, cancel := context.WithCancel(ctx)
		var calls int
		fn := interfere(100, &calls)
		err := s.Update(ctx, key, func(cur stores.Item) (*stores.Record, time.Time, error) {
			cancel()
			return fn(cur)
		})
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 1, calls)
	})
}

func TestTouchSeenByOtherInstances(t *testing.T) {
	// Redis's TTL is the authority: a Touch by one instance is what every
	// instance's Get reports, with no in-process cache.
	ctx := context.Background()
	srv := sharedServer(t)
	prefix := uniquePrefix()
	a := New(newClient(t, srv.Addr), WithPrefix(prefix))
	b := New(newClient(t, srv.Addr), WithPrefix(prefix))
	key := testKey()
	require.NoError(t, a.Add(ctx, key, record("alice", nil), time.Now().Add(time.Minute)))
	touched := time.Now().Add(time.Hour)
	require.NoError(t, a.Touch(ctx, key, touched))
	assert.True(t, mustGet(t, b, key).ExpiresAt.Equal(touched.Truncate(time.Millisecond)))
	shorter := time.Now().Add(30 * time.Second)
	require.NoError(t, b.Touch(ctx, key, shorter))
	assert.True(t, mustGet(t, a, key).ExpiresAt.Equal(shorter.Truncate(time.Millisecond)))
	require.ErrorIs(t, a.Touch(ctx, testKey(), touched), stores.ErrNotFound)
}

func TestWithWait(t *testing.T) {
	ctx := context.Background()
	primary := redistest.Start(t)
	replica := redistest.Start(t, redistest.WithReplicaOf(primary))
	s := newStore(t, primary, WithWait(1, 2*time.Second))
	key := testKey()
	exp := time.Now().Add(time.Hour)

	// Acknowledged writes are on the replica when they return.
	require.NoError(t, s.Add(ctx, key, record("alice", nil), exp))
	_, err := replica.Do("GET", s.key(key))
	require.NoError(t, err)
	assert.NotNil(t, replica.MustDo(t, "GET", s.key(key)), "Add replicated")
	require.NoError(t, s.Update(ctx, key, mergeKey("a", 1)))
	v, _ := replica.MustDo(t, "GET", s.key(key)).(string)
	assert.Equal(t, mustGet(t, s, key).Version, binary.BigEndian.Uint64([]byte(v[:8])), "Update replicated")
	require.NoError(t, s.Touch(ctx, key, exp.Add(time.Hour)))
	assert.Equal(t, exp.Add(time.Hour).UnixMilli(), replica.MustDo(t, "PEXPIRETIME", s.key(key)), "Touch replicated")

	// Without the replica, writes are applied on the primary and reported.
	replica.Stop(t)
	fast := New(newClient(t, primary.Addr), WithPrefix(s.prefix), WithWait(1, 20*time.Millisecond))
	check := func(name string, err error) {
		t.Helper()
		require.Error(t, err, name)
		assert.ErrorIs(t, err, ErrNotReplicated, name)
		assert.ErrorIs(t, err, stores.ErrUnavailable, name)
		assert.Contains(t, err.Error(), "0 of 1", name)
	}
	other := testKey()
	check("Add", fast.Add(ctx, other, record("bob", nil), exp))
	assert.Equal(t, "bob", mustGet(t, fast, other).Record.UserID, "applied on the primary")
	check("Update", fast.Update(ctx, other, mergeKey("b", 2)))
	check("UpdateFrom", fast.UpdateFrom(ctx, other, mustGet(t, fast, other), mergeKey("c", 3)))
	assert.Equal(t, map[string]any{"b": 2, "c": 3}, mustGet(t, fast, other).Record.Data)
	check("Touch", fast.Touch(ctx, other, exp))
	check("Delete", fast.Delete(ctx, other))
	_, err = fast.Get(ctx, other)
	require.ErrorIs(t, err, stores.ErrNotFound, "Get does not wait")
	require.NoError(t, fast.Delete(ctx, other), "deleting a missing key writes nothing to wait for")

	// Writes that change nothing report what they found.
	require.ErrorIs(t, fast.Add(ctx, key, record("mallory", nil), exp), stores.ErrExists)
	require.ErrorIs(t, fast.Touch(ctx, other, exp), stores.ErrNotFound)
	require.ErrorIs(t, fast.Update(ctx, other, mergeKey("x", 1)), stores.ErrNotFound)
}

func TestOptionsValidation(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ReadTimeout: time.Second})
	defer c.Close()
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	defer ring.Close()
	tests := []struct {
		name   string
		client redis.UniversalClient
		opts   []Option
		want   string
	}{
		{"long prefix", c, []Option{WithPrefix(strings.Repeat("p", 513))}, "WithPrefix"},
		{"control char in prefix", c, []Option{WithPrefix("app\n")}, "WithPrefix"},
		{"DEL in prefix", c, []Option{WithPrefix("app\x7f")}, "WithPrefix"},
		{"hash tag in prefix", c, []Option{WithPrefix("{sessions}:")}, "WithPrefix"},
		{"tiny item size", c, []Option{WithMaxItemSize(8)}, "WithMaxItemSize"},
		{"huge item size", c, []Option{WithMaxItemSize(512<<20 + 1)}, "WithMaxItemSize"},
		{"no attempts", c, []Option{WithMaxAttempts(0)}, "WithMaxAttempts"},
		{"wait for no replica", c, []Option{WithWait(0, time.Millisecond)}, "WithWait"},
		{"wait forever", c, []Option{WithWait(1, 0)}, "WithWait"},
		{"wait sub-millisecond", c, []Option{WithWait(1, time.Microsecond)}, "WithWait"},
		{"wait past ReadTimeout", c, []Option{WithWait(1, time.Second)}, "WithWait(1, 1s): timeout not below the client's ReadTimeout"},
		{"wait on a ring", ring, []Option{WithWait(1, time.Millisecond)}, "WithWait(1, 1ms): needs a *redis.Client or *redis.ClusterClient, not *redis.Ring"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				require.NotNil(t, r, "New must panic")
				assert.Contains(t, r, "redisstore.New: "+tt.want)
			}()
			New(tt.client, tt.opts...)
		})
	}
	assert.PanicsWithValue(t, "redisstore.New: nil client", func() { New(nil) })
	assert.NotPanics(t, func() {
		New(c, WithPrefix(strings.Repeat("p", 512)), WithPrefix("{}:"), WithPrefix("a{b"), WithPrefix(""),
			WithMaxItemSize(512<<20), WithWait(1, 999*time.Millisecond))
	})
	assert.NotPanics(t, func() { New(ring) })
	for name, o := range map[string]*redis.ClusterOptions{
		"ReadOnly":       {Addrs: []string{"127.0.0.1:1"}, ReadOnly: true},
		"RouteByLatency": {Addrs: []string{"127.0.0.1:1"}, RouteByLatency: true},
		"RouteRandomly":  {Addrs: []string{"127.0.0.1:1"}, RouteRandomly: true},
	} {
		cc := redis.NewClusterClient(o)
		assert.PanicsWithValue(t, "redisstore.New: the client routes reads to replicas (ReadOnly, RouteByLatency or RouteRandomly), which can serve a session after its logout",
			func() { New(cc) }, name)
		_ = cc.Close()
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	assert.NotPanics(t, func() { New(cc) }, "a cluster client reading from primaries")
	_ = cc.Close()
}

func TestCloseLeavesClient(t *testing.T) {
	srv := sharedServer(t)
	c := newClient(t, srv.Addr)
	s := New(c, WithPrefix(uniquePrefix()))
	key := testKey()
	require.NoError(t, s.Add(context.Background(), key, record("alice", nil), time.Now().Add(time.Hour)))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	for name, err := range allOps(context.Background(), s, key) {
		assert.ErrorIs(t, err, stores.ErrClosed, name)
	}
	require.NoError(t, c.Set(context.Background(), uniquePrefix()+"still-usable", "x", time.Minute).Err())
}

func TestErrorMessages(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, nil)
	key := testKey()
	_, err := s.Get(ctx, key)
	assert.True(t, strings.HasPrefix(err.Error(), "redisstore: "), err.Error())
	require.NoError(t, s.Add(ctx, key, record("alice", nil), time.Now().Add(time.Hour)))
	err = s.Add(ctx, key, record("alice", nil), time.Now().Add(time.Hour))
	assert.True(t, strings.HasPrefix(err.Error(), "redisstore: "), err.Error())
	assert.True(t, errors.Is(err, stores.ErrExists))
	assert.NotContains(t, err.Error(), key.String(), "errors name no keys")
}

func TestFailMapping(t *testing.T) {
	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name        string
		ctx         context.Context
		err         error
		unavailable bool
		oom         bool
	}{
		{"network", ctx, &netErr{}, true, false},
		{"pool timeout", ctx, redis.ErrPoolTimeout, true, false},
		{"client closed", ctx, redis.ErrClosed, true, false},
		{"loading", ctx, redisErr("LOADING Redis is loading the dataset in memory"), true, false},
		{"readonly", ctx, redisErr("READONLY You can't write against a read only replica."), true, false},
		{"clusterdown", ctx, redisErr("CLUSTERDOWN The cluster is down"), true, false},
		{"busy script", ctx, redisErr("BUSY Redis is busy running a script."), true, false},
		{"max clients", ctx, redisErr("ERR max number of clients reached"), true, false},
		{"oom", ctx, redisErr("OOM command not allowed when used memory > 'maxmemory'."), true, true},
		{"wrongtype", ctx, redisErr("WRONGTYPE Operation against a key holding the wrong kind of value"), false, false},
		{"noperm", ctx, redisErr("NOPERM this user has no permissions"), false, false},
		{"dial deadline", ctx, context.DeadlineExceeded, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fail(tt.ctx, "get", tt.err)
			assert.ErrorIs(t, err, tt.err)
			assert.Equal(t, tt.unavailable, errors.Is(err, stores.ErrUnavailable))
			assert.Equal(t, tt.oom, errors.Is(err, ErrOutOfMemory))
			assert.True(t, strings.HasPrefix(err.Error(), "redisstore: get: "), err.Error())
		})
	}
	err := fail(canceled, "get", &netErr{})
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, stores.ErrUnavailable)
}

// redisErr is a server error reply, as go-redis returns them.
type redisErr string

func (e redisErr) Error() string { return string(e) }
func (redisErr) RedisError()     {}

type netErr struct{}

func (*netErr) Error() string   { return "dial tcp: connection refused" }
func (*netErr) Timeout() bool   { return false }
func (*netErr) Temporary() bool { return false }

func TestPxat(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 500_000_000, time.UTC)
	tests := []struct {
		name string
		exp  time.Time
		want int64
	}{
		{"past", now.Add(-time.Hour), 1},
		{"now", now, 1},
		{"zero time", time.Time{}, 1},
		{"1ns", now.Add(time.Nanosecond), now.UnixMilli()},
		{"1ms", now.Add(time.Millisecond), now.UnixMilli() + 1},
		{"1.9ms", now.Add(1900 * time.Microsecond), now.UnixMilli() + 1},
		{"1h", now.Add(time.Hour), now.Add(time.Hour).UnixMilli()},
		{"2262 cap", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), maxExpiry.UnixMilli()},
		{"far future", now.Add(1<<63 - 1), maxExpiry.UnixMilli()},
		{"before 1970 but after now", time.Unix(-10, 0), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pxat(tt.exp, now)
			if tt.name == "before 1970 but after now" {
				got = pxat(tt.exp, time.Unix(-20, 0))
			}
			assert.Equal(t, tt.want, got)
			assert.Positive(t, got, "never zero or negative")
		})
	}
}
