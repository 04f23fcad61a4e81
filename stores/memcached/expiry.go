package memcached

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/securestack/ginsession/stores"
)

// unixNano returns t in Unix nanoseconds, capped at maxExpiry (well inside
// the int64 range) and at the zero Unix time below.
func unixNano(t time.Time) int64 {
	if !t.Before(maxExpiry) {
		return maxExpiry.UnixNano()
	}
	if t.Before(time.Unix(0, 0)) {
		return 0
	}
	return t.UnixNano()
}

// touchShards is the number of independently locked parts of a
// touchCache.
const touchShards = 16

// touchCache remembers the expiries this process set with touch, which
// does not rewrite the stored value, so that Get can report a refreshed
// item's new expiry instead of the stale one in its value.
//
// Each shard holds at most its share of the capacity. A ring records the
// order in which keys were touched; when a shard is full, a new entry
// takes the ring slot of the least recently touched one, which is the
// first to have expired. It is safe for concurrent use.
type touchCache struct {
	size   atomic.Int64 // entries held, for a lock-free miss when empty
	shards [touchShards]touchShard
}

type touchShard struct {
	mu    sync.RWMutex
	m     map[stores.Key]touchEntry // guarded by mu
	ring  []stores.Key              // guarded by mu
	next  int                       // next ring slot to use; guarded by mu
	limit int                       // ring capacity; immutable
}

type touchEntry struct {
	expiresAt int64 // the expiry set, Unix nanoseconds
	touchedAt int64 // when the touch was sent, Unix nanoseconds
	slot      int   // index in the shard's ring
}

// newTouchCache returns a cache of about capacity entries, or nil (which
// remembers nothing) for capacity <= 0.
func newTouchCache(capacity int) *touchCache {
	if capacity <= 0 {
		return nil
	}
	c := new(touchCache)
	per := max(1, (capacity+touchShards-1)/touchShards)
	for i := range c.shards {
		c.shards[i].m = make(map[stores.Key]touchEntry)
		c.shards[i].limit = per
	}
	return c
}

func (c *touchCache) shard(k stores.Key) *touchShard {
	return &c.shards[k[0]%touchShards]
}

// set records that key was touched at touchedAt to expire at expiresAt.
func (c *touchCache) set(k stores.Key, expiresAt, touchedAt int64) {
	if c == nil {
		return
	}
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[k]; !ok {
		c.size.Add(1)
	}
	slot := sh.next
	sh.next = (sh.next + 1) % sh.limit
	if slot == len(sh.ring) {
		sh.ring = append(sh.ring, k)
	} else {
		// Evict the slot's owner, unless it moved to a newer slot.
		if old := sh.ring[slot]; old != k {
			if e, ok := sh.m[old]; ok && e.slot == slot {
				delete(sh.m, old)
				c.size.Add(-1)
			}
		}
		sh.ring[slot] = k
	}
	sh.m[k] = touchEntry{expiresAt: expiresAt, touchedAt: touchedAt, slot: slot}
}

// forget drops what is known of key, after this process rewrote or
// deleted it.
func (c *touchCache) forget(k stores.Key) {
	if c == nil || c.size.Load() == 0 {
		return
	}
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[k]; ok {
		delete(sh.m, k)
		c.size.Add(-1)
	}
}

// expiry returns the expiry to report for key whose stored value says it
// was written at writtenAt to expire at expiresAt: the expiry of a touch
// sent since, if this process sent one, else the value's.
func (c *touchCache) expiry(k stores.Key, expiresAt, writtenAt int64) int64 {
	if c == nil || c.size.Load() == 0 {
		return expiresAt
	}
	sh := c.shard(k)
	sh.mu.RLock()
	e, ok := sh.m[k]
	sh.mu.RUnlock()
	if ok && e.touchedAt >= writtenAt {
		return e.expiresAt
	}
	return expiresAt
}

// len returns the number of entries held.
func (c *touchCache) len() int {
	if c == nil {
		return 0
	}
	return int(c.size.Load())
}
