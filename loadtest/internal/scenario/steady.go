package scenario

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/loadtest/internal/load"
	"github.com/securestack/ginsession/loadtest/internal/servers"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/redisstore"
)

// Store kinds of the steady and outage runs.
const (
	Memory    = "memory"
	Memcached = "memcached"
	Redis     = "redis"
)

// Steady runs the mix against the example on one store — memory,
// memcached or redis — for opt.Duration, with nothing broken: every
// request must succeed, every write read back, every ended session stay
// ended, and the goroutines go back to where they were.
func Steady(ctx context.Context, kind string, opt Options) *Report {
	opt.defaults()
	start := time.Now()
	r := newReport("steady-"+kind, "Steady load: "+kind+" store")
	r.Setup = fmt.Sprintf("%d clients for %v on loopback, the example router over TCP", opt.Clients, opt.Duration)
	g, err := servers.NewGroup()
	if err != nil {
		return r.fail(err).finish(start)
	}
	defer g.Close()

	var store stores.Store
	switch kind {
	case Memory:
		r.Setup += ", ginsession's default memory store"
	case Memcached:
		opt.step("starting memcached")
		p, err := g.Memcached(1024)
		if err != nil {
			return r.fail(err).finish(start)
		}
		if store, err = openMemcached(p.Addr); err != nil {
			return r.fail(err).finish(start)
		}
		r.Setup += ", one memcached (-m 1024), memcached.NewFromServers (500 ms timeout, 64 idle connections)"
	case Redis:
		opt.step("starting redis-server")
		p, err := g.Redis("redis")
		if err != nil {
			return r.fail(err).finish(start)
		}
		client := redis.NewClient(redisOptions(p.Addr))
		defer client.Close()
		store = redisstore.New(client)
		r.Setup += ", one redis-server without persistence, go-redis with the recommended settings (500 ms timeouts, 1 retry, pool 256)"
	default:
		return r.fail(fmt.Errorf("unknown store %q", kind)).finish(start)
	}
	if store != nil {
		defer store.Close()
	}

	a, err := load.Serve(store)
	if err != nil {
		return r.fail(err).finish(start)
	}
	defer a.Close()
	if err := warmUp(ctx, a); err != nil {
		return r.fail(err).finish(start)
	}
	before := load.Stats()
	opt.step("%d clients for %v", opt.Clients, opt.Duration)
	res, err := load.Run(ctx, load.Config{URL: a.URL, Clients: opt.Clients, Duration: opt.Duration, Users: "steady"})
	if err != nil {
		return r.fail(err).finish(start)
	}
	after, settled := settle(before)

	mixFigures(r, res)
	procFigures(r, before, after, settled)
	r.fig("ginsession log records", "%d", len(a.Logs.Records()))
	checkMix(r, res)
	checkPanics(r, a, res)
	checkProc(r, before, after)
	return r.finish(start)
}
