package memcached

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/securestack/ginsession/internal/memcachedtest"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/storetest"
)

func BenchmarkStore(b *testing.B) {
	storetest.Benchmark(b, func(b *testing.B) stores.Store { return newStore(b, nil) })
}

// BenchmarkIdleConns measures what MaxIdleConns does to goroutines reading
// sessions in parallel, with 8 and 64 goroutines; conns/op is the TCP
// connections opened per operation, from the server's total_connections.
// In the "busy" variants each goroutine reads back to back: on loopback
// few requests overlap and a small pool suffices. In the "work" variants
// each goroutine spends 0-400µs between reads without a connection, as a
// request handler does, so the number of reads in flight varies, and
// every connection released while MaxIdleConns are already idle is
// closed, to be dialled again by the next read.
func BenchmarkIdleConns(b *testing.B) {
	srv := sharedServer(b)
	for _, mode := range []string{"busy", "work"} {
		for _, goroutines := range []int{8, 64} {
			for _, idle := range []int{2, 32, DefaultMaxIdleConns} {
				name := fmt.Sprintf("%s/goroutines=%d/MaxIdleConns=%d", mode, goroutines, idle)
				b.Run(name, func(b *testing.B) {
					var work time.Duration
					if mode == "work" {
						work = 200 * time.Microsecond
					}
					benchIdleConns(b, srv, goroutines, idle, work)
				})
			}
		}
	}
}

// benchIdleConns reads one session from goroutines goroutines through a
// client keeping idle connections, pausing a random 0 to 2*work between
// reads.
func benchIdleConns(b *testing.B, srv *memcachedtest.Server, goroutines, idle int, work time.Duration) {
	c := memcache.New(srv.Addr)
	c.Timeout = testTimeout
	c.MaxIdleConns = idle
	defer c.Close()
	s := New(c, WithPrefix(uniquePrefix()))
	key := testKey()
	if err := s.Add(context.Background(), key, storetest.SessionRecord(), time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	before := srv.Stats(b)["total_connections"]
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((goroutines + procs - 1) / procs)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, key); err != nil {
				b.Error(err)
				return
			}
			if work > 0 {
				time.Sleep(rand.N(2 * work))
			}
		}
	})
	b.StopTimer()
	opened := srv.Stats(b)["total_connections"] - before - 1 // this Stats call
	b.ReportMetric(float64(opened)/float64(b.N), "conns/op")
}
