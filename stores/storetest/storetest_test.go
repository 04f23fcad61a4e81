package storetest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/securestack/ginsession/stores/memory"
	"github.com/securestack/ginsession/stores/storetest"
)

// TestRunMemory runs the suite against the memory store with a fake clock.
func TestRunMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		clock := storetest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
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

func TestClock(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c := storetest.NewClock(t0)
	assert.Equal(t, t0, c.Now())
	c.Advance(time.Minute)
	assert.Equal(t, t0.Add(time.Minute), c.Now())
	c.Advance(-2 * time.Minute)
	assert.Equal(t, t0.Add(-time.Minute), c.Now())
	c.Set(t0)
	assert.Equal(t, t0, c.Now())
}
