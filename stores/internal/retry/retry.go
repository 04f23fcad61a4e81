// Package retry paces the compare-and-swap retries of the stores whose
// updates are optimistic (memcached's cas, Redis's compare-and-swap
// script), when writers in other processes keep changing an item.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Pauses: none before the first Immediate attempts, then a random pause
// up to a bound that doubles from MinPause to MaxPause.
const (
	Immediate = 3
	MinPause  = 50 * time.Microsecond
	MaxPause  = 5 * time.Millisecond
)

// Pause waits before attempt number attempt (0 for the first), or returns
// ctx's error if ctx ends first. The first Immediate attempts do not wait.
func Pause(ctx context.Context, attempt int) error {
	if attempt < Immediate {
		return nil
	}
	bound := MaxPause
	if shift := attempt - Immediate; shift < 7 {
		bound = min(MaxPause, MinPause<<shift)
	}
	t := time.NewTimer(bound/2 + rand.N(bound/2))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
