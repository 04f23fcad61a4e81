package memcached

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
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
	"github.com/securestack/ginsession/stores/codec"
	"github.com/securestack/ginsession/stores/storetest"
)

var keySeq atomic.Int64

// testKey returns a key no other test uses.
func testKey() stores.Key {
	return stores.Key(sha256.Sum256(fmt.Appendf(nil, "memcached-test-%d", keySeq.Add(1))))
}

func record(user string, data map[string]any) *stores.Record {
	return &stores.Record{UserID: user, Data: data, CreatedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		return storetest.Harness{Store: newStore(t, nil)}
	})
}

func TestConformanceNewFromServers(t *testing.T) {
	srv := sharedServer(t)
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		s, err := NewFromServers([]string{srv.Addr}, WithPrefix(uniquePrefix()))
		require.NoError(t, err)
		s.client.mc.Timeout = testTimeout
		return storetest.Harness{Store: s}
	})
}

func TestSixtyDayExpiry(t *testing.T) {
	srv := memcachedtest.Start(t)
	s := newStore(t, srv)
	key := testKey()
	exp := time.Now().Add(60 * 24 * time.Hour)
	require.NoError(t, s.Add(context.Background(), key, record("alice", nil), exp))

	it, err := s.Get(context.Background(), key)
	require.NoError(t, err, "a 60-day session must be readable right after Add")
	assert.Equal(t, "alice", it.Record.UserID)
	assert.True(t, it.ExpiresAt.Equal(time.Unix(0, exp.UnixNano())), "ExpiresAt = %v, want %v", it.ExpiresAt, exp)

	metas := srv.Metadump(t)
	require.Len(t, metas, 1)
	assert.Equal(t, s.key(key), metas[0].Key)
	assert.InDelta(t, exp.Unix(), metas[0].Exp, 2, "server-side expiry is the absolute time")

	// Touch and Update take the same path.
	exp = exp.Add(24 * time.Hour)
	require.NoError(t, s.Touch(context.Background(), key, exp))
	assert.InDelta(t, exp.Unix(), srv.Metadump(t)[0].Exp, 2, "after Touch")
	exp = exp.Add(24 * time.Hour)
	require.NoError(t, s.Update(context.Background(), key, func(cur stores.Item) (*stores.Record, time.Time, error) {
		return cur.Record, exp, nil
	}))
	assert.InDelta(t, exp.Unix(), srv.Metadump(t)[0].Exp, 2, "after Update")
	_, err = s.Get(context.Background(), key)
	require.NoError(t, err)
}

func TestShortExpiryServerSide(t *testing.T) {
	srv := memcachedtest.Start(t)
	s := newStore(t, srv)
	key := testKey()
	exp := time.Now().Add(10 * time.Second)
	require.NoError(t, s.Add(context.Background(), key, record("alice", nil), exp))
	metas := srv.Metadump(t)
	require.Len(t, metas, 1)
	// Relative seconds rounded up plus one: the server's expiry is
	// never before the requested one.
	assert.GreaterOrEqual(t, metas[0].Exp, exp.Unix())
	assert.LessOrEqual(t, metas[0].Exp, exp.Unix()+2)
}

// bigData returns session data of about n bytes.
func bigData(n int) map[string]any {
	return map[string]any{"blob": make([]byte, n)}
}

func TestTooLarge(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		opts []Option
	}{
		// The store refuses before sending.
		{"client check", nil},
		// The store believes the server takes more; the server refuses.
		{"server reply", []Option{WithMaxItemSize(8 << 20)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := memcachedtest.Start(t)
			s := newStore(t, srv, tt.opts...)
			before := srv.Stats(t)

			t.Run("Add", func(t *testing.T) {
				key := testKey()
				err := s.Add(ctx, key, record("alice", bigData(2<<20)), time.Now().Add(time.Hour))
				require.ErrorIs(t, err, stores.ErrTooLarge)
				assert.NotErrorIs(t, err, stores.ErrUnavailable)
				_, err = s.Get(ctx, key)
				require.ErrorIs(t, err, stores.ErrNotFound)
			})
			t.Run("Update", func(t *testing.T) {
				key := testKey()
				exp := time.Now().Add(time.Hour)
				require.NoError(t, s.Add(ctx, key, record("alice", map[string]any{"n": 1}), exp))
				err := s.Update(ctx, key, func(cur stores.Item) (*stores.Record, time.Time, error) {
					return record("alice", bigData(2<<20)), exp.Add(time.Hour), nil
				})
				require.ErrorIs(t, err, stores.ErrTooLarge)
				it, err := s.Get(ctx, key)
				require.NoError(t, err, "the old session must survive")
				assert.Equal(t, map[string]any{"n": 1}, it.Record.Data)
				assert.True(t, it.ExpiresAt.Equal(exp))
			})
			t.Run("AfterwardsFine", func(t *testing.T) {
				key := testKey()
				require.NoError(t, s.Add(ctx, key, record("bob", nil), time.Now().Add(time.Hour)))
				_, err := s.Get(ctx, key)
				require.NoError(t, err)
			})

			sets := srv.Stats(t)["cmd_set"] - before["cmd_set"]
			if tt.opts == nil {
				assert.EqualValues(t, 2, sets, "oversized items must not be sent")
			}
		})
	}
}

func TestMaxItemSizeBoundary(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, nil)
	key := testKey()
	mk := s.key(key)
	// Find the largest blob whose item fits the default limit by the
	// store's reckoning, and check that the server takes it.
	rec := record("alice", bigData(0))
	empty, err := codec.Append(nil, rec, 0, 0)
	require.NoError(t, err)
	n := DefaultMaxItemSize - itemOverhead - len(mk) - len(empty) - 64 // room for lengths and times
	var size int
	for ; ; n++ {
		b, err := codec.Append(nil, record("alice", bigData(n+1)), unixNano(time.Now().Add(time.Hour)), time.Now().UnixNano())
		require.NoError(t, err)
		if len(mk)+len(b)+itemOverhead > DefaultMaxItemSize {
			break
		}
		size = n + 1
	}
	require.Positive(t, size)
	require.Greater(t, size, DefaultMaxItemSize-itemOverhead-len(mk)-len(empty)-64)
	require.NoError(t, s.Add(ctx, key, record("alice", bigData(size)), time.Now().Add(time.Hour)), "largest accepted item must fit the server")
	it, err := s.Get(ctx, key)
	require.NoError(t, err)
	assert.Len(t, it.Record.Data["blob"], size)
	err = s.Add(ctx, testKey(), record("alice", bigData(size+1)), time.Now().Add(time.Hour))
	require.ErrorIs(t, err, stores.ErrTooLarge)
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

func TestConcurrentMergeNoConflict(t *testing.T) {
	const goroutines, perGoroutine = 50, 20
	// Instances are Stores with clients of their own, as separate
	// processes would have: their Updates of one key contend through
	// cas, while those of one instance take turns.
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
			it, err := ss[0].Get(ctx, key)
			require.NoError(t, err)
			assert.Len(t, it.Record.Data, goroutines*perGoroutine)
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
				require.NoError(t, other.Touch(ctx, key, time.Now().Add(time.Hour)))
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
		it, err := s.Get(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, "other", it.Record.UserID)
	})
	t.Run("Retried", func(t *testing.T) {
		s := New(newClient(t, srv.Addr), WithPrefix(prefix), WithMaxAttempts(5))
		var calls int
		require.NoError(t, s.Update(ctx, key, interfere(4, &calls)))
		assert.Equal(t, 5, calls)
		it, err := s.Get(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, "mine", it.Record.UserID)
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

func TestTouchDoesNotRewrite(t *testing.T) {
	ctx := context.Background()
	srv := memcachedtest.Start(t)
	s := newStore(t, srv)
	key := testKey()
	require.NoError(t, s.Add(ctx, key, record("alice", map[string]any{"n": 1}), time.Now().Add(time.Minute)))
	before := srv.Stats(t)
	exp := time.Now().Add(time.Hour)
	require.NoError(t, s.Touch(ctx, key, exp))
	after := srv.Stats(t)
	assert.Equal(t, before["cmd_touch"]+1, after["cmd_touch"], "cmd_touch")
	assert.Equal(t, before["touch_hits"]+1, after["touch_hits"], "touch_hits")
	assert.Equal(t, before["cmd_set"], after["cmd_set"], "cmd_set: touch must not rewrite the value")
	assert.Equal(t, before["cmd_get"], after["cmd_get"], "cmd_get: touch must not read the value")
	assert.InDelta(t, exp.Unix(), srv.Metadump(t)[0].Exp, 2)
}

func TestTouchReportedExpiry(t *testing.T) {
	ctx := context.Background()
	srv := sharedServer(t)
	prefix := uniquePrefix()
	s := New(newClient(t, srv.Addr), WithPrefix(prefix))
	peer := New(newClient(t, srv.Addr), WithPrefix(prefix)) // another process
	key := testKey()
	written := time.Now().Add(time.Minute)
	require.NoError(t, s.Add(ctx, key, record("alice", nil), written))

	touched := time.Now().Add(time.Hour)
	require.NoError(t, s.Touch(ctx, key, touched))
	it, err := s.Get(ctx, key)
	require.NoError(t, err)
	assert.True(t, it.ExpiresAt.Equal(touched), "the toucher sees its own refresh: %v", it.ExpiresAt)
	it, err = peer.Get(ctx, key)
	require.NoError(t, err)
	assert.True(t, it.ExpiresAt.Equal(written), "a peer sees the value's expiry, a lower bound: %v", it.ExpiresAt)

	// A later write by a peer is the authority again.
	rewritten := time.Now().Add(2 * time.Minute)
	require.NoError(t, peer.Update(ctx, key, func(cur stores.Item) (*stores.Record, time.Time, error) {
		return cur.Record, rewritten, nil
	}))
	it, err = s.Get(ctx, key)
	require.NoError(t, err)
	assert.True(t, it.ExpiresAt.Equal(rewritten), "after a peer's write: %v", it.ExpiresAt)

	// A touch shortening the lifetime is reported too.
	shorter := time.Now().Add(30 * time.Second)
	require.NoError(t, s.Touch(ctx, key, shorter))
	it, err = s.Get(ctx, key)
	require.NoError(t, err)
	assert.True(t, it.ExpiresAt.Equal(shorter), "after a shortening touch: %v", it.ExpiresAt)

	// Deleting forgets.
	require.NoError(t, s.Delete(ctx, key))
	assert.Zero(t, s.touches.len())
}

func TestTouchCacheDisabled(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, nil, WithTouchCacheSize(0))
	key := testKey()
	written := time.Now().Add(time.Minute)
	require.NoError(t, s.Add(ctx, key, record("alice", nil), written))
	require.NoError(t, s.Touch(ctx, key, written.Add(time.Hour)))
	it, err := s.Get(ctx, key)
	require.NoError(t, err)
	assert.True(t, it.ExpiresAt.Equal(written))
}

// allOps runs every operation of s and returns their errors by name.
func allOps(ctx context.Context, s *Store, key stores.Key) map[string]error {
	_, getErr := s.Get(ctx, key)
	return map[string]error{
		"Get":    getErr,
		"Add":    s.Add(ctx, testKey(), record("bob", nil), time.Now().Add(time.Hour)),
		"Update": s.Update(ctx, key, func(cur stores.Item) (*stores.Record, time.Time, error) { return cur.Record, cur.ExpiresAt, nil }),
		"Touch":  s.Touch(ctx, key, time.Now().Add(time.Hour)),
		"Delete": s.Delete(ctx, key),
	}
}

func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	srv := memcachedtest.Start(t)
	s, err := NewFromServers([]string{srv.Addr}) // DefaultTimeout
	require.NoError(t, err)
	defer s.Close()
	key := testKey()
	require.NoError(t, s.Add(ctx, key, record("alice", nil), time.Now().Add(time.Hour)))

	srv.Stop(t)
	start := time.Now()
	errs := allOps(ctx, s, key)
	assert.Less(t, time.Since(start), 5*DefaultTimeout, "five operations")
	for name, err := range errs {
		assert.ErrorIs(t, err, stores.ErrUnavailable, name)
		assert.NotErrorIs(t, err, stores.ErrNotFound, name)
	}
	start = time.Now()
	_, err = s.Get(ctx, key)
	assert.ErrorIs(t, err, stores.ErrUnavailable)
	assert.Less(t, time.Since(start), DefaultTimeout+500*time.Millisecond, "must fail fast")
	assert.Contains(t, err.Error(), "memcached: get: ")

	srv.Restart(t) // an empty server on the same address
	_, err = s.Get(ctx, key)
	require.ErrorIs(t, err, stores.ErrNotFound, "works again once the server is back")
	require.NoError(t, s.Add(ctx, key, record("alice", nil), time.Now().Add(time.Hour)))
	_, err = s.Get(ctx, key)
	require.NoError(t, err)
}

func TestUnavailableTimeout(t *testing.T) {
	// A server that accepts connections but never answers: the client's
	// Timeout bounds the wait.
	srv := memcachedtest.Start(t)
	c := newClient(t, srv.Addr)
	c.Timeout = 100 * time.Millisecond
	s := New(c, WithPrefix(uniquePrefix()))
	key := testKey()
	require.NoError(t, s.Add(context.Background(), key, record("alice", nil), time.Now().Add(time.Hour)))
	srv.Pause(t)
	defer srv.Resume(t)
	start := time.Now()
	_, err := s.Get(context.Background(), key)
	require.ErrorIs(t, err, stores.ErrUnavailable)
	// A timeout is not retried (TestStaleRetry); the margin is for a
	// loaded machine under -race.
	assert.Less(t, time.Since(start), 5*c.Timeout, "the Timeout bounds the wait")
}

func TestRestartIdleConnections(t *testing.T) {
	// Idle connections die with the server; the first operations after a
	// restart must not fail because of them.
	ctx := context.Background()
	srv := memcachedtest.Start(t)
	s := newStore(t, srv)
	keys := make([]stores.Key, 16)
	var wg sync.WaitGroup
	for i := range keys {
		keys[i] = testKey()
		wg.Go(func() {
			assert.NoError(t, s.Add(ctx, keys[i], record("alice", nil), time.Now().Add(time.Hour)))
		})
	}
	wg.Wait()
	srv.Restart(t)
	for name, err := range allOps(ctx, s, keys[0]) {
		if name == "Update" || name == "Touch" || name == "Get" {
			assert.ErrorIs(t, err, stores.ErrNotFound, name)
		} else {
			assert.NoError(t, err, name)
		}
	}
	_, err := s.Get(ctx, keys[1])
	assert.ErrorIs(t, err, stores.ErrNotFound)
}

func TestContextCanceledSendsNothing(t *testing.T) {
	srv := memcachedtest.Start(t)
	s := newStore(t, srv)
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
		before := srv.Stats(t)
		for name, err := range allOps(tt.ctx, s, key) {
			assert.Equal(t, tt.want, err, name)
		}
		after := srv.Stats(t)
		for stat, v := range before {
			if strings.HasPrefix(stat, "cmd_") || strings.HasSuffix(stat, "_hits") || strings.HasSuffix(stat, "_misses") {
				assert.Equal(t, v, after[stat], "stat %s changed", stat)
			}
		}
		// Stats itself opens one connection.
		assert.Equal(t, before["total_connections"]+1, after["total_connections"])
	}
	_, err := s.Get(context.Background(), key)
	require.NoError(t, err)
}

var dumpKey = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

func TestDumpHoldsOnlyDigests(t *testing.T) {
	ctx := context.Background()
	srv := memcachedtest.Start(t)
	const prefix = "app1:"
	s := New(newClient(t, srv.Addr), WithPrefix(prefix))
	ids := map[string]bool{}
	for i := range 20 {
		id := fmt.Sprintf("raw-session-id-%02d-secret", i)
		ids[id] = true
		key := stores.Key(sha256.Sum256([]byte(id)))
		require.NoError(t, s.Add(ctx, key, record("alice", map[string]any{"i": i}), time.Now().Add(time.Hour)))
		require.NoError(t, s.Touch(ctx, key, time.Now().Add(2*time.Hour)))
		require.NoError(t, s.Update(ctx, key, func(cur stores.Item) (*stores.Record, time.Time, error) {
			return cur.Record, cur.ExpiresAt, nil
		}))
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
	srv := memcachedtest.Start(t)
	s := New(newClient(t, srv.Addr))
	key := testKey()
	require.NoError(t, s.Add(context.Background(), key, record("alice", nil), time.Now().Add(time.Hour)))
	dump := srv.Dump(t)
	assert.Contains(t, dump, DefaultPrefix+key.String())
}

func TestCorruptItem(t *testing.T) {
	ctx := context.Background()
	srv := sharedServer(t)
	s := newStore(t, srv)
	key := testKey()
	c := newClient(t, srv.Addr)
	require.NoError(t, c.Set(&memcache.Item{Key: s.key(key), Value: []byte("\x01\xff\xff garbage"), Expiration: 60}))

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

func TestOptionsValidation(t *testing.T) {
	c := memcache.New("127.0.0.1:1")
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"long prefix", []Option{WithPrefix(strings.Repeat("p", 208))}, "WithPrefix"},
		{"space in prefix", []Option{WithPrefix("my app:")}, "WithPrefix"},
		{"control char in prefix", []Option{WithPrefix("app\n")}, "WithPrefix"},
		{"DEL in prefix", []Option{WithPrefix("app\x7f")}, "WithPrefix"},
		{"tiny item size", []Option{WithMaxItemSize(100)}, "WithMaxItemSize"},
		{"no attempts", []Option{WithMaxAttempts(0)}, "WithMaxAttempts"},
		{"negative touch cache", []Option{WithTouchCacheSize(-1)}, "WithTouchCacheSize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			func() {
				defer func() {
					r := recover()
					require.NotNil(t, r, "New must panic")
					assert.Contains(t, r, "memcached.New: "+tt.want)
				}()
				New(c, tt.opts...)
			}()
			_, err := NewFromServers([]string{"127.0.0.1:1"}, tt.opts...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	assert.PanicsWithValue(t, "memcached.New: nil client", func() { New(nil) })
	_, err := NewFromServers(nil)
	assert.ErrorContains(t, err, "no server address")
	_, err = NewFromServers([]string{"no-such-host.invalid:11211"})
	assert.Error(t, err)

	s := New(c, WithPrefix(strings.Repeat("p", 207)))
	assert.Len(t, s.key(testKey()), 250)
}

func TestCloseOwnedClient(t *testing.T) {
	srv := memcachedtest.Start(t)
	s, err := NewFromServers([]string{srv.Addr})
	require.NoError(t, err)
	assert.Equal(t, DefaultTimeout, s.client.mc.Timeout)
	assert.Equal(t, DefaultMaxIdleConns, s.client.mc.MaxIdleConns)
	key := testKey()
	require.NoError(t, s.Add(context.Background(), key, record("alice", nil), time.Now().Add(time.Hour)))
	open := srv.Stats(t)["curr_connections"]
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	// Each Stats call counts its own connection, and the server may not
	// have noticed the previous one's close yet: poll.
	curr := open
	for deadline := time.Now().Add(soon); curr >= open && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		curr = srv.Stats(t)["curr_connections"]
	}
	assert.Less(t, curr, open, "Close must close the connections of a client the store built")
	_, err = s.Get(context.Background(), key)
	assert.ErrorIs(t, err, stores.ErrClosed)
}

func TestCloseLeavesUserClient(t *testing.T) {
	srv := sharedServer(t)
	c := newClient(t, srv.Addr)
	s := New(c, WithPrefix(uniquePrefix()))
	require.NoError(t, s.Close())
	require.NoError(t, c.Set(&memcache.Item{Key: "still-usable", Value: []byte("x")}))
	_, err := c.Get("still-usable")
	require.NoError(t, err)
}

func TestErrorMessages(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, nil)
	key := testKey()
	_, err := s.Get(ctx, key)
	assert.True(t, strings.HasPrefix(err.Error(), "memcached: "), err.Error())
	require.NoError(t, s.Add(ctx, key, record("alice", nil), time.Now().Add(time.Hour)))
	err = s.Add(ctx, key, record("alice", nil), time.Now().Add(time.Hour))
	assert.True(t, strings.HasPrefix(err.Error(), "memcached: "), err.Error())
	assert.True(t, errors.Is(err, stores.ErrExists))
	assert.NotContains(t, err.Error(), key.String(), "errors name no keys")
}
