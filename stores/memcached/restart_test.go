package memcached

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/internal/memcachedtest"
	"github.com/securestack/ginsession/stores"
)

// poolIdle is the MaxIdleConns of the clients of the restart tests.
const poolIdle = 8

// newPoolClient returns a client of the servers at addrs keeping poolIdle
// idle connections per server, closed when the test ends, and its server
// list, which tells on which server a key lives.
func newPoolClient(t *testing.T, addrs ...string) (*memcache.Client, *memcache.ServerList) {
	t.Helper()
	ss := new(memcache.ServerList)
	require.NoError(t, ss.SetServers(addrs...))
	c := memcache.NewFromSelector(ss)
	c.Timeout = testTimeout
	c.MaxIdleConns = poolIdle
	t.Cleanup(func() { _ = c.Close() })
	return c, ss
}

// on reports whether the memcached key mk lives on the server at addr.
func on(t *testing.T, ss *memcache.ServerList, mk, addr string) bool {
	t.Helper()
	a, err := ss.PickServer(mk)
	require.NoError(t, err)
	return a.String() == addr
}

// storeKeyOn returns a new key whose item, under prefix, lives on addr.
func storeKeyOn(t *testing.T, ss *memcache.ServerList, prefix, addr string) stores.Key {
	t.Helper()
	for {
		if k := testKey(); on(t, ss, prefix+k.String(), addr) {
			return k
		}
	}
}

// warmIdle leaves n idle connections from c to srv in c's pool, which must
// hold none to srv: it pauses srv, starts n Gets of key (a key on srv) at
// once, which then wait on connections of their own, and resumes srv. It
// tries again until srv has accepted n connections from c.
func warmIdle(t *testing.T, srv *memcachedtest.Server, c *memcache.Client, key string, n int) {
	t.Helper()
	require.LessOrEqual(t, n, c.MaxIdleConns)
	before := srv.Stats(t)["total_connections"]
	var dialled uint64
	for round := 1; round <= 5; round++ {
		srv.Pause(t)
		var started, done sync.WaitGroup
		started.Add(n)
		for range n {
			done.Go(func() {
				started.Done()
				if _, err := c.Get(key); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
					t.Errorf("warm-up Get: %v", err)
				}
			})
		}
		started.Wait()
		time.Sleep(time.Duration(round) * 50 * time.Millisecond) // each Get dials and sends
		srv.Resume(t)
		done.Wait()
		// Each Stats call counts its own connection.
		dialled = srv.Stats(t)["total_connections"] - before - uint64(round)
		if dialled >= uint64(n) {
			break
		}
	}
	require.Equal(t, uint64(n), dialled, "connections from the client to the server")
}

// TestRestartSharedClient checks that after a server restart, with a
// client pool full of dead connections, every Store operation succeeds on
// its first call, and that the Store leaves the caller's client alone: the
// client is shared with other code, which uses it on a second server.
func TestRestartSharedClient(t *testing.T) {
	ctx := context.Background()
	restarted, other := memcachedtest.Start(t), memcachedtest.Start(t)
	exp := time.Now().Add(time.Hour)
	ops := []struct {
		name string
		// run runs the operation on s with a pool of dead connections.
		// key holds {"n": 1} for "alice"; fresh is a key without an item;
		// peer is a Store with a client of its own.
		run func(t *testing.T, s, peer *Store, key, fresh stores.Key)
	}{
		{"Get", func(t *testing.T, s, peer *Store, key, fresh stores.Key) {
			it, err := s.Get(ctx, key)
			require.NoError(t, err)
			assert.Equal(t, "alice", it.Record.UserID)
		}},
		{"GetMissing", func(t *testing.T, s, peer *Store, key, fresh stores.Key) {
			_, err := s.Get(ctx, fresh)
			require.ErrorIs(t, err, stores.ErrNotFound)
		}},
		{"Add", func(t *testing.T, s, peer *Store, key, fresh stores.Key) {
			require.NoError(t, s.Add(ctx, fresh, record("bob", nil), exp))
			it, err := peer.Get(ctx, fresh)
			require.NoError(t, err)
			assert.Equal(t, "bob", it.Record.UserID)
		}},
		{"AddExisting", func(t *testing.T, s, peer *Store, key, fresh stores.Key) {
			require.ErrorIs(t, s.Add(ctx, key, record("bob", nil), exp), stores.ErrExists)
		}},
		{"Update", func(t *testing.T, s, peer *Store, key, fresh stores.Key) {
			require.NoError(t, s.Update(ctx, key, mergeKey("n", 2)))
			it, err := peer.Get(ctx, key)
			require.NoError(t, err)
			assert.Equal(t, map[string]any{"n": 2}, it.Record.Data)
		}},
		{"UpdateFrom", func(t *testing.T, s, peer *Store, key, fresh stores.Key) {
			// The item as read by the middleware, here by a peer: the
			// first command of UpdateFrom is its cas.
			cur, err := peer.Get(ctx, key)
			require.NoError(t, err)
			require.NotZero(t, cur.Version)
			require.NoError(t, s.UpdateFrom(ctx, key, cur, mergeKey("n", 2)))
			it, err := peer.Get(ctx, key)
			require.NoError(t, err)
			assert.Equal(t, map[string]any{"n": 2}, it.Record.Data)
		}},
		{"Touch", func(t *testing.T, s, peer *Store, key, fresh stores.Key) {
			require.NoError(t, s.Touch(ctx, key, exp.Add(time.Hour)))
		}},
		{"Delete", func(t *testing.T, s, peer *Store, key, fresh stores.Key) {
			require.NoError(t, s.Delete(ctx, key))
			_, err := peer.Get(ctx, key)
			require.ErrorIs(t, err, stores.ErrNotFound)
		}},
		{"ConcurrentGets", func(t *testing.T, s, peer *Store, key, fresh stores.Key) {
			var wg sync.WaitGroup
			for range 4 * poolIdle {
				wg.Go(func() {
					_, err := s.Get(ctx, key)
					assert.NoError(t, err)
				})
			}
			wg.Wait()
		}},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			c, ss := newPoolClient(t, restarted.Addr, other.Addr)
			prefix := uniquePrefix()
			s := New(c, WithPrefix(prefix))
			key := storeKeyOn(t, ss, prefix, restarted.Addr)
			fresh := storeKeyOn(t, ss, prefix, restarted.Addr)

			// The other code's item, on the other server; its Set leaves
			// a connection to that server in the pool.
			var theirs string
			for i := 0; theirs == "" || !on(t, ss, theirs, other.Addr); i++ {
				theirs = fmt.Sprintf("other-code-%d", i)
			}
			require.NoError(t, c.Set(&memcache.Item{Key: theirs, Value: []byte("x")}))

			warmIdle(t, restarted, c, prefix+key.String(), poolIdle)
			restarted.Restart(t)
			peer := New(newClient(t, restarted.Addr), WithPrefix(prefix))
			require.NoError(t, peer.Add(ctx, key, record("alice", map[string]any{"n": 1}), exp))
			otherConns := other.Stats(t)["total_connections"]

			op.run(t, s, peer, key, fresh)

			// The client still works for the other code, on the
			// connection it had: had the Store closed the client, that
			// idle connection would be gone, and this Get would dial.
			it, err := c.Get(theirs)
			require.NoError(t, err, "the other code's use of the client")
			assert.Equal(t, "x", string(it.Value))
			assert.Equal(t, otherConns+1, other.Stats(t)["total_connections"],
				"connections dialled to the other server: the store closed the client's idle connections")
			// And on the restarted server too.
			require.NoError(t, c.Set(&memcache.Item{Key: prefix + "after", Value: []byte("y")}))
		})
	}
}

// TestLimiterBackendRestart checks that admissions do not fail after a
// server restart that left the client's pool full of dead connections.
func TestLimiterBackendRestart(t *testing.T) {
	ctx := context.Background()
	srv := memcachedtest.Start(t)
	c, _ := newPoolClient(t, srv.Addr)
	b := NewLimiterBackend(c, "rl:restart:")
	const limit = 100
	now := time.Now()
	d, err := b.Admit(ctx, "alice", limit, time.Minute, now)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.NoError(t, c.Close()) // the pool is empty again
	warmIdle(t, srv, c, "warm-up", poolIdle)

	srv.Restart(t) // the history is lost with the server
	var failed []error
	for i := range 2 * poolIdle {
		d, err := b.Admit(ctx, "alice", limit, time.Minute, now.Add(time.Duration(i+1)*time.Millisecond))
		if err != nil {
			failed = append(failed, err)
			continue
		}
		assert.True(t, d.Allowed, "admission %d", i)
	}
	assert.Empty(t, failed, "%d of %d admissions failed after the restart", len(failed), 2*poolIdle)
	if len(failed) == 0 {
		d, err := b.Admit(ctx, "alice", limit, time.Minute, now.Add(time.Second))
		require.NoError(t, err)
		assert.Equal(t, limit-2*poolIdle-1, d.Remaining, "every admission since the restart was recorded once")
	}
}

// TestOutageSharedClient stops (or pauses) the server under a Store and a
// LimiterBackend sharing a client: both fail with stores.ErrUnavailable,
// then work again, on their first call, once the server is back.
func TestOutageSharedClient(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []string{"stopped", "paused"} {
		t.Run(mode, func(t *testing.T) {
			srv := memcachedtest.Start(t)
			c, _ := newPoolClient(t, srv.Addr)
			s := New(c, WithPrefix(uniquePrefix()))
			lim := NewLimiterBackend(c, "rl:outage:")
			exp := time.Now().Add(time.Hour)
			key, kept := testKey(), testKey()
			for _, k := range []stores.Key{key, kept} {
				require.NoError(t, s.Add(ctx, k, record("alice", map[string]any{"n": 1}), exp))
			}
			cur, err := s.Get(ctx, key)
			require.NoError(t, err)
			now := time.Now()
			_, err = lim.Admit(ctx, "alice", 2, time.Hour, now)
			require.NoError(t, err)
			require.NoError(t, c.Close()) // the pool is empty again
			warmIdle(t, srv, c, "warm-up", poolIdle)
			c.Timeout = 200 * time.Millisecond // for the paused server

			if mode == "stopped" {
				srv.Stop(t)
			} else {
				srv.Pause(t)
			}
			errs := allOps(ctx, s, key)
			errs["UpdateFrom"] = s.UpdateFrom(ctx, key, cur, mergeKey("n", 2))
			_, errs["Admit"] = lim.Admit(ctx, "alice", 2, time.Hour, now.Add(time.Second))
			for name, err := range errs {
				assert.ErrorIs(t, err, stores.ErrUnavailable, name)
				assert.NotErrorIs(t, err, stores.ErrNotFound, name)
			}

			if mode == "stopped" {
				srv.Restart(t) // empty
				_, err := s.Get(ctx, kept)
				require.ErrorIs(t, err, stores.ErrNotFound)
				require.NoError(t, s.Add(ctx, kept, record("alice", nil), exp))
				d, err := lim.Admit(ctx, "alice", 2, time.Hour, now.Add(2*time.Second))
				require.NoError(t, err)
				assert.Equal(t, 1, d.Remaining, "a fresh history")
			} else {
				// The server keeps its items, and runs the commands
				// that timed out once it resumes: only kept is known.
				srv.Resume(t)
				it, err := s.Get(ctx, kept)
				require.NoError(t, err)
				assert.Equal(t, "alice", it.Record.UserID)
				require.NoError(t, s.Update(ctx, kept, mergeKey("n", 2)))
				d, err := lim.Admit(ctx, "bob", 2, time.Hour, now.Add(2*time.Second))
				require.NoError(t, err)
				assert.True(t, d.Allowed)
			}
			_, err = s.Get(ctx, kept)
			require.NoError(t, err)
		})
	}
}
