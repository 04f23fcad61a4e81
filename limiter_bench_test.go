package ginsession

import (
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// limBenchStart is the fixed instant the benchmarks start at.
var limBenchStart = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// limBenchKey returns a key that lives in shard i (modulo the shard count) of
// l, so that parallel goroutines, each with its own clock, never share a
// shard: a shard measures idleness by the latest time any of its keys saw.
func limBenchKey(l *Limiter, i int) string {
	want := i % l.table.Shards()
	for n := 0; ; n++ {
		k := "client-" + strconv.Itoa(i) + "-" + strconv.Itoa(n)
		if l.table.ShardOf(k) == want {
			return k
		}
	}
}

// BenchmarkLimiterAllowAt measures AllowAt on tracked keys, admitted (hit:
// time advances by 2*window/limit per call, so every call is admitted) and
// refused (miss: time stands still past the limit), serially and from
// parallel goroutines that each use their own key in their own shard.
func BenchmarkLimiterAllowAt(b *testing.B) {
	for _, limit := range []int{5, 1000} {
		const window = time.Minute
		step := 2 * window / time.Duration(limit) // half the rate: always admitted
		b.Run(fmt.Sprintf("limit=%d/hit/serial", limit), func(b *testing.B) {
			l := NewLimiter(limit, window)
			now := limBenchStart
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(step)
				if !l.AllowAt("203.0.113.50", now) {
					b.Fatal("refused")
				}
			}
		})
		b.Run(fmt.Sprintf("limit=%d/miss/serial", limit), func(b *testing.B) {
			l := NewLimiter(limit, window)
			for range limit {
				l.AllowAt("203.0.113.50", limBenchStart)
			}
			b.ReportAllocs()
			for b.Loop() {
				if l.AllowAt("203.0.113.50", limBenchStart) {
					b.Fatal("admitted")
				}
			}
		})
		b.Run(fmt.Sprintf("limit=%d/hit/parallel", limit), func(b *testing.B) {
			l := NewLimiter(limit, window)
			var id atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				key := limBenchKey(l, int(id.Add(1)))
				now := limBenchStart
				for pb.Next() {
					now = now.Add(step)
					if !l.AllowAt(key, now) {
						b.Error("refused")
						return
					}
				}
			})
		})
		b.Run(fmt.Sprintf("limit=%d/miss/parallel", limit), func(b *testing.B) {
			l := NewLimiter(limit, window)
			var id atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				key := limBenchKey(l, int(id.Add(1)))
				for range limit {
					l.AllowAt(key, limBenchStart)
				}
				for pb.Next() {
					if l.AllowAt(key, limBenchStart) {
						b.Error("admitted")
						return
					}
				}
			})
		})
	}
}

// BenchmarkLimiterReserveAt measures ReserveAt, which also computes the
// remaining quota and reset time.
func BenchmarkLimiterReserveAt(b *testing.B) {
	for _, limit := range []int{5, 1000} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			l := NewLimiter(limit, time.Minute)
			step := 2 * time.Minute / time.Duration(limit)
			now := limBenchStart
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(step)
				if !l.ReserveAt("203.0.113.50", now).Allowed {
					b.Fatal("refused")
				}
			}
		})
	}
}

// BenchmarkLimiterNewKeys measures a stream of distinct keys, each seen
// once, with the table at its cap and reclaiming idle keys: the cost of a
// flood of new clients.
func BenchmarkLimiterNewKeys(b *testing.B) {
	const keys = 1 << 16
	names := make([]string, keys)
	for i := range names {
		names[i] = "198.51." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&0xff)
	}
	l := NewLimiter(5, time.Second, WithMaxKeys(keys/4))
	now := limBenchStart
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i%keys == 0 {
			now = now.Add(2 * time.Second) // every key tracked so far is idle
		}
		l.AllowAt(names[i%keys], now)
		i++
	}
}

// BenchmarkLimiterMemory tracks one million keys and reports the heap they
// take per key, including the Limiter's copies of the keys (the caller's
// strings are allocated beforehand and not counted).
func BenchmarkLimiterMemory(b *testing.B) {
	const keys = 1_000_000
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&0xff, i&0xff)
	}
	for _, limit := range []int{1, 5, 64, 1000} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			var perKey float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				l := NewLimiter(limit, time.Minute, WithMaxKeys(2*keys))
				for _, k := range names {
					l.AllowAt(k, limBenchStart)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if l.Len() != keys {
					b.Fatalf("tracking %d keys, want %d", l.Len(), keys)
				}
				perKey = float64(after.HeapAlloc-before.HeapAlloc) / keys
				runtime.KeepAlive(l)
			}
			b.ReportMetric(perKey, "B/key")
		})
	}
}
