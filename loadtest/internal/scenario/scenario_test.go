package scenario

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/loadtest/internal/servers"
)

// The short versions of the scenarios that make test runs (with -race):
// the same code and the same criteria as make load, with fewer clients
// and shorter runs, a few seconds each.

func TestMain(m *testing.M) {
	redis.SetLogger(RedisLog)
	os.Exit(m.Run())
}

// short sizes the runs for a test.
var short = Options{
	Clients:        16,
	Duration:       2 * time.Second,
	FaultDuration:  6 * time.Second,
	Outage:         1500 * time.Millisecond,
	SilentDuration: 1500 * time.Millisecond,
	SoakSessions:   20_000,
	SoakCycles:     2,
}

// require fails the test with the report unless every criterion was met.
// A missing binary skips the test, or fails it under CI=true.
func require(t *testing.T, r *Report) {
	t.Helper()
	if r.Err != nil && errors.Is(r.Err, servers.ErrMissing) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; CI=true: these tests must not be skipped in CI", r.Err)
		}
		t.Skip(r.Err.Error())
	}
	if !r.OK() {
		t.Fatalf("missed: %v\n\n%s", r.Missed(), r.Markdown())
	}
	t.Logf("\n%s", r.Markdown())
}

func TestSteadyMemory(t *testing.T) {
	require(t, Steady(context.Background(), Memory, short))
}

func TestOutageMemcached(t *testing.T) {
	require(t, Outage(context.Background(), Memcached, short))
}

func TestOutageRedis(t *testing.T) {
	require(t, Outage(context.Background(), Redis, short))
}

func TestSilentMemcached(t *testing.T) {
	require(t, Silent(context.Background(), Memcached, short))
}

func TestSilentRedis(t *testing.T) {
	require(t, Silent(context.Background(), Redis, short))
}

func TestSentinelFailoverWithWait(t *testing.T) {
	require(t, Sentinel(context.Background(), true, short))
}

func TestClusterFailover(t *testing.T) {
	require(t, Cluster(context.Background(), ClusterVariant{Reload: ClusterReload}, short))
}

func TestSoak(t *testing.T) {
	require(t, Soak(context.Background(), short))
}
