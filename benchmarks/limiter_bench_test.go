package benchmarks

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/securestack/ginsession"
)

// BenchmarkLimiter compares ginsession's exact sliding-window Limiter with
// golang.org/x/time/rate's token bucket, for one key, with the time passed
// in (AllowAt / AllowN), on an admitted event (hit) and a refused one
// (miss), serially and in parallel. The parallel cases give each goroutine
// its own key (ginsession) or limiter (x/time/rate), as per-client limits do.
//
// The two are not equivalent: rate.Limiter admits bursts of up to 2× its
// rate per window, where Limiter never admits more than limit in any
// window; the comparison shows what the exact guarantee costs.
func BenchmarkLimiter(b *testing.B) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const limit = 5
	window := time.Minute

	b.Run("op=hit/lib=ginsession", func(b *testing.B) {
		l := ginsession.NewLimiter(limit, window)
		// Each event is admitted: successive events are a full window/limit
		// apart, so the window never holds more than limit.
		step := window / limit
		now := t0
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(step)
			if !l.AllowAt("key", now) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("op=hit/lib=xtimerate", func(b *testing.B) {
		l := rate.NewLimiter(rate.Every(window/limit), limit)
		step := window / limit
		now := t0
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(step)
			if !l.AllowN(now, 1) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("op=miss/lib=ginsession", func(b *testing.B) {
		l := ginsession.NewLimiter(limit, window)
		for range limit {
			l.AllowAt("key", t0)
		}
		b.ReportAllocs()
		for b.Loop() {
			if l.AllowAt("key", t0) {
				b.Fatal("admitted")
			}
		}
	})
	b.Run("op=miss/lib=xtimerate", func(b *testing.B) {
		l := rate.NewLimiter(rate.Every(window/limit), limit)
		for range limit {
			l.AllowN(t0, 1)
		}
		b.ReportAllocs()
		for b.Loop() {
			if l.AllowN(t0, 1) {
				b.Fatal("admitted")
			}
		}
	})
	b.Run("op=missParallel/lib=ginsession", func(b *testing.B) {
		l := ginsession.NewLimiter(limit, window)
		var n atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			key := "key-" + strconv.FormatInt(n.Add(1), 10)
			for range limit {
				l.AllowAt(key, t0)
			}
			for pb.Next() {
				l.AllowAt(key, t0)
			}
		})
	})
	b.Run("op=missParallel/lib=xtimerate", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			l := rate.NewLimiter(rate.Every(window/limit), limit)
			for range limit {
				l.AllowN(t0, 1)
			}
			for pb.Next() {
				l.AllowN(t0, 1)
			}
		})
	})
	b.Run("op=hitParallel/lib=ginsession", func(b *testing.B) {
		l := ginsession.NewLimiter(limit, window)
		var n atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			key := "key-" + strconv.FormatInt(n.Add(1), 10)
			step := window / limit
			now := t0
			for pb.Next() {
				now = now.Add(step)
				l.AllowAt(key, now)
			}
		})
	})
	b.Run("op=hitParallel/lib=xtimerate", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			l := rate.NewLimiter(rate.Every(window/limit), limit)
			step := window / limit
			now := t0
			for pb.Next() {
				now = now.Add(step)
				l.AllowN(now, 1)
			}
		})
	})
}
