package redisstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/stores"
)

// benchRecord is a typical session: a user, its public handle, the
// timestamps the Manager keeps and a few small values.
func benchRecord() *stores.Record {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	return &stores.Record{
		Kind:           stores.KindSession,
		UserID:         "user-1234567",
		Handle:         "5b0a3c1e-8f6a-4d43-9e7b-1d2c3b4a5f60",
		CreatedAt:      t0.UnixNano(),
		AbsoluteExpiry: t0.Add(24 * time.Hour).UnixNano(),
		RenewedAt:      t0.UnixNano(),
		Data: map[string]any{
			"role":    "editor",
			"theme":   "dark",
			"cart":    []int{17, 42, 99},
			"visits":  12,
			"flashes": []string{"Saved."},
		},
	}
}

// benchStore returns a store on the shared server holding n records,
// and their keys.
func benchStore(b *testing.B, n int, opts ...Option) (*Store, []stores.Key) {
	b.Helper()
	s := newStore(b, nil, opts...)
	keys := make([]stores.Key, n)
	for i := range keys {
		keys[i] = testKey()
		if err := s.Add(context.Background(), keys[i], benchRecord(), time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	return s, keys
}

// touchFn is the UpdateFunc of the benchmarks: it bumps a counter.
func touchFn(cur stores.Item) (*stores.Record, time.Time, error) {
	data, err := stores.MergeData(cur.Record.Data, map[string]any{"visits": cur.Record.Data["visits"].(int) + 1})
	if err != nil {
		return nil, time.Time{}, err
	}
	next := *cur.Record
	next.Data = data
	return &next, cur.ExpiresAt, nil
}

func BenchmarkGet(b *testing.B) {
	s, keys := benchStore(b, 1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, keys[0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetParallel(b *testing.B) {
	s, keys := benchStore(b, 64)
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := keys[int(next.Add(1))%len(keys)]
		for pb.Next() {
			if _, err := s.Get(ctx, key); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkGetMissing(b *testing.B) {
	s := newStore(b, nil)
	ctx := context.Background()
	key := testKey()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, key); err != errNotFound {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdateFrom is an update within a request whose session the
// middleware read: one compare-and-swap script. The read that gives each
// update its fresh item is not timed.
func BenchmarkUpdateFrom(b *testing.B) {
	s, keys := benchStore(b, 1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		cur, err := s.Get(ctx, keys[0])
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.UpdateFrom(ctx, keys[0], cur, touchFn); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUpdate(b *testing.B) {
	s, keys := benchStore(b, 1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Update(ctx, keys[0], touchFn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdateParallel updates one session per goroutine.
func BenchmarkUpdateParallel(b *testing.B) {
	s, keys := benchStore(b, 64)
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := keys[int(next.Add(1))%len(keys)]
		for pb.Next() {
			if err := s.Update(ctx, key, touchFn); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkUpdateContended updates one session from all goroutines.
func BenchmarkUpdateContended(b *testing.B) {
	s, keys := benchStore(b, 1)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Update(ctx, keys[0], touchFn); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkAdd(b *testing.B) {
	s := newStore(b, nil)
	ctx := context.Background()
	rec := benchRecord()
	exp := time.Now().Add(time.Hour)
	keys := make([]stores.Key, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if len(keys) == cap(keys) {
			keys = keys[:0]
		}
		keys = append(keys, testKey())
		b.StartTimer()
		if err := s.Add(ctx, keys[len(keys)-1], rec, exp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTouch(b *testing.B) {
	s, keys := benchStore(b, 1)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Touch(ctx, keys[0], exp); err != nil {
			b.Fatal(err)
		}
	}
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
			if err := s.Add(context.Background(), key, benchRecord(), time.Now().Add(time.Hour)); err != nil {
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
