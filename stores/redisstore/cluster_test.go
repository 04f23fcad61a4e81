package redisstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/internal/redistest"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/storetest"
)

// newClusterClient returns a client of c that the test closes, with the
// tests' settings.
func newClusterClient(tb testing.TB, c *redistest.Cluster) *redis.ClusterClient {
	tb.Helper()
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 c.Addrs(),
		DialTimeout:           testTimeout,
		ReadTimeout:           testTimeout,
		WriteTimeout:          testTimeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            1,
		DialerRetries:         1,
		PoolSize:              64,
	})
	tb.Cleanup(func() { _ = client.Close() })
	return client
}

func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	client := newClusterClient(t, c)

	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) storetest.Harness {
			s := New(client, WithPrefix(uniquePrefix()))
			return storetest.Harness{Store: s}
		})
	})

	t.Run("KeysSpreadOverNodes", func(t *testing.T) {
		// No hash tags: sessions land on every node.
		ctx := context.Background()
		prefix := uniquePrefix()
		s := New(client, WithPrefix(prefix))
		for range 60 {
			require.NoError(t, s.Add(ctx, testKey(), record("alice", nil), time.Now().Add(time.Hour)))
		}
		for _, n := range c.Nodes {
			held := 0
			for k := range n.Dump(t) {
				if strings.HasPrefix(k, prefix) {
					held++
				}
			}
			assert.Positive(t, held, "node %s holds none of the keys", n.Addr)
		}
	})

	t.Run("CommandsPerOperation", func(t *testing.T) {
		ctx := context.Background()
		cc := newClusterClient(t, c)
		counts := new(counter)
		cc.AddHook(counts)
		s := New(cc, WithPrefix(uniquePrefix()))
		key := testKey()
		require.NoError(t, s.Add(ctx, key, record("alice", nil), time.Now().Add(time.Hour)))
		require.NoError(t, s.Update(ctx, key, mergeKey("warm", 1)))
		var it stores.Item
		cmds, _ := sent(t, counts, func() { it = mustGet(t, s, key) })
		assert.Equal(t, map[string]int{"get": 1}, cmds, "Get")
		cmds, _ = sent(t, counts, func() { require.NoError(t, s.UpdateFrom(ctx, key, it, mergeKey("a", 1))) })
		assert.Equal(t, map[string]int{"evalsha": 1}, cmds, "UpdateFrom")
	})

	t.Run("NoScript", func(t *testing.T) {
		ctx := context.Background()
		s := New(client, WithPrefix(uniquePrefix()))
		key := testKey()
		require.NoError(t, s.Add(ctx, key, record("alice", nil), time.Now().Add(time.Hour)))
		it := mustGet(t, s, key)
		for _, n := range c.Nodes {
			n.MustDo(t, "SCRIPT", "FLUSH")
		}
		require.NoError(t, s.UpdateFrom(ctx, key, it, mergeKey("a", 1)))
		assert.Equal(t, 1, mustGet(t, s, key).Record.Data["a"])
	})

	t.Run("WithWait", func(t *testing.T) {
		// The cluster has no replicas: the WAIT, sent to the key's
		// primary after the write, reports none, and the write is on
		// that primary.
		ctx := context.Background()
		s := New(client, WithPrefix(uniquePrefix()), WithWait(1, 20*time.Millisecond))
		for range 10 {
			key := testKey()
			err := s.Add(ctx, key, record("alice", nil), time.Now().Add(time.Hour))
			require.ErrorIs(t, err, ErrNotReplicated)
			assert.Equal(t, "alice", mustGet(t, s, key).Record.UserID)
			require.ErrorIs(t, s.Update(ctx, key, mergeKey("a", 1)), ErrNotReplicated)
			assert.Equal(t, 1, mustGet(t, s, key).Record.Data["a"])
		}
	})

	t.Run("LimiterConformance", func(t *testing.T) {
		// Two instances with cluster clients of their own.
		other := newClusterClient(t, c)
		storetest.RunLimiterBackend(t, func(t *testing.T) storetest.LimiterHarness {
			prefix := uniquePrefix()
			return storetest.LimiterHarness{
				Instances: [2]stores.LimiterBackend{NewLimiterBackend(client, prefix), NewLimiterBackend(other, prefix)},
				Exact:     true,
			}
		})
	})
}
