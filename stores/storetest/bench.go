package storetest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securestack/ginsession/stores"
)

// SessionRecord returns a typical session, as the Manager stores it: a
// user, its public handle, the timestamps the Manager keeps and a few
// small values. Benchmarks of stores and codecs use it.
func SessionRecord() *stores.Record {
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

// Benchmark runs the store operations' benchmarks as sub-benchmarks of b,
// each on a fresh store from newStore, holding SessionRecord items:
//
//   - Get, GetParallel (one item per goroutine) and GetMissing;
//   - Add of new keys;
//   - Update, which reads and writes, UpdateParallel (one item per
//     goroutine) and UpdateContended (one item, 4 goroutines per
//     processor);
//   - UpdateFrom, for stores that implement stores.UpdaterFrom: an update
//     within a request whose session the middleware read (the read that
//     gives each update its fresh item is not timed);
//   - Touch and TouchParallel.
//
// A store's benchmark calls it as
//
//	func BenchmarkStore(b *testing.B) {
//		storetest.Benchmark(b, func(b *testing.B) stores.Store { return mystore.New(...) })
//	}
func Benchmark(b *testing.B, newStore func(b *testing.B) stores.Store) {
	ctx := context.Background()
	// setup returns a fresh store holding n items, and their keys.
	setup := func(b *testing.B, n int) (stores.Store, []stores.Key) {
		b.Helper()
		s := newStore(b)
		keys := make([]stores.Key, n)
		for i := range keys {
			keys[i] = newKey()
			if err := s.Add(ctx, keys[i], SessionRecord(), time.Now().Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
		return s, keys
	}
	// parallel runs op on one of keys per goroutine.
	parallel := func(b *testing.B, keys []stores.Key, op func(stores.Key) error) {
		var next atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			key := keys[int(next.Add(1))%len(keys)]
			for pb.Next() {
				if err := op(key); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	exp := time.Now().Add(time.Hour)

	b.Run("Get", func(b *testing.B) {
		s, keys := setup(b, 1)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Get(ctx, keys[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetParallel", func(b *testing.B) {
		s, keys := setup(b, 64)
		parallel(b, keys, func(k stores.Key) error { _, err := s.Get(ctx, k); return err })
	})
	b.Run("GetMissing", func(b *testing.B) {
		s, _ := setup(b, 0)
		key := newKey()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Get(ctx, key); !errors.Is(err, stores.ErrNotFound) {
				b.Fatal(err)
			}
		}
	})
	b.Run("Add", func(b *testing.B) {
		s, _ := setup(b, 0)
		rec := SessionRecord()
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			key := newKey()
			b.StartTimer()
			if err := s.Add(ctx, key, rec, exp); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Update", func(b *testing.B) {
		s, keys := setup(b, 1)
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Update(ctx, keys[0], bumpVisits); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("UpdateParallel", func(b *testing.B) {
		s, keys := setup(b, 64)
		parallel(b, keys, func(k stores.Key) error { return s.Update(ctx, k, bumpVisits) })
	})
	b.Run("UpdateContended", func(b *testing.B) {
		s, keys := setup(b, 1)
		b.SetParallelism(4)
		parallel(b, keys, func(k stores.Key) error { return s.Update(ctx, k, bumpVisits) })
	})
	b.Run("UpdateFrom", func(b *testing.B) {
		s, keys := setup(b, 1)
		u, ok := s.(stores.UpdaterFrom)
		if !ok {
			b.Skip("the store does not implement stores.UpdaterFrom")
		}
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			cur, err := s.Get(ctx, keys[0])
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := u.UpdateFrom(ctx, keys[0], cur, bumpVisits); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Touch", func(b *testing.B) {
		s, keys := setup(b, 1)
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Touch(ctx, keys[0], exp); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("TouchParallel", func(b *testing.B) {
		s, keys := setup(b, 64)
		parallel(b, keys, func(k stores.Key) error { return s.Touch(ctx, k, exp) })
	})
}

// bumpVisits is the UpdateFunc of the benchmarks: it bumps a counter of a
// SessionRecord.
func bumpVisits(cur stores.Item) (*stores.Record, time.Time, error) {
	data, err := stores.MergeData(cur.Record.Data, map[string]any{"visits": cur.Record.Data["visits"].(int) + 1})
	if err != nil {
		return nil, time.Time{}, err
	}
	next := *cur.Record
	next.Data = data
	return &next, cur.ExpiresAt, nil
}
