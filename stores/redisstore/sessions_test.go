package redisstore

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/internal/redistest"
	"github.com/securestack/ginsession/sessiontest"
)

// TestSessions runs the Manager-level scenarios on Redis, each on a server
// of its own so that the outage scenario can stop and restart it.
func TestSessions(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
		srv := redistest.Start(t)
		s := newStore(t, srv)
		return sessiontest.Harness{Store: s, Stop: func() { srv.Stop(t) }, Start: func() { srv.Restart(t) }}
	})
}

// TestSessionsOnCluster runs them on a 3-master Redis Cluster, whose keys
// spread over the masters: every operation touches one key.
func TestSessionsOnCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: c.Addrs(), DialTimeout: testTimeout, ReadTimeout: testTimeout, WriteTimeout: testTimeout,
		ContextTimeoutEnabled: true, MaxRetries: 1, DialerRetries: 1, PoolSize: 64,
	})
	t.Cleanup(func() { _ = client.Close() })
	sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
		s := New(client, WithPrefix(uniquePrefix()))
		t.Cleanup(func() { _ = s.Close() })
		return sessiontest.Harness{Store: s}
	})
}
