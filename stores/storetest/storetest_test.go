package storetest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/memory"
	"github.com/securestack/ginsession/stores/storetest"
)

// fakeClock is a manually advanced clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestRunMemory runs the suite against the memory store with a fake clock.
func TestRunMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
		return storetest.Harness{
			Store:       memory.New(memory.WithClock(clock.Now), memory.WithSweepInterval(0)),
			Now:         clock.Now,
			Advance:     clock.Advance,
			ExactExpiry: true,
		}
	})
}

// TestRunMemoryRealClock runs the suite against the memory store on the
// real clock, the way it runs against memcached.
func TestRunMemoryRealClock(t *testing.T) {
	if testing.Short() {
		t.Skip("waits in real time")
	}
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		return storetest.Harness{Store: memory.New(), ExactExpiry: true}
	})
}

// The factory forms Run accepts all compile and run; a named factory type
// works too.
func TestRunFactoryForms(t *testing.T) {
	t.Run("func(*testing.T) stores.Store", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) stores.Store { return memory.New() })
	})
	t.Run("func() stores.Store", func(t *testing.T) {
		storetest.Run(t, func() stores.Store { return memory.New() })
	})
	type factory func() stores.Store
	t.Run("named", func(t *testing.T) {
		storetest.Run(t, factory(func() stores.Store { return memory.New() }))
	})
}
