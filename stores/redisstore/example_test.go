package redisstore_test

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/stores/redisstore"
)

// A store on the application's client, with the settings the package
// documentation recommends for a session store. Pass it to
// ginsession.NewManager.
func ExampleNew() {
	client := redis.NewClient(&redis.Options{
		Addr:                  "redis:6379",
		DialTimeout:           500 * time.Millisecond,
		ReadTimeout:           500 * time.Millisecond,
		WriteTimeout:          500 * time.Millisecond,
		ContextTimeoutEnabled: true, // request deadlines bound Redis calls
		MaxRetries:            1,    // one retry: a connection that died idle
		DialerRetries:         1,    // a refused connection fails at once
		PoolSize:              256,  // peak concurrent requests per process
		PoolTimeout:           time.Second,
	})
	defer client.Close()

	store := redisstore.New(client, redisstore.WithPrefix("shop:"))
	defer store.Close()
}

// A store on a Sentinel-managed primary whose writes wait for one replica.
func ExampleWithWait() {
	client := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            "sessions",
		SentinelAddrs:         []string{"sentinel-1:26379", "sentinel-2:26379", "sentinel-3:26379"},
		DialTimeout:           500 * time.Millisecond,
		ReadTimeout:           time.Second,
		WriteTimeout:          500 * time.Millisecond,
		ContextTimeoutEnabled: true,
		MaxRetries:            1,
		DialerRetries:         1,
	})
	defer client.Close()

	store := redisstore.New(client, redisstore.WithWait(1, 200*time.Millisecond))
	defer store.Close()
}

// A store on a Redis Cluster: every operation touches one key, so no hash
// tags are needed and sessions spread over the nodes.
func ExampleNew_cluster() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{"redis-1:6379", "redis-2:6379", "redis-3:6379"},
		DialTimeout:           500 * time.Millisecond,
		ReadTimeout:           500 * time.Millisecond,
		WriteTimeout:          500 * time.Millisecond,
		ContextTimeoutEnabled: true,
		MaxRetries:            1,
		DialerRetries:         1,
	})
	defer client.Close()

	store := redisstore.New(client)
	defer store.Close()
}

// A rate limiter backend that all instances of the application share.
func ExampleNewLimiterBackend() {
	client := redis.NewClient(&redis.Options{Addr: "redis:6379"})
	defer client.Close()

	backend := redisstore.NewLimiterBackend(client, "rl:login:")
	_ = backend // pass it to ginsession.NewLimiter with ginsession.WithLimiterBackend
}
