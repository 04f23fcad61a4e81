package scenario

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/loadtest/internal/load"
	"github.com/securestack/ginsession/loadtest/internal/servers"
	"github.com/securestack/ginsession/stores/redisstore"
)

// Sentinel's settings for the runs: a master is deemed down after 500ms
// without an answer.
const (
	sentinelDownAfter       = 500 * time.Millisecond
	sentinelFailoverTimeout = 2 * time.Second
	// waitTimeout is WithWait's timeout in the durable run.
	waitTimeout = 200 * time.Millisecond
	// writers is the number of goroutines that keep logging in new users,
	// so that sessions are being written at the instant of the kill.
	writers = 4
	// recentWindow is how close to the kill a session counts as "just
	// written" in the figures.
	recentWindow = 100 * time.Millisecond
)

// Sentinel runs the mix and a few session writers against the example on
// a Redis master with one replica and three Sentinels, through go-redis's
// failover client; kills the master (SIGKILL) a quarter of the way in;
// waits for the Sentinels to promote the replica; starts the old master
// again as a replica of the new one (as an operator would: without
// persistence, an old master restarted empty before the failover would be
// kept as master, with nothing in it) and goes on to the end. It then
// reads back every session answered 200 before the kill.
//
// With wait, the store runs with redisstore.WithWait(1, 200ms): every
// session answered 200 before the kill must survive. Without it, writes
// acknowledged by the master but not yet replicated can be lost, and the
// figures say how many were.
func Sentinel(ctx context.Context, wait bool, opt Options) *Report {
	opt.defaults()
	start := time.Now()
	id, title := "sentinel", "Redis Sentinel failover, asynchronous replication (WithWait off, the default)"
	if wait {
		id, title = "sentinel-wait", "Redis Sentinel failover with redisstore.WithWait(1, 200ms)"
	}
	r := newReport(id, title)
	r.Setup = fmt.Sprintf("one master, one replica and three Sentinels on loopback (down-after-milliseconds %d, failover-timeout %d, quorum 2); redis.NewFailoverClient with the recommended settings; %d clients and %d session writers for %v; the master is killed (SIGKILL) after %v",
		sentinelDownAfter.Milliseconds(), sentinelFailoverTimeout.Milliseconds(), opt.Clients, writers, opt.FaultDuration, opt.FaultDuration/4)
	g, err := servers.NewGroup()
	if err != nil {
		return r.fail(err).finish(start)
	}
	defer g.Close()
	opt.step("starting a master, a replica and three Sentinels")
	set, err := g.SentinelSet(servers.SentinelConfig{Replicas: 1, Sentinels: 3, DownAfter: sentinelDownAfter, FailoverTimeout: sentinelFailoverTimeout})
	if err != nil {
		return r.fail(err).finish(start)
	}
	client := redis.NewFailoverClient(failoverOptions(set.MasterName, set.SentinelAddrs()))
	defer client.Close()
	var ropts []redisstore.Option
	if wait {
		ropts = append(ropts, redisstore.WithWait(1, waitTimeout))
	}
	store := redisstore.New(client, ropts...)
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

	var (
		res    *load.Result
		runErr error
		wg     sync.WaitGroup
	)
	opt.step("%d clients and %d writers for %v; kill the master at %v", opt.Clients, writers, opt.FaultDuration, opt.FaultDuration/4)
	w := startWriters(ctx, a.URL, writers, id)
	wg.Go(func() {
		res, runErr = load.Run(ctx, load.Config{URL: a.URL, Clients: opt.Clients, Duration: opt.FaultDuration, Users: id, Timeline: true})
	})
	runStart := time.Now()
	sleepUntil(ctx, runStart.Add(opt.FaultDuration/4))
	oldMaster := set.Master.Addr
	tKill := time.Now()
	set.Master.Kill()
	newMaster, failoverErr := set.WaitFailover(ctx, oldMaster)
	tSwitch := time.Now()
	var rejoinErr error
	var tSynced time.Time
	if failoverErr == nil {
		host, port, _ := net.SplitHostPort(newMaster)
		if rejoinErr = set.Master.Start("--replicaof", host, port); rejoinErr == nil {
			rejoinErr = servers.WaitInSync(ctx, oldMaster)
		}
		tSynced = time.Now()
	}
	wg.Wait()
	sessions := w.Stop()
	if runErr != nil {
		return r.fail(runErr).finish(start)
	}
	if failoverErr != nil {
		return r.fail(fmt.Errorf("failover: %w", failoverErr)).finish(start)
	}
	if rejoinErr != nil {
		return r.fail(fmt.Errorf("restarting the old master as a replica: %w", rejoinErr)).finish(start)
	}
	opt.step("reading back the sessions written before the kill")
	pre, recent := writtenBefore(sessions, tKill, recentWindow)
	rb := readSessions(ctx, a.URL, pre)
	after, settled := settle(before)

	kill := tKill.Sub(res.Start)
	ev := res.Events
	mixFigures(r, res)
	r.fig("failover", "master killed %s into the run; the Sentinels named the replica master %s later; the old master, started again as its replica, was in sync %s after the kill",
		seconds(kill), ms(tSwitch.Sub(tKill)), ms(tSynced.Sub(tKill)))
	windows := func(name string, evs []load.Event) (time.Duration, bool) {
		f, failed := firstFailureEnd(evs, kill)
		if !failed {
			r.fig(name+": failure window", "no failure")
			return 0, true
		}
		s, ok := firstOK(evs, f)
		l, _ := lastFailureEnd(evs)
		if !ok {
			r.fig(name+": failure window", "first failure %s after the kill, no success after it", ms(f-kill))
			return 0, false
		}
		r.fig(name+": failure window", "%s (first failure %s after the kill; first success of a request sent after it, %s after the kill; last failure %s after the kill)",
			ms(s-f), ms(f-kill), ms(s-kill), ms(l-kill))
		return s - f, true
	}
	_, readsBack := windows("reads (GET /profile)", filterOps(ev, load.OpProfile))
	_, writesBack := windows("writes (update, login, logout)", filterOps(ev, load.OpUpdate, load.OpLogin, load.OpLogout))
	r.fig("503 answers: count, p99 / max latency", "%s, %s / %s", thousands(int64(res.Latency503.Count())), ms(res.Latency503.Quantile(0.99)), ms(res.Latency503.Max()))
	r.fig("sessions written before the kill, read back after the failover", "%s of %s (%d of them answered in the last %s before the kill): %s",
		thousands(int64(rb.kept)), thousands(int64(len(pre))), recent, ms(recentWindow), rb)
	r.fig("mix clients' sessions lost (401 for a session held)", "%d (%d more after a failed logout or login, which may have ended them)", res.SessionsLost, res.SessionsGone)
	procFigures(r, before, after, settled)

	f := res.Failures()
	var other int64
	for k, n := range f {
		if k != "503" {
			other += n
		}
	}
	early := failuresEndingBefore(ev, kill)
	r.check("zero unexpected errors: failures are 503s, during the failover only", other == 0 && res.Unexpected == 0 && early == 0 && res.CheckErrors == 0,
		"failures other than 503: %d (%s); %d unexpected answers; %d failures before the kill; %d checks without an answer", other, failures(f), res.Unexpected, early, res.CheckErrors)
	checkPanics(r, a, res)
	r.check("reads and writes succeed again after the failover, without restarting the application", readsBack && writesBack,
		"reads back: %t, writes back: %t", readsBack, writesBack)
	checkProc(r, before, after)
	if wait {
		r.check("every session written with WithWait before the kill survives", rb.lost == 0 && rb.unclear == 0 && len(pre) > 0,
			"%s of %s", rb, thousands(int64(len(pre))))
		r.check("zero lost updates, zero resurrected sessions, zero sessions lost (of what was answered 200)",
			res.LostUpdates == 0 && res.Resurrected == 0 && res.SessionsLost == 0,
			"%d lost updates, %d resurrected, %d sessions lost", res.LostUpdates, res.Resurrected, res.SessionsLost)
	} else {
		r.note("Without WithWait nothing is asserted about losses: replication is asynchronous, and what the master acknowledged in its last moments may be missing on the replica. Measured here: %d of %d sessions lost, %d lost updates, %d resurrected sessions, %d mix sessions lost.",
			rb.lost, len(pre), res.LostUpdates, res.Resurrected, res.SessionsLost)
	}
	return r.finish(start)
}
