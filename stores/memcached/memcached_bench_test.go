package memcached

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/securestack/ginsession/internal/memcachedtest"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/codec"
)

// benchRecord is a typical session: a user, its public handle, the
// timestamps the Manager keeps and a few small values.
func benchRecord() *stores.Record {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	return &stores.Record{
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

func BenchmarkTouchParallel(b *testing.B) {
	s, keys := benchStore(b, 64)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := keys[int(next.Add(1))%len(keys)]
		for pb.Next() {
			if err := s.Touch(ctx, key, exp); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	rec := benchRecord()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = codec.Append(buf[:0], rec, 1, 2); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecode(b *testing.B) {
	buf, err := codec.Append(nil, benchRecord(), 1, 2)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := codec.Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
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
	if err := s.Add(context.Background(), key, benchRecord(), time.Now().Add(time.Hour)); err != nil {
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
