package scenario

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/loadtest/internal/load"
	"github.com/securestack/ginsession/stores/memory"
)

// Soak's shape: each user has sessionsPerUser sessions; probeCount live
// sessions are read while the sweep runs.
const (
	sessionsPerUser = 10
	probeCount      = 1000
	soakIdle        = 30 * time.Minute
	soakAbsolute    = 8 * time.Hour
)

// burnSpin is what the control goroutine of Soak increments.
var burnSpin atomic.Uint64

// Soak creates opt.SoakSessions sessions in the memory store (ten per
// user, so user indexes too), lets them expire and sweeps them, for
// opt.SoakCycles cycles, on an injected clock (ginsession.WithClock,
// memory.WithClock; the background sweeper is off and Store.Sweep is
// called directly). It reports the heap (HeapInuse after GC) at each
// cycle's start, at its peak and after the sweep, and the latency of
// GetSession on live sessions while the sweep runs, next to a control of
// the same length in which a goroutine only burns CPU and takes no lock.
func Soak(ctx context.Context, opt Options) *Report {
	opt.defaults()
	start := time.Now()
	r := newReport("soak-memory", "Memory store soak: sessions created and expired in cycles")
	n := opt.SoakSessions
	r.Setup = fmt.Sprintf("%s sessions per cycle (%d per user), %d cycles, injected clock, idle timeout %v, absolute %v; %d workers create them through Manager.CreateSession; Store.Sweep runs while one goroutine calls GetSession on %d live sessions",
		thousands(int64(n)), sessionsPerUser, opt.SoakCycles, soakIdle, soakAbsolute, runtime.GOMAXPROCS(0), probeCount)

	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	store := memory.New(memory.WithClock(now), memory.WithSweepInterval(0))
	m := ginsession.NewManager(store, ginsession.WithClock(now),
		ginsession.WithIdleTimeout(soakIdle), ginsession.WithAbsoluteTimeout(soakAbsolute))
	defer func() {
		if m != nil {
			_ = m.Close()
			_ = store.Close()
		}
	}()

	base := load.Stats().HeapInuse
	var sweepLat, burnLat, quietLat load.Hist
	var worstAfter uint64
	var firstAfter uint64
	var peakMax uint64
	var peakItems int
	cyclesOK := true
	for c := range opt.SoakCycles {
		if ctx.Err() != nil {
			return r.fail(ctx.Err()).finish(start)
		}
		opt.step("cycle %d: creating %s sessions", c+1, thousands(int64(n)))
		cycleBase := load.Stats().HeapInuse
		tc := time.Now()
		if err := createSessions(ctx, m, n, "soak-"+strconv.Itoa(c)); err != nil {
			return r.fail(err).finish(start)
		}
		created := time.Since(tc)
		// Live sessions for the reads, 20 minutes younger: they outlive
		// the first sweep.
		advance(20 * time.Minute)
		probes := make([]string, probeCount)
		for i := range probes {
			s, err := m.CreateSession(ctx, "probe-"+strconv.Itoa(c)+"-"+strconv.Itoa(i), map[string]any{"role": "member"})
			if err != nil {
				return r.fail(err).finish(start)
			}
			probes[i] = s.ID
		}
		items := store.Len()
		peakItems = max(peakItems, items)
		peak := load.Stats().HeapInuse
		peakMax = max(peakMax, peak)

		quiet, err := getLatencies(ctx, m, probes, func() { time.Sleep(200 * time.Millisecond) })
		if err != nil {
			return r.fail(err).finish(start)
		}
		quietLat.Merge(quiet)
		// 31 minutes after creation: the cycle's sessions are past their
		// idle deadline, the probes are not.
		advance(11 * time.Minute)
		var removed int
		var sweepTime time.Duration
		during, err := getLatencies(ctx, m, probes, func() {
			s := time.Now()
			removed = store.Sweep()
			sweepTime = time.Since(s)
		})
		if err != nil {
			return r.fail(err).finish(start)
		}
		sweepLat.Merge(during)
		burn, err := getLatencies(ctx, m, probes, func() {
			for end := time.Now().Add(sweepTime); time.Now().Before(end); {
				for range 1000 {
					burnSpin.Add(1)
				}
			}
		})
		if err != nil {
			return r.fail(err).finish(start)
		}
		burnLat.Merge(burn)
		// Past every absolute deadline: the probes and the user indexes
		// expire too, and the store must end empty.
		advance(soakAbsolute + time.Minute)
		removed2 := store.Sweep()
		left := store.Len()
		after := load.Stats().HeapInuse
		if c == 0 {
			firstAfter = after
		}
		worstAfter = max(worstAfter, after)
		r.fig(fmt.Sprintf("cycle %d: heap at start / peak / after the sweep", c+1), "%s / %s / %s (%s store items at the peak; created in %s)",
			load.MiB(cycleBase), load.MiB(peak), load.MiB(after), thousands(int64(items)), seconds(created))
		r.fig(fmt.Sprintf("cycle %d: sweep", c+1), "removed %s expired sessions in %s while %s GetSession calls ran; then %s more items (probes, user indexes), %d left",
			thousands(int64(removed)), ms(sweepTime), thousands(int64(during.Count())), thousands(int64(removed2)), left)
		if removed != n || left != 0 {
			cyclesOK = false
		}
	}
	// Drop the store: what it still held is then released.
	_ = m.Close()
	_ = store.Close()
	m, store = nil, nil
	dropped := load.Stats().HeapInuse
	r.fig("baseline heap (before the first cycle) / once the store is closed and dropped", "%s / %s", load.MiB(base), load.MiB(dropped))
	latFig := func(name string, h *load.Hist) {
		r.fig(name, "%s calls: p50 %s, p99 %s, p99.9 %s, max %s", thousands(int64(h.Count())),
			us(h.Quantile(0.5)), us(h.Quantile(0.99)), us(h.Quantile(0.999)), us(h.Max()))
	}
	latFig("GetSession, nothing else running", &quietLat)
	latFig("GetSession during the sweep", &sweepLat)
	latFig("GetSession during the control (CPU burn of the same length, no sweep)", &burnLat)

	r.check("every cycle's sessions swept, the store empty at the end of each cycle", cyclesOK, "%t", cyclesOK)
	growth := (peakMax - base) / 20
	r.check("no leak: the heap after the sweep is the same every cycle", worstAfter <= firstAfter+growth,
		"worst after-sweep %s, first cycle's %s (+%s allowed: a twentieth of the peak's growth)", load.MiB(worstAfter), load.MiB(firstAfter), load.MiB(growth))
	r.check("heap back to baseline once the store is dropped", dropped <= base+2<<20,
		"%s, baseline %s (+2 MiB allowed)", load.MiB(dropped), load.MiB(base))
	// A sweep that empties most of a shard rebuilds its map, so the
	// expired sessions' tables are returned, not only kept for reuse.
	retained := worstAfter - min(worstAfter, base)
	r.check("heap back near its baseline after each sweep, while the store lives", worstAfter <= base+growth,
		"worst after-sweep %s, baseline %s (+%s allowed); %s kept (%.0f bytes per item of the peak, %s items)",
		load.MiB(worstAfter), load.MiB(base), load.MiB(growth), load.MiB(retained), float64(retained)/float64(peakItems), thousands(int64(peakItems)))
	r.note("The sweep's effect on reads is reported, not asserted: on a shared 2-core machine the control's tail shows what CPU contention alone does.")
	return r.finish(start)
}

// createSessions creates n sessions, sessionsPerUser per user, from
// GOMAXPROCS workers.
func createSessions(ctx context.Context, m *ginsession.Manager, n int, prefix string) error {
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				user := prefix + "-" + strconv.Itoa(i/sessionsPerUser)
				if _, err := m.CreateSession(ctx, user, map[string]any{"role": "member", "n": i}); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("CreateSession %d: %w", i, err) })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// getLatencies calls GetSession on ids in turn, timing each call, for as
// long as work runs in another goroutine.
func getLatencies(ctx context.Context, m *ginsession.Manager, ids []string, work func()) (*load.Hist, error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		work()
	}()
	h := new(load.Hist)
	for i := 0; ; i++ {
		select {
		case <-done:
			if h.Count() == 0 {
				return nil, fmt.Errorf("no GetSession call completed")
			}
			return h, nil
		default:
		}
		t := time.Now()
		_, err := m.GetSession(ctx, ids[i%len(ids)])
		h.Add(time.Since(t))
		if err != nil {
			<-done
			return nil, fmt.Errorf("GetSession of a live session: %w", err)
		}
	}
}
