// Package keylock serializes, within a process, the read-modify-write
// cycles of one store key, for the stores whose updates are optimistic
// (memcached's cas, Redis's compare-and-swap script).
package keylock

import (
	"context"
	"sync"

	"github.com/securestack/ginsession/stores"
)

// shards is the number of independently locked parts of a Table.
const shards = 16

// Table serializes the Updates of one key within the process, so that
// concurrent requests of one session, served by one instance, take turns
// instead of failing each other's compare-and-swap: only writers in other
// processes can make one fail. Only Updates of the same key wait for each other, and a
// waiter gives up when its context ends. The zero value is ready to use,
// and it is safe for concurrent use.
type Table struct {
	shards [shards]shard
}

type shard struct {
	mu sync.Mutex
	m  map[stores.Key]*lock // guarded by mu
}

// lock is held by whoever has sent into ch. It is dropped from the table
// when no one holds or waits for it.
type lock struct {
	ch   chan struct{}
	refs int // holders and waiters; guarded by the shard's mu
}

// Lock waits until the caller holds k's lock, and returns the function
// that releases it, or ctx's error.
func (l *Table) Lock(ctx context.Context, k stores.Key) (unlock func(), err error) {
	sh := &l.shards[k[0]%shards]
	sh.mu.Lock()
	kl := sh.m[k]
	if kl == nil {
		if sh.m == nil {
			sh.m = make(map[stores.Key]*lock)
		}
		kl = &lock{ch: make(chan struct{}, 1)}
		sh.m[k] = kl
	}
	kl.refs++
	sh.mu.Unlock()

	release := func() {
		sh.mu.Lock()
		if kl.refs--; kl.refs == 0 {
			delete(sh.m, k)
		}
		sh.mu.Unlock()
	}
	select {
	case kl.ch <- struct{}{}:
		return func() {
			<-kl.ch
			release()
		}, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// Len returns the number of keys locked or waited for.
func (l *Table) Len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
