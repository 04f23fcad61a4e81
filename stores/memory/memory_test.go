package memory_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/memory"
	"github.com/securestack/ginsession/stores/storetest"
)

var ctx = context.Background()

func newClock() *storetest.Clock {
	return storetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		clock := newClock()
		return storetest.Harness{
			Store:       memory.New(memory.WithClock(clock.Now)),
			Now:         clock.Now,
			Advance:     clock.Advance,
			ExactExpiry: true,
		}
	})
}

func key(i int) stores.Key { return sha256.Sum256([]byte(fmt.Sprint(i))) }

func TestGetSharesTheRecord(t *testing.T) {
	s := memory.New()
	t.Cleanup(func() { _ = s.Close() })
	rec := &stores.Record{UserID: "alice", Data: map[string]any{"a": 1}}
	require.NoError(t, s.Add(ctx, key(1), rec, time.Now().Add(time.Hour)))
	item, err := s.Get(ctx, key(1))
	require.NoError(t, err)
	assert.Same(t, rec, item.Record, "reads decode and copy nothing")
}

func TestSweepRemovesExpired(t *testing.T) {
	clock := newClock()
	s := memory.New(memory.WithClock(clock.Now), memory.WithSweepInterval(0))
	t.Cleanup(func() { _ = s.Close() })
	for i := 0; i < 1000; i++ {
		life := time.Minute
		if i%2 == 0 {
			life = time.Hour
		}
		require.NoError(t, s.Add(ctx, key(i), &stores.Record{}, clock.Now().Add(life)))
	}
	assert.Zero(t, s.Sweep())
	assert.Equal(t, 1000, s.Len())

	clock.Advance(time.Minute)
	assert.Equal(t, 500, s.Sweep())
	assert.Equal(t, 500, s.Len())
	_, err := s.Get(ctx, key(0))
	assert.NoError(t, err, "live items survive the sweep")
}

func TestSweeperRunsInBackground(t *testing.T) {
	clock := newClock()
	s := memory.New(memory.WithClock(clock.Now), memory.WithSweepInterval(time.Millisecond))
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Add(ctx, key(1), &stores.Record{}, clock.Now().Add(time.Second)))
	clock.Advance(time.Second)
	// The sweeper's ticker is real time; wait for its effect, not a duration.
	assert.Eventually(t, func() bool { return s.Len() == 0 }, 5*time.Second, time.Millisecond)
}

func TestCloseStopsSweeper(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 50; i++ {
		s := memory.New(memory.WithSweepInterval(time.Millisecond))
		require.NoError(t, s.Close())
		require.NoError(t, s.Close())
	}
	// Close waits until the sweeper has finished; the runtime may count an
	// exiting goroutine a moment longer, so poll for the count to settle.
	assert.True(t, goroutinesSettle(before), "a sweeper goroutine outlived Close")
}

func TestSweepDuringConcurrentUse(t *testing.T) {
	clock := newClock()
	s := memory.New(memory.WithClock(clock.Now), memory.WithSweepInterval(0))
	t.Cleanup(func() { _ = s.Close() })
	for i := 0; i < 2000; i++ {
		require.NoError(t, s.Add(ctx, key(i), &stores.Record{}, clock.Now().Add(time.Duration(i%3)*time.Minute+time.Second)))
	}
	clock.Advance(time.Minute)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.Sweep()
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 2000; i++ {
			_ = s.Touch(ctx, key(i), clock.Now().Add(time.Hour))
		}
	}()
	wg.Wait()
	// Items touched before the sweep reached them survive; none live is lost.
	for i := 0; i < 2000; i++ {
		if i%3 != 0 {
			_, err := s.Get(ctx, key(i))
			assert.NoError(t, err, "item %d", i)
		}
	}
}

// goroutinesSettle reports whether the number of goroutines drops to at
// most n within a few seconds. It polls in the calling goroutine, since
// helpers such as assert.Eventually run goroutines of their own.
func goroutinesSettle(n int) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if runtime.NumGoroutine() <= n {
			return true
		}
	}
	return false
}

// TestSweepReturnsMemory checks that a sweep that empties the store gives
// its map tables back: Go maps never shrink, so without the sweep's
// compaction the tables of the expired items would stay allocated.
func TestSweepReturnsMemory(t *testing.T) {
	clock := newClock()
	s := memory.New(memory.WithClock(clock.Now), memory.WithSweepInterval(0))
	t.Cleanup(func() { _ = s.Close() })
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	base := heap()
	const n = 200_000
	rec := &stores.Record{Kind: stores.KindTombstone} // shared: only the tables grow
	for i := range n {
		require.NoError(t, s.Add(ctx, key(i), rec, clock.Now().Add(time.Minute)))
	}
	full := heap()
	require.Greater(t, full-base, uint64(n*32), "the tables hold the keys")
	clock.Advance(time.Minute)
	require.Equal(t, n, s.Sweep())
	after := heap()
	assert.Less(t, after, base+(full-base)/10, "heap %d MiB before, %d MiB full, %d MiB after the sweep", base>>20, full>>20, after>>20)
	// The store works on, and grows again.
	require.NoError(t, s.Add(ctx, key(1), rec, clock.Now().Add(time.Minute)))
	_, err := s.Get(ctx, key(1))
	require.NoError(t, err)
}

func BenchmarkStore(b *testing.B) {
	storetest.Benchmark(b, func(b *testing.B) stores.Store {
		s := memory.New()
		b.Cleanup(func() { _ = s.Close() })
		return s
	})
}
