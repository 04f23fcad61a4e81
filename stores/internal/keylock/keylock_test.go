package keylock

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/stores"
)

func TestKeyLocks(t *testing.T) {
	var l Table
	ctx := context.Background()
	a, b := testKey(1), testKey(2)

	unlockA, err := l.Lock(ctx, a)
	require.NoError(t, err)
	unlockB, err := l.Lock(ctx, b)
	require.NoError(t, err, "other keys do not wait")
	assert.Equal(t, 2, l.Len())

	// A second locker of a waits, and gives up with its context.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = l.Lock(short, a)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	got := make(chan struct{})
	go func() {
		unlock, err := l.Lock(ctx, a)
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
	assert.Eventually(t, func() bool { return l.Len() == 0 }, time.Second, time.Millisecond, "the table empties")
}

func TestKeyLocksExclusive(t *testing.T) {
	var l Table
	k := testKey(1)
	var (
		wg     sync.WaitGroup
		inside int
		max    int
		mu     sync.Mutex
	)
	for range 20 {
		wg.Go(func() {
			for range 50 {
				unlock, err := l.Lock(context.Background(), k)
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
	assert.Zero(t, l.Len())
}

func testKey(i int) stores.Key {
	return sha256.Sum256([]byte(fmt.Sprint("keylock-test-", i)))
}
