package benchmarks

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/stores/memory"
)

// scaleEnv gates TestScale, which takes a few seconds and a gigabyte of
// memory: GINSESSION_SCALE=1 go test -run TestScale -v
const scaleEnv = "GINSESSION_SCALE"

// spin is what the control goroutine of TestScale increments.
var spin uint64

// maxGetPause is the target for the longest GetSession seen during a sweep.
const maxGetPause = time.Millisecond

// TestScale measures the memory store at scale:
//
//   - bytes per session with 1M live sessions, created through
//     Manager.CreateSession with a small data map, each for its own user
//     (so each also has a user index record): the growth of the heap in
//     use (after GC) divided by the number of sessions, and the growth of
//     the live objects' bytes alone;
//   - the same for 1M anonymous sessions, which have no index record;
//   - the latencies of GetSession calls made concurrently with a Sweep that
//     removes 500k expired sessions (the clock is injected and advanced past
//     their idle deadline; the background sweeper is off and Sweep is called
//     directly), as p50, p99, p99.9 and max, next to the same figures with
//     no sweep and with a goroutine that only burns CPU for as long as the
//     sweep took: a control showing which stalls come from CPU contention
//     (other processes, the scheduler) rather than from the sweep's locks.
//
// It prints its figures in a stable "scale: name value unit" form. Timing
// targets are reported, not asserted: a test that fails on a busy machine
// proves nothing.
func TestScale(t *testing.T) {
	if os.Getenv(scaleEnv) == "" {
		t.Skipf("set %s=1 to run the scale measurements", scaleEnv)
	}
	const (
		total   = 1_000_000
		expired = total / 2
		sampleN = 1000
	)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	advance := func(d time.Duration) { clock.Add(int64(d)) }

	store := memory.New(memory.WithClock(now), memory.WithSweepInterval(0))
	m := ginsession.NewManager(store, ginsession.WithClock(now), ginsession.WithIdleTimeout(30*time.Minute))
	t.Cleanup(func() {
		// The first phase's store is dropped before the second phase, so
		// that its memory can be reclaimed; it is closed here if a failure
		// ended the test first.
		if m != nil {
			m.Close()
			store.Close()
		}
	})

	base := heapStats()
	start := time.Now()
	// The first half is created at t0, the second half 20 minutes later:
	// at t0+20m all are live; at t0+35m the first half is past its idle
	// deadline (t0+30m) and the second half lives until t0+50m.
	sample := make([]string, 0, sampleN)
	for i := range total {
		if i == expired {
			advance(20 * time.Minute)
		}
		user := "user" + strconv.Itoa(i)
		s, err := m.CreateSession(ctx, user, map[string]any{"user": user, "role": "member"})
		if err != nil {
			t.Fatalf("CreateSession %d: %v", i, err)
		}
		if i >= expired && (i-expired)%((total-expired)/sampleN) == 0 && len(sample) < sampleN {
			sample = append(sample, s.ID)
		}
	}
	created := time.Since(start)
	after := heapStats()
	items := store.Len()
	perSession := float64(after.inUse-base.inUse) / total
	fmt.Printf("scale: sessions %d\n", total)
	// Each user's index record (for ListUserSessions) is a store item too:
	// here every session has its own user, the costliest case.
	fmt.Printf("scale: store_items %d\n", items)
	fmt.Printf("scale: create_time %.2f s (%.0f ns/session)\n", created.Seconds(), float64(created.Nanoseconds())/total)
	fmt.Printf("scale: heap_inuse %.1f MiB\n", float64(after.inUse)/(1<<20))
	fmt.Printf("scale: bytes_per_session %.0f B\n", perSession)
	fmt.Printf("scale: live_bytes_per_session %.0f B\n", float64(after.live-base.live)/total)

	// Reference: GetSession latencies with no sweep running.
	quiet := getLatencies(t, m, sample, func() { time.Sleep(300 * time.Millisecond) })
	printLatencies("get_no_sweep", quiet)

	// Sweep 500k expired sessions while GetSession runs on live ones.
	advance(15 * time.Minute)
	var removed int
	var sweepTime time.Duration
	during := getLatencies(t, m, sample, func() {
		s := time.Now()
		removed = store.Sweep()
		sweepTime = time.Since(s)
	})
	if removed != expired {
		t.Errorf("Sweep removed %d sessions, want %d", removed, expired)
	}
	if n := store.Len(); n != items-expired {
		t.Errorf("store holds %d items after the sweep, want %d", n, items-expired)
	}
	fmt.Printf("scale: sweep_removed %d\n", removed)
	fmt.Printf("scale: sweep_time %.1f ms\n", float64(sweepTime.Microseconds())/1000)
	printLatencies("get_during_sweep", during)

	// Control: as long again with a goroutine that only burns CPU and takes
	// no store lock.
	burn := getLatencies(t, m, sample, func() {
		for end := time.Now().Add(sweepTime); time.Now().Before(end); {
			for i := 0; i < 1000; i++ {
				spin++
			}
		}
	})
	printLatencies("get_during_cpu_burn", burn)
	verdict := "met"
	if time.Duration(during.max) > maxGetPause {
		verdict = "missed"
	}
	fmt.Printf("scale: get_during_sweep_target max <= %v: %s (max %.0f µs; control without locks: max %.0f µs)\n",
		maxGetPause, verdict, float64(during.max)/1e3, float64(burn.max)/1e3)
	fmt.Printf("scale: heap_inuse_after_sweep %.1f MiB\n", float64(heapStats().inUse)/(1<<20))

	// The same count of anonymous sessions (no user, so no user index
	// record): what a session costs on its own.
	m.Close()
	store.Close()
	store, m, sample = nil, nil, nil
	anon := memory.New(memory.WithClock(now), memory.WithSweepInterval(0))
	defer anon.Close()
	am := ginsession.NewManager(anon, ginsession.WithClock(now))
	defer am.Close()
	base = heapStats()
	for i := range total {
		if _, err := am.CreateSession(ctx, "", map[string]any{"user": "user" + strconv.Itoa(i), "role": "member"}); err != nil {
			t.Fatalf("CreateSession (anonymous) %d: %v", i, err)
		}
	}
	after = heapStats()
	fmt.Printf("scale: bytes_per_anonymous_session %.0f B\n", float64(after.inUse-base.inUse)/total)
	fmt.Printf("scale: live_bytes_per_anonymous_session %.0f B\n", float64(after.live-base.live)/total)
}

// latencies summarizes GetSession latencies, in nanoseconds.
type latencies struct {
	n                   int
	over                int // calls slower than maxGetPause
	p50, p99, p999, max int64
}

// getLatencies calls GetSession on the sampled IDs in a loop, timing each
// call, for as long as work runs in another goroutine.
func getLatencies(t *testing.T, m *ginsession.Manager, ids []string, work func()) latencies {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		work()
	}()
	lat := make([]int64, 0, 1<<22)
	var maxLat int64
	var n, over int
	var getErr error
loop:
	for i := 0; ; i++ {
		select {
		case <-done:
			break loop
		default:
		}
		id := ids[i%len(ids)]
		s := time.Now()
		_, err := m.GetSession(ctx, id)
		d := int64(time.Since(s))
		if err != nil && getErr == nil {
			getErr = err
		}
		n++
		if d > int64(maxGetPause) {
			over++
		}
		maxLat = max(maxLat, d)
		if len(lat) < cap(lat) {
			lat = append(lat, d)
		}
	}
	if getErr != nil {
		t.Fatalf("GetSession of a live session: %v", getErr)
	}
	if len(lat) == 0 {
		t.Fatal("no GetSession call completed")
	}
	slices.Sort(lat)
	pct := func(p float64) int64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return latencies{n: n, over: over, p50: pct(0.50), p99: pct(0.99), p999: pct(0.999), max: maxLat}
}

func printLatencies(name string, l latencies) {
	fmt.Printf("scale: %s_calls %d\n", name, l.n)
	fmt.Printf("scale: %s_p50 %.2f µs\n", name, float64(l.p50)/1e3)
	fmt.Printf("scale: %s_p99 %.2f µs\n", name, float64(l.p99)/1e3)
	fmt.Printf("scale: %s_p99.9 %.2f µs\n", name, float64(l.p999)/1e3)
	fmt.Printf("scale: %s_max %.2f µs\n", name, float64(l.max)/1e3)
	fmt.Printf("scale: %s_over_%v %d calls\n", name, maxGetPause, l.over)
}

// heap is the heap after a full collection: the bytes of the spans in use
// (what the process holds for the heap, fragmentation included) and the
// bytes of live objects.
type heap struct{ inUse, live uint64 }

func heapStats() heap {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return heap{inUse: ms.HeapInuse, live: ms.HeapAlloc}
}
