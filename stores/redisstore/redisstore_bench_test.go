package redisstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/storetest"
)

func BenchmarkStore(b *testing.B) {
	storetest.Benchmark(b, func(b *testing.B) stores.Store { return newStore(b, nil) })
}

// BenchmarkPoolSize reads sessions from 64 goroutines, each spending
// 0-400µs between reads without a connection as a request handler does,
// through clients with different pool sizes. conns/op is the connections
// the server accepted per read.
func BenchmarkPoolSize(b *testing.B) {
	srv := sharedServer(b)
	for _, size := range []int{4, 16, 64} {
		b.Run(fmt.Sprintf("PoolSize=%d", size), func(b *testing.B) {
			opts := clientOptions(srv.Addr)
			opts.PoolSize = size
			c := redis.NewClient(opts)
			defer c.Close()
			s := New(c, WithPrefix(uniquePrefix()))
			key := testKey()
			if err := s.Add(context.Background(), key, storetest.SessionRecord(), time.Now().Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			before := totalConnections(b, srv)
			procs := runtime.GOMAXPROCS(0)
			b.SetParallelism((64 + procs - 1) / procs)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Get(ctx, key); err != nil {
						b.Error(err)
						return
					}
					time.Sleep(rand.N(400 * time.Microsecond))
				}
			})
			b.StopTimer()
			opened := totalConnections(b, srv) - before - 1 // the INFO's own
			b.ReportMetric(float64(opened)/float64(b.N), "conns/op")
		})
	}
}

func totalConnections(b *testing.B, srv interface {
	Info(string) (map[string]string, error)
}) int64 {
	info, err := srv.Info("stats")
	if err != nil {
		b.Fatal(err)
	}
	n, err := strconv.ParseInt(info["total_connections_received"], 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

func BenchmarkAdmit(b *testing.B) {
	lb := NewLimiterBackend(newClient(b, sharedServer(b).Addr), uniquePrefix())
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		// 10 per second over a sliding second: mostly admissions, a full
		// history of 10.
		if _, err := lb.Admit(ctx, "k", 10, time.Second, now.Add(time.Duration(i)*100*time.Millisecond)); err != nil {
			b.Fatal(err)
		}
	}
}
