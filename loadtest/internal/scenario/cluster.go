package scenario

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/loadtest/internal/load"
	"github.com/securestack/ginsession/loadtest/internal/servers"
	"github.com/securestack/ginsession/stores/redisstore"
)

// Cluster's settings for the run.
const (
	clusterNodeTimeout = time.Second
	// probeSessions is how many sessions the probes read in turn.
	probeSessions = 120
	probers       = 12
	// ClusterReload is the cluster client's ClusterStateReloadInterval in
	// the cluster run (see clusterOptions).
	ClusterReload = time.Second
	// defaultReloadRun is the least length of the run with go-redis's
	// default interval (60s), so that the reload happens within it.
	defaultReloadRun = 80 * time.Second
)

// ClusterVariant chooses the settings of a Cluster run.
type ClusterVariant struct {
	// Reload is the client's ClusterStateReloadInterval (0: go-redis's
	// default, 60s).
	Reload time.Duration
	// FullCoverage sets cluster-require-full-coverage yes (Redis's
	// default) instead of no.
	FullCoverage bool
}

// probe is one read of a probe session.
type probe struct {
	session    int
	start, end time.Time
	ok         bool
}

// Cluster runs the mix against the example on a Redis Cluster of three
// masters with a replica each, through go-redis's cluster client, while
// probes read 300 known sessions in turn; it kills one master (SIGKILL) a
// quarter of the way in and lets the cluster fail over. Sessions whose
// keys live on the other masters must stay readable throughout; the
// figures say how long those on the killed master's slots were not.
//
// v chooses the variant: the "cluster" run (ClusterReload, full coverage
// not required), and two that show why those settings matter, run only
// when named: go-redis's default ClusterStateReloadInterval (60s, so a
// longer run), and Redis's default cluster-require-full-coverage yes, with
// which the other masters' sessions are not asserted but measured.
func Cluster(ctx context.Context, v ClusterVariant, opt Options) *Report {
	opt.defaults()
	start := time.Now()
	id, title, interval := "cluster", "Redis Cluster: a master killed under load", fmt.Sprintf("ClusterStateReloadInterval %v", v.Reload)
	coverage := "no"
	switch {
	case v.Reload == 0:
		id, title, interval = "cluster-default-reload", "Redis Cluster: a master killed under load, go-redis's default ClusterStateReloadInterval (60 s)", "go-redis's default ClusterStateReloadInterval (60 s)"
		opt.FaultDuration = max(opt.FaultDuration, defaultReloadRun)
	case v.FullCoverage:
		id, title = "cluster-full-coverage", "Redis Cluster: a master killed under load, cluster-require-full-coverage yes (Redis's default)"
		coverage = "yes"
	}
	r := newReport(id, title)
	r.Setup = fmt.Sprintf("3 masters with a replica each on loopback (cluster-node-timeout %d, cluster-require-full-coverage %s), created with redis-cli --cluster create --cluster-replicas 1; redis.NewClusterClient with the recommended settings and %s; %d clients and %d probes reading %d sessions for %v; one master is killed (SIGKILL) after %v",
		clusterNodeTimeout.Milliseconds(), coverage, interval, opt.Clients, probers, probeSessions, opt.FaultDuration, opt.FaultDuration/4)
	g, err := servers.NewGroup()
	if err != nil {
		return r.fail(err).finish(start)
	}
	defer g.Close()
	opt.step("starting a cluster of 3 masters and 3 replicas")
	cl, err := g.Cluster(servers.ClusterConfig{Masters: 3, ReplicasPerMaster: 1, NodeTimeout: clusterNodeTimeout,
		Args: []string{"--cluster-require-full-coverage", coverage}})
	if err != nil {
		return r.fail(err).finish(start)
	}
	client := redis.NewClusterClient(clusterOptions(cl.Addrs(), v.Reload))
	defer client.Close()
	store := redisstore.New(client)
	defer store.Close()
	a, err := load.Serve(store)
	if err != nil {
		return r.fail(err).finish(start)
	}
	defer a.Close()
	if err := warmUp(ctx, a); err != nil {
		return r.fail(err).finish(start)
	}

	// The probe sessions, and the master each one's key lives on.
	opt.step("writing %d probe sessions", probeSessions)
	w := startWriters(ctx, a.URL, 8, "probe")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		w.mu.Lock()
		n := len(w.sessions)
		w.mu.Unlock()
		if n >= probeSessions || time.Now().After(deadline) {
			break
		}
	}
	sessions := w.Stop()
	if len(sessions) < probeSessions {
		return r.fail(fmt.Errorf("wrote %d probe sessions of %d", len(sessions), probeSessions)).finish(start)
	}
	sessions = sessions[:probeSessions]
	topo, err := cl.Topology(ctx)
	if err != nil {
		return r.fail(err).finish(start)
	}
	var victim, replica servers.ClusterNode
	for _, n := range topo {
		if n.Master && (victim.Addr == "" || n.Addr < victim.Addr) {
			victim = n
		}
	}
	for _, n := range topo {
		if n.MasterID == victim.ID {
			replica = n
		}
	}
	if replica.Addr == "" {
		return r.fail(fmt.Errorf("master %s has no replica: %+v", victim.Addr, topo)).finish(start)
	}
	onVictim := make([]bool, len(sessions))
	var nVictim int
	for i, s := range sessions {
		node, err := client.MasterForKey(ctx, redisKey(s.cookie))
		if err != nil {
			return r.fail(err).finish(start)
		}
		if node.Options().Addr == victim.Addr {
			onVictim[i] = true
			nVictim++
		}
	}
	before := load.Stats()

	stopProbes := make(chan struct{})
	var probesWG sync.WaitGroup
	results := make([][]probe, probers)
	for p := range probers {
		probesWG.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			for j := p; ; j += probers {
				select {
				case <-stopProbes:
					return
				default:
				}
				i := j % len(sessions)
				t0 := time.Now()
				ok := readOnce(ctx, hc, a.URL, sessions[i].cookie)
				results[p] = append(results[p], probe{session: i, start: t0, end: time.Now(), ok: ok})
			}
		})
	}
	var (
		res    *load.Result
		runErr error
		wg     sync.WaitGroup
	)
	opt.step("%d clients and %d probes for %v; kill master %s at %v", opt.Clients, probers, opt.FaultDuration, victim.Addr, opt.FaultDuration/4)
	wg.Go(func() {
		res, runErr = load.Run(ctx, load.Config{URL: a.URL, Clients: opt.Clients, Duration: opt.FaultDuration, Users: "cluster", Timeline: true})
	})
	runStart := time.Now()
	sleepUntil(ctx, runStart.Add(opt.FaultDuration/4))
	tKill := time.Now()
	cl.Proc(victim.Addr).Kill()
	var tPromoted time.Time
	promoteErr := pollUntil(ctx, 30*time.Second, func(ctx context.Context) bool {
		info, err := servers.Info(ctx, replica.Addr, "replication")
		return err == nil && info["role"] == "master"
	})
	tPromoted = time.Now()
	wg.Wait()
	close(stopProbes)
	probesWG.Wait()
	if runErr != nil {
		return r.fail(runErr).finish(start)
	}
	if promoteErr != nil {
		return r.fail(fmt.Errorf("the replica %s of the killed master was not promoted: %w", replica.Addr, promoteErr)).finish(start)
	}
	opt.step("reading back the probe sessions")
	rb := readSessions(ctx, a.URL, sessions)
	var victimSessions []written
	for i, s := range sessions {
		if onVictim[i] {
			victimSessions = append(victimSessions, s)
		}
	}
	victimRB := readSessions(ctx, a.URL, victimSessions)
	after, settled := settleApp(before)

	// The probes' figures.
	var all []probe
	for _, ps := range results {
		all = append(all, ps...)
	}
	slices.SortFunc(all, func(a, b probe) int { return a.start.Compare(b.start) })
	var otherReads, otherFails, victimReads, victimFails int
	firstFail := map[int]time.Time{}
	backAt := map[int]time.Time{}
	var firstVictimFail, lastVictimFail time.Time
	for _, p := range all {
		if !onVictim[p.session] {
			otherReads++
			if !p.ok {
				otherFails++
			}
			continue
		}
		victimReads++
		if !p.ok {
			victimFails++
			if _, seen := firstFail[p.session]; !seen {
				firstFail[p.session] = p.end
			}
			if firstVictimFail.IsZero() {
				firstVictimFail = p.end
			}
			lastVictimFail = p.end
			delete(backAt, p.session)
		} else if f, failed := firstFail[p.session]; failed && p.start.After(f) {
			if _, ok := backAt[p.session]; !ok {
				backAt[p.session] = p.end
			}
		}
	}
	var windows []time.Duration
	for s, f := range firstFail {
		if b, ok := backAt[s]; ok {
			windows = append(windows, b.Sub(f))
		}
	}
	slices.Sort(windows)
	mixFigures(r, res)
	r.fig("failover", "master %s (%d slots) killed %s into the run; its replica %s was master %s later",
		victim.Addr, victim.Slots, seconds(tKill.Sub(res.Start)), replica.Addr, ms(tPromoted.Sub(tKill)))
	r.fig("probe sessions", "%d: %d on the killed master's slots, %d on the other masters", len(sessions), nVictim, len(sessions)-nVictim)
	r.fig("probe reads of sessions on the other masters", "%s, %d failed", thousands(int64(otherReads)), otherFails)
	if len(windows) > 0 {
		r.fig("sessions on the killed master's slots: unavailable", "%s reads, %s failed; per session, from its first failed read to its first good read after it: median %s, max %s; first failure %s after the kill, last failure %s after the kill",
			thousands(int64(victimReads)), thousands(int64(victimFails)), ms(windows[len(windows)/2]), ms(windows[len(windows)-1]),
			ms(firstVictimFail.Sub(tKill)), ms(lastVictimFail.Sub(tKill)))
	} else {
		r.fig("sessions on the killed master's slots: unavailable", "%s reads, %s failed", thousands(int64(victimReads)), thousands(int64(victimFails)))
	}
	r.fig("probe sessions read back after the failover", "all %d: %s; of those on the killed master: %s", len(sessions), rb, victimRB)
	r.fig("503 answers of the mix: count, p99 / max latency", "%s, %s / %s", thousands(int64(res.Latency503.Count())), ms(res.Latency503.Quantile(0.99)), ms(res.Latency503.Max()))
	procFigures(r, before, after, settled)
	r.fig("of which go-redis's own, before / after", "%d / %d: per-node machinery of the cluster client (after: %s)", before.GoRedis, after.GoRedis, goRedisOrigins(after))

	f := res.Failures()
	var other int64
	for k, n := range f {
		if k != "503" {
			other += n
		}
	}
	if v.FullCoverage {
		r.note("With cluster-require-full-coverage yes, %d of %s reads of sessions on the other masters failed: not asserted in this variant.", otherFails, thousands(int64(otherReads)))
	} else {
		r.check("every session on the other masters readable throughout", otherFails == 0 && otherReads > 0,
			"%d failed of %s reads", otherFails, thousands(int64(otherReads)))
	}
	r.check("sessions on the killed master's slots readable again after the failover", len(windows) == len(firstFail) && victimRB.kept == len(victimSessions),
		"%d of %d sessions that failed came back during the run; read back after: %s", len(windows), len(firstFail), victimRB)
	r.check("zero unexpected errors: failures are 503s", other == 0 && res.Unexpected == 0 && failuresEndingBefore(res.Events, tKill.Sub(res.Start)) == 0,
		"failures other than 503: %d (%s); %d unexpected answers; %d failures before the kill", other, failures(f), res.Unexpected, failuresEndingBefore(res.Events, tKill.Sub(res.Start)))
	checkPanics(r, a, res)
	app0, app1 := before.Goroutines-before.GoRedis, after.Goroutines-after.GoRedis
	r.check("goroutines of the application back to baseline (go-redis's per-node goroutines apart)", app1 <= app0, "%d after, %d before", app1, app0)
	if app1 > app0 {
		explainGoroutines(r, before, after)
	}
	r.note("Cluster replication is asynchronous too; the mix measured %d lost updates, %d resurrected sessions and %d sessions lost (not asserted).",
		res.LostUpdates, res.Resurrected, res.SessionsLost)
	return r.finish(start)
}

// redisKey returns the Redis key of the session with the given cookie:
// the store's prefix and the base64url SHA-256 of the ID (ginsession's key
// without WithTokenHashKey).
func redisKey(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return redisstore.DefaultPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

// readOnce reads a session's profile once and reports whether it answered
// 200.
func readOnce(ctx context.Context, hc *http.Client, base, cookie string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/profile", nil)
	req.AddCookie(&http.Cookie{Name: load.CookieName, Value: cookie})
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// pollUntil calls cond every 20ms until it is true or limit passes.
func pollUntil(ctx context.Context, limit time.Duration, cond func(ctx context.Context) bool) error {
	deadline := time.Now().Add(limit)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		ok := cond(cctx)
		cancel()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// goRedisOrigins formats the goroutines that go-redis started.
func goRedisOrigins(st load.ProcStats) string {
	g := map[string]int{}
	for origin, n := range st.Origins {
		if strings.HasPrefix(origin, "github.com/redis/go-redis/") {
			g[strings.TrimPrefix(origin, "github.com/redis/go-redis/v9")] = n
		}
	}
	if len(g) == 0 {
		return "none"
	}
	return origins(g)
}
