package scenario

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/loadtest/internal/load"
	"github.com/securestack/ginsession/loadtest/internal/servers"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/redisstore"
)

// The messages of ginsession's rate-limited failure log (middleware.go).
const (
	msgFailure   = "ginsession: cannot load session"
	msgRecovered = "ginsession: session store available again"
)

// recoveryTarget is how soon after the store is back requests must
// succeed again.
const recoveryTarget = time.Second

// redisProbeAllowance is what a Redis store may take beyond recoveryTarget:
// once PoolSize dials have failed, a go-redis pool stops dialling and
// probes the server once a second (internal/pool.(*ConnPool).tryDial), so
// the first success after a restart waits for the next probe, up to 1s
// later, then for the server to listen and a request to complete.
const redisProbeAllowance = 250 * time.Millisecond

// RedisLog counts go-redis's own log lines; the load command and the
// tests install it with redis.SetLogger.
var RedisLog = &load.RedisLog{}

// Outage runs the mix against the example on memcached or Redis, kills
// the store server (SIGKILL) a quarter of the way in, starts it again on
// the same address opt.Outage later (empty: neither keeps anything across
// a restart here) and goes on to the end, without restarting the
// application.
func Outage(ctx context.Context, kind string, opt Options) *Report {
	opt.defaults()
	start := time.Now()
	r := newReport("outage-"+kind, "Store killed under load and restarted: "+kind)
	// The outage lasts opt.Outage plus a random fraction of a second, so
	// that the restart falls anywhere in go-redis's one-second probe
	// period rather than always at the same point of it.
	down := opt.Outage + rand.N(time.Second)
	// The kill comes at a quarter of the run; after the restart (up to a
	// second late) the run needs the recovery's time and half a second
	// of traffic.
	if rest := opt.Outage + time.Second + recoveryTarget + redisProbeAllowance + time.Second/2; opt.FaultDuration*3/4 < rest {
		return r.fail(fmt.Errorf("a fault run of %v is too short for an outage of %v: give at least %v", opt.FaultDuration, opt.Outage, (rest*4/3).Round(time.Second)+time.Second)).finish(start)
	}
	r.Setup = fmt.Sprintf("%d clients for %v; the %s server is killed (SIGKILL) after %v and started again on its port %s later (%v plus a random fraction of a second); the application keeps running",
		opt.Clients, opt.FaultDuration, kind, opt.FaultDuration/4, seconds(down), opt.Outage)
	g, err := servers.NewGroup()
	if err != nil {
		return r.fail(err).finish(start)
	}
	defer g.Close()

	var (
		proc   *servers.Proc
		store  stores.Store
		bound  time.Duration
		target = recoveryTarget
	)
	switch kind {
	case Memcached:
		if proc, err = g.Memcached(1024); err != nil {
			return r.fail(err).finish(start)
		}
		if store, err = openMemcached(proc.Addr); err != nil {
			return r.fail(err).finish(start)
		}
		bound = memcachedBound
	case Redis:
		if proc, err = g.Redis("redis"); err != nil {
			return r.fail(err).finish(start)
		}
		client := redis.NewClient(redisOptions(proc.Addr))
		defer client.Close()
		store = redisstore.New(client)
		bound = redisBound
		target += redisProbeAllowance
	default:
		return r.fail(fmt.Errorf("unknown store %q", kind)).finish(start)
	}
	defer store.Close()

	a, err := load.Serve(store)
	if err != nil {
		return r.fail(err).finish(start)
	}
	defer a.Close()
	if err := warmUp(ctx, a); err != nil {
		return r.fail(err).finish(start)
	}
	before := load.Stats()
	stats0 := a.Manager.Stats()
	logs0 := len(a.Logs.Records())
	redisLog0 := RedisLog.Count()

	peak := sampleGoroutines()
	var (
		res    *load.Result
		runErr error
		wg     sync.WaitGroup
	)
	opt.step("%d clients for %v; kill %s at %v for %s", opt.Clients, opt.FaultDuration, kind, opt.FaultDuration/4, seconds(down))
	wg.Go(func() {
		res, runErr = load.Run(ctx, load.Config{URL: a.URL, Clients: opt.Clients, Duration: opt.FaultDuration, Users: "outage", Timeline: true})
	})
	runStart := time.Now()
	sleepUntil(ctx, runStart.Add(opt.FaultDuration/4))
	tKill := time.Now()
	proc.Kill()
	statsKill := a.Manager.Stats()
	sleepUntil(ctx, tKill.Add(down))
	statsRestart := a.Manager.Stats()
	tRestart := time.Now()
	startErr := proc.Start()
	tReady := time.Now()
	wg.Wait()
	peakGoroutines := peak()
	if runErr != nil {
		return r.fail(runErr).finish(start)
	}
	if startErr != nil {
		return r.fail(fmt.Errorf("restart: %w", startErr)).finish(start)
	}
	after, settled := settle(before)
	stats := a.Manager.Stats()

	kill, restart := tKill.Sub(res.Start), tRestart.Sub(res.Start)
	ev := res.Events
	mixFigures(r, res)
	r.fig("store down", "killed %s into the run, started again %s later (answering %s after the start command)",
		seconds(kill), seconds(restart-kill), ms(tReady.Sub(tRestart)))
	r.fig("503 answers: count, p50 / p99 / max latency", "%s, %s / %s / %s (store client timeout: %s)",
		thousands(int64(res.Latency503.Count())), ms(res.Latency503.Quantile(0.5)), ms(res.Latency503.Quantile(0.99)), ms(res.Latency503.Max()), ms(bound))
	firstAfter, okAfter := firstOK(ev, restart)
	lastFail, failedAfter := lastFailureStartedAfter(ev, restart)
	steady := firstAfter
	if failedAfter {
		steady = max(steady, lastFail)
	}
	if okAfter {
		r.fig("recovery after the restart", "first 200 after %s; steady 200s (no failure among requests started after the restart) after %s",
			ms(firstAfter-restart), ms(steady-restart))
	} else {
		r.fig("recovery after the restart", "no 200 after the restart")
	}
	r.fig("sessions lost to the restart", "%d (401 for a session the client held: the restarted server starts empty; %d of them after a failed logout or login)", res.SessionsLost+res.SessionsGone, res.SessionsGone)

	recs := a.Logs.Records()[logs0:]
	lf := analyzeLogs(recs, tKill, tRestart)
	storeErrors := stats.StoreErrors - stats0.StoreErrors
	r.fig("ginsession log records", "%d in the run (%.2f/s over the %s outage): %d failure records and %d \"available again\" while the store was down, %d records after its restart (%d \"available again\"); suppressed counts sum to %s",
		len(recs), float64(len(recs))/max(tRestart.Sub(tKill), time.Second).Seconds(), seconds(tRestart.Sub(tKill)), lf.downFailures, lf.downRecoveries, lf.afterRecords, lf.recoveries-lf.downRecoveries, thousands(int64(lf.suppressed)))
	r.fig("session loads while the store was down", "%s failed; %s found no session (which only a store that answers can say)",
		thousands(int64(statsRestart.StoreErrors-statsKill.StoreErrors)), thousands(int64(statsRestart.Unknown-statsKill.Unknown)))
	r.fig("Manager.Stats().StoreErrors", "%s failed session loads; the \"available again\" records' failures sum to %s",
		thousands(int64(storeErrors)), thousands(int64(lf.recovered)))
	if kind == Redis {
		r.fig("go-redis's own log lines (discarded)", "%s", thousands(RedisLog.Count()-redisLog0))
	}
	r.fig("goroutines before / peak / after", "%d / %d / %d (without the run's watchers of server processes; after: settled in %s once the clients closed their connections)",
		before.Goroutines, peakGoroutines, after.Goroutines, ms(settled))
	r.fig("heap in use before / after", "%s / %s", load.MiB(before.HeapInuse), load.MiB(after.HeapInuse))

	// Criteria.
	f := res.Failures()
	var other int64
	for k, n := range f {
		if k != "503" {
			other += n
		}
	}
	early := failuresEndingBefore(ev, kill)
	late := failuresStartingAfter(ev, restart+target)
	r.check("zero unexpected errors", other == 0 && res.Unexpected == 0 && res.CheckErrors == 0 && early == 0 && late == 0,
		"failures other than 503: %d (%s); %d unexpected answers; 503s before the kill: %d, more than %v after the restart: %d; %d checks without an answer",
		other, failures(f), res.Unexpected, early, target, late, res.CheckErrors)
	r.check("503s answered within the store client's timeout", res.Latency503.Count() > 0 && res.Latency503.Quantile(0.99) <= bound,
		"p99 %s, max %s, bound %s, %d answers", ms(res.Latency503.Quantile(0.99)), ms(res.Latency503.Max()), ms(bound), res.Latency503.Count())
	checkPanics(r, a, res)
	r.check("goroutines back to baseline after recovery", after.Goroutines <= before.Goroutines, "%d after, %d before (peak %d)", after.Goroutines, before.Goroutines, peakGoroutines)
	explainGoroutines(r, before, after)
	// At each transition, requests in flight (at most one per client)
	// finish in any order: a success logged after the first failure of
	// the outage closes it in the log ("available again") and the next
	// failure opens another, so each such request adds a pair of records.
	// At the kill they are the requests that had read the store just
	// before it; after the restart those that had failed just before it.
	downFor := tRestart.Sub(tKill)
	maxDown := 1 + int(math.Ceil(downFor.Seconds())) + lf.downRecoveries
	r.check("log rate bounded while the store is down: the first failure, then at most 1 record/s (plus a pair per request in flight at the kill that finished out of order)",
		lf.downFailures >= 1 && lf.downFailures <= maxDown && lf.downRecoveries <= opt.Clients && lf.lastDownRecovery <= time.Second,
		"%d failure records in %s (at most %d); %d \"available again\" records while down, the last %s after the kill (at most %d, within 1 s)",
		lf.downFailures, seconds(downFor), maxDown, lf.downRecoveries, ms(lf.lastDownRecovery), opt.Clients)
	r.check("recovery logged, and a bounded number of records after the restart (a pair per request in flight that finished out of order)",
		lf.recoveries >= 1 && lf.lastIsRecovery && lf.afterRecords <= 1+2*opt.Clients,
		"%d \"available again\" records, the last record of the run is one: %t; %d records after the restart (at most %d)",
		lf.recoveries, lf.lastIsRecovery, lf.afterRecords, 1+2*opt.Clients)
	// The log leaves out failures of loads that began before the
	// recovery was noticed and finished after it (in flight at the
	// restart, at most one per client); Stats counts every one.
	r.check("every failure counted: StoreErrors counts each; the \"available again\" records' failures sum to it, less the failures in flight when the recovery was logged (at most one per client)",
		lf.recovered <= storeErrors && storeErrors-lf.recovered <= uint64(opt.Clients),
		"%d in the records, StoreErrors %d (%d in flight at the recovery, at most %d)", lf.recovered, storeErrors, storeErrors-lf.recovered, opt.Clients)
	name := "200s resume within 1 s of the restart, without restarting the application"
	if kind == Redis {
		name = "200s resume within go-redis's 1 s dial probe of the restart (+250 ms), without restarting the application"
	}
	if okAfter {
		r.check(name, steady-restart <= target,
			"first 200 after %s, steady after %s (from the start command; the server answered after %s); bound %s", ms(firstAfter-restart), ms(steady-restart), ms(tReady.Sub(tRestart)), ms(target))
	} else {
		r.check(name, false, "no 200 among the requests sent in the %s between the restart and the end of the run", seconds(res.Elapsed-restart))
	}
	r.check("zero lost updates, zero resurrected sessions (of what was answered 200)", res.LostUpdates == 0 && res.Resurrected == 0,
		"%d lost updates, %d of %s ended sessions answered", res.LostUpdates, res.Resurrected, thousands(res.RetiredChecked))
	if st := res.Statuses(); st[http.StatusOK] == 0 {
		r.note("no request succeeded")
	}
	return r.finish(start)
}

// sleepUntil sleeps until t or until ctx is done.
func sleepUntil(ctx context.Context, t time.Time) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(t)):
	}
}

// sampleGoroutines samples the number of goroutines every 20ms until the
// returned function is called, which returns the largest count seen.
func sampleGoroutines() func() int {
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if n := int64(runtime.NumGoroutine()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() int {
		close(stop)
		<-done
		return int(peak.Load()) - 1 // not counting the sampler
	}
}

// logFigures is what the failure log of a run with one outage shows.
type logFigures struct {
	downFailures   int // failure records from the kill until the restart
	downRecoveries int // "available again" records in that time
	// lastDownRecovery is when the last of those came, after the kill.
	lastDownRecovery time.Duration
	afterRecords     int    // records after the store answered
	recoveries       int    // "available again" records
	lastIsRecovery   bool   // the run's last record is one
	suppressed       uint64 // sum of the failure records' suppressed counts
	recovered        uint64 // sum of the recovery records' failures counts
}

func analyzeLogs(recs []load.LogRecord, down, up time.Time) logFigures {
	var lf logFigures
	for _, rec := range recs {
		switch rec.Message {
		case msgFailure:
			lf.suppressed += rec.Suppressed
			if !rec.Time.Before(down) && rec.Time.Before(up) {
				lf.downFailures++
			}
		case msgRecovered:
			lf.recoveries++
			lf.recovered += rec.Failures
			if !rec.Time.Before(down) && rec.Time.Before(up) {
				lf.downRecoveries++
				lf.lastDownRecovery = rec.Time.Sub(down)
			}
		}
		lf.lastIsRecovery = rec.Message == msgRecovered
		if !rec.Time.Before(up) {
			lf.afterRecords++
		}
	}
	return lf
}
