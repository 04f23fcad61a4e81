package scenario

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/loadtest/internal/load"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/memcached"
)

// The go-redis settings that stores/redisstore's documentation recommends
// for a session store, and that the example (_example/redis.go) uses.
const (
	redisTimeout     = 500 * time.Millisecond // dial, read and write
	redisMaxRetries  = 1
	redisPoolSize    = 256
	redisPoolTimeout = time.Second
)

// redisBound is the longest a Redis command may take against a server
// that accepts and never answers: each of the 1+MaxRetries attempts waits
// ReadTimeout, with go-redis's backoff (up to 16ms) in between.
const redisBound = (1+redisMaxRetries)*redisTimeout + 16*time.Millisecond

// memcachedBound is the same for memcached: one Timeout, as the store
// does not retry timeouts (memcached.DefaultTimeout).
const memcachedBound = memcached.DefaultTimeout

func redisOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr:                  addr,
		DialTimeout:           redisTimeout,
		ReadTimeout:           redisTimeout,
		WriteTimeout:          redisTimeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            redisMaxRetries,
		DialerRetries:         1,
		PoolSize:              redisPoolSize,
		PoolTimeout:           redisPoolTimeout,
	}
}

func failoverOptions(master string, sentinels []string) *redis.FailoverOptions {
	return &redis.FailoverOptions{
		MasterName:            master,
		SentinelAddrs:         sentinels,
		DialTimeout:           redisTimeout,
		ReadTimeout:           redisTimeout,
		WriteTimeout:          redisTimeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            redisMaxRetries,
		DialerRetries:         1,
		PoolSize:              redisPoolSize,
		PoolTimeout:           redisPoolTimeout,
	}
}

// clusterOptions are the recommended settings for a cluster client, with
// ClusterStateReloadInterval set to reload (0: go-redis's default, 60s).
// go-redis v9.23 re-reads the slot map on MOVED, ASK and READONLY replies
// and when its copy is older than that interval, not when a node refuses
// connections: until then the slots of a dead master stay routed to it,
// even once a replica has taken them over.
func clusterOptions(addrs []string, reload time.Duration) *redis.ClusterOptions {
	return &redis.ClusterOptions{
		Addrs:                      addrs,
		ClusterStateReloadInterval: reload,
		DialTimeout:                redisTimeout,
		ReadTimeout:                redisTimeout,
		WriteTimeout:               redisTimeout,
		ContextTimeoutEnabled:      true,
		MaxRetries:                 redisMaxRetries,
		DialerRetries:              1,
		PoolSize:                   redisPoolSize,
		PoolTimeout:                redisPoolTimeout,
	}
}

// openMemcached opens the store as the example's -memcached flag does:
// memcached.NewFromServers, with its defaults (500ms Timeout, 64 idle
// connections).
func openMemcached(addr string) (stores.Store, error) {
	return memcached.NewFromServers([]string{addr})
}

// warmUp sends a few requests through a short run of two clients, so that
// pools, scripts and caches are in place before the baseline is taken.
func warmUp(ctx context.Context, a *load.App) error {
	res, err := load.Run(ctx, load.Config{URL: a.URL, Clients: 2, Duration: 300 * time.Millisecond, Users: "warmup"})
	if err != nil {
		return err
	}
	if f := res.Failures(); len(f) > 0 || res.Unexpected > 0 {
		return fmt.Errorf("warm-up failed: %v, %d unexpected answers: %v", f, res.Unexpected, res.Samples)
	}
	return nil
}

// mixFigures adds the figures of a run of the mix.
func mixFigures(r *Report, res *load.Result) {
	n := res.Requests()
	r.fig("requests", "%s in %.1f s: %s/s", thousands(n), res.Elapsed.Seconds(), thousands(int64(res.RPS()+0.5)))
	var shares []string
	for op := range load.OpCheck {
		shares = append(shares, fmt.Sprintf("%s %.1f%%", op, 100*float64(res.Ops[op].Count)/float64(max(n, 1))))
	}
	r.fig("mix (measured)", "%s", strings.Join(shares, ", "))
	r.fig("latency p50 / p99 / max", "%s / %s / %s", ms(res.Latency.Quantile(0.50)), ms(res.Latency.Quantile(0.99)), ms(res.Latency.Max()))
	r.fig("statuses", "%s", statuses(res.Statuses()))
	r.fig("errors by kind", "%s", failures(res.Failures()))
	r.fig("lost updates / resurrected sessions / sessions lost", "%d / %d / %d", res.LostUpdates, res.Resurrected, res.SessionsLost)
	r.fig("final checks", "%s live sessions read back, %s ended sessions checked (401 expected), %d without a clear answer",
		thousands(res.FinalChecked), thousands(res.RetiredChecked), res.CheckErrors)
	for _, s := range res.Samples {
		r.note("sample: %s", s)
	}
}

func statuses(st map[int]int64) string {
	if len(st) == 0 {
		return "none"
	}
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(st)) {
		parts = append(parts, fmt.Sprintf("%d %s: %s", code, http.StatusText(code), thousands(st[code])))
	}
	return strings.Join(parts, ", ")
}

func failures(f map[string]int64) string {
	if len(f) == 0 {
		return "none (no 5xx, no timeout, no connection error)"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(f)) {
		name := k
		if len(k) == 3 && k[0] == '5' {
			name = "status " + k
		}
		parts = append(parts, fmt.Sprintf("%s: %s", name, thousands(f[k])))
	}
	return strings.Join(parts, ", ")
}

// procFigures adds the process's goroutines and heap before and after.
func procFigures(r *Report, before, after load.ProcStats, settled time.Duration) {
	r.fig("goroutines before / after", "%d / %d (without the run's watchers of server processes; after: once the clients closed their connections, settled in %s)", before.Goroutines, after.Goroutines, ms(settled))
	r.fig("heap in use before / after (HeapInuse after GC)", "%s / %s", load.MiB(before.HeapInuse), load.MiB(after.HeapInuse))
}

// settle waits for the goroutines to return to the baseline and takes the
// process's figures.
func settle(before load.ProcStats) (load.ProcStats, time.Duration) {
	_, waited := load.SettleGoroutines(before.Goroutines, false, 5*time.Second)
	return load.Stats(), waited
}

// settleApp is settle for the goroutines that go-redis did not start.
func settleApp(before load.ProcStats) (load.ProcStats, time.Duration) {
	_, waited := load.SettleGoroutines(before.Goroutines-before.GoRedis, true, 5*time.Second)
	return load.Stats(), waited
}

// checkMix adds the criteria every run of the mix must meet on a working
// store.
func checkMix(r *Report, res *load.Result) {
	f := res.Failures()
	var failed int64
	for _, n := range f {
		failed += n
	}
	r.check("zero unexpected errors", failed == 0 && res.Unexpected == 0 && res.SessionsLost == 0 && res.CheckErrors == 0,
		"%d failed requests (%s), %d unexpected answers, %d sessions lost, %d checks without an answer", failed, failures(f), res.Unexpected, res.SessionsLost, res.CheckErrors)
	r.check("zero lost updates", res.LostUpdates == 0, "%d", res.LostUpdates)
	r.check("zero resurrected sessions", res.Resurrected == 0, "%d of %s ended sessions answered", res.Resurrected, thousands(res.RetiredChecked))
}

// checkProc adds the criterion that the goroutines went back to baseline,
// and says where those that did not exit come from.
func checkProc(r *Report, before, after load.ProcStats) {
	r.check("goroutines back to baseline", after.Goroutines <= before.Goroutines, "%d after, %d before", after.Goroutines, before.Goroutines)
	explainGoroutines(r, before, after)
}

// explainGoroutines notes the goroutines that are left, by origin, when
// there are more than at the baseline.
func explainGoroutines(r *Report, before, after load.ProcStats) {
	if after.Goroutines <= before.Goroutines {
		return
	}
	r.note("goroutines after the run, by origin: %s (before: %s)", origins(after.Origins), origins(before.Origins))
}

// origins formats goroutine counts by origin.
func origins(g map[string]int) string {
	var parts []string
	for _, origin := range slices.Sorted(maps.Keys(g)) {
		parts = append(parts, fmt.Sprintf("%d started by %s", g[origin], origin))
	}
	return strings.Join(parts, "; ")
}

// checkPanics adds the criterion that nothing panicked.
func checkPanics(r *Report, a *load.App, res *load.Result) {
	st := res.Statuses()
	r.check("no panic", a.Panics.Count() == 0 && st[http.StatusInternalServerError] == 0,
		"%d panics recovered by gin, %d answers 500", a.Panics.Count(), st[http.StatusInternalServerError])
}
