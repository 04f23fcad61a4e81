package redisstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/stores"
)

// lockKey returns the i-th of distinct keys, spread over the shards.
func lockKey(i int) stores.Key {
	var k stores.Key
	k[0], k[1] = byte(i), byte(i>>8)
	return k
}

func TestKeyLocks(t *testing.T) {
	var l keyLocks
	ctx := context.Background()
	a, b := lockKey(1), lockKey(2)

	unlockA, err := l.lock(ctx, a)
	require.NoError(t, err)
	unlockB, err := l.lock(ctx, b)
	require.NoError(t, err, "other keys do not wait")
	assert.Equal(t, 2, l.len())

	// A second locker of a waits, and gives up with its context.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = l.lock(short, a)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	got := make(chan struct{})
	go func() {
		unlock, err := l.lock(ctx, a)
		assert.NoError(t, err)
		close(got)
		unlock()
	}()
	select {
	case <-got:
		t.Fatal("lock taken twice")
	case <-time.After(20 * time.Millisecond):
	}
	unlockA()
	<-got
	unlockB()
	assert.Eventually(t, func() bool { return l.len() == 0 }, time.Second, time.Millisecond, "the table empties")
}

func TestKeyLocksExclusive(t *testing.T) {
	var l keyLocks
	k := lockKey(1)
	var (
		wg     sync.WaitGroup
		inside int
		max    int
		mu     sync.Mutex
	)
	for range 20 {
		wg.Go(func() {
			for range 50 {
				unlock, err := l.lock(context.Background(), k)
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				inside++
				if inside > max {
					max = inside
				}
				mu.Unlock()
				mu.Lock()
				inside--
				mu.Unlock()
				unlock()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 1, max)
	assert.Zero(t, l.len())
}
