package storetest_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/storetest"
)

// logHistory is the history of logBackend: the admission times of each
// key still in the window, in Unix nanoseconds.
type logHistory struct {
	mu    sync.Mutex
	times map[string][]int64
}

// logBackend is a reference stores.LimiterBackend in memory: the ideal
// sliding log, on a window longer than asked by slack/4 of it, so that a
// backend with slack 1 refuses up to a quarter of a window early.
type logBackend struct {
	h     *logHistory
	slack int64
}

func (b *logBackend) Admit(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (stores.Decision, error) {
	if limit <= 0 || window <= 0 {
		return stores.Decision{}, fmt.Errorf("logBackend: invalid policy limit=%d window=%s", limit, window)
	}
	if err := ctx.Err(); err != nil {
		return stores.Decision{}, err
	}
	w := int64(window) + int64(window)*b.slack/4
	t := now.UnixNano()
	b.h.mu.Lock()
	defer b.h.mu.Unlock()
	times := b.h.times[key]
	c := t
	if n := len(times); n > 0 {
		c = max(c, times[n-1])
	}
	first, _ := slices.BinarySearch(times, c-w+1)
	in := times[first:]
	if len(in) >= limit {
		wait := time.Duration(in[len(in)-limit] + w - t)
		return stores.Decision{RetryAfter: wait, ResetAfter: wait}, nil
	}
	in = append(in, c)
	b.h.times[key] = in
	return stores.Decision{Allowed: true, Remaining: limit - len(in), ResetAfter: time.Duration(in[0] + w - t)}, nil
}

func newLogHarness(slack int64, shared bool) storetest.MakeLimiterBackend {
	return func(t *testing.T) storetest.LimiterHarness {
		h := &logHistory{times: map[string][]int64{}}
		a := &logBackend{h: h, slack: slack}
		b := a
		if !shared {
			b = &logBackend{h: h, slack: slack}
		}
		return storetest.LimiterHarness{Instances: [2]stores.LimiterBackend{a, b}, Exact: slack == 0}
	}
}

// TestRunLimiterBackendExact runs the suite against the ideal sliding log.
func TestRunLimiterBackendExact(t *testing.T) {
	storetest.RunLimiterBackend(t, newLogHarness(0, false))
}

// TestRunLimiterBackendEarly runs the suite against a backend that refuses
// early, which only the bounds of the contract constrain.
func TestRunLimiterBackendEarly(t *testing.T) {
	storetest.RunLimiterBackend(t, newLogHarness(1, false))
}

// TestRunLimiterBackendOneInstance runs the suite with one backend as
// both instances.
func TestRunLimiterBackendOneInstance(t *testing.T) {
	storetest.RunLimiterBackend(t, newLogHarness(0, true))
}
