package memcached

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/stores"
)

func cacheKey(i int) stores.Key {
	return stores.Key(sha256.Sum256(fmt.Appendf(nil, "k%d", i)))
}

func TestUnixNano(t *testing.T) {
	assert.Equal(t, maxExpiry.UnixNano(), unixNano(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)))
	assert.Equal(t, int64(0), unixNano(time.Time{}))
	now := time.Now()
	assert.Equal(t, now.UnixNano(), unixNano(now))
}

func TestTouchCache(t *testing.T) {
	t.Run("Rule", func(t *testing.T) {
		c := newTouchCache(16)
		k := cacheKey(1)
		assert.EqualValues(t, 100, c.expiry(k, 100, 10), "nothing touched: the value's expiry")
		c.set(k, 500, 20)
		assert.EqualValues(t, 500, c.expiry(k, 100, 10), "touched after the write")
		assert.EqualValues(t, 500, c.expiry(k, 100, 20), "touched at the write's instant")
		assert.EqualValues(t, 300, c.expiry(k, 300, 30), "written after the touch")
		c.set(k, 50, 40)
		assert.EqualValues(t, 50, c.expiry(k, 300, 30), "a shortening touch")
		c.forget(k)
		assert.EqualValues(t, 300, c.expiry(k, 300, 30), "forgotten")
		assert.Zero(t, c.len())
	})
	t.Run("Nil", func(t *testing.T) {
		var c *touchCache
		assert.Nil(t, newTouchCache(0))
		c.set(cacheKey(1), 1, 1)
		c.forget(cacheKey(1))
		assert.EqualValues(t, 7, c.expiry(cacheKey(1), 7, 0))
		assert.Zero(t, c.len())
	})
	t.Run("Bounded", func(t *testing.T) {
		const capacity = 64
		c := newTouchCache(capacity)
		for i := range 10 * capacity {
			c.set(cacheKey(i), int64(i+1000), int64(i))
			require.LessOrEqual(t, c.len(), capacity)
		}
		assert.Equal(t, capacity, c.len(), "keys spread over the shards evenly enough to fill them: %d", c.len())
		n := 0
		for i := range 10 * capacity {
			if c.expiry(cacheKey(i), 0, 0) != 0 {
				n++
			}
		}
		assert.Equal(t, c.len(), n)
	})
	t.Run("EvictsLeastRecentlyTouched", func(t *testing.T) {
		c := newTouchCache(touchShards * 2) // two per shard
		// Three keys of one shard.
		var ks []stores.Key
		for i := 0; len(ks) < 3; i++ {
			if k := cacheKey(i); k[0]%touchShards == 0 {
				ks = append(ks, k)
			}
		}
		c.set(ks[0], 1, 1)
		c.set(ks[1], 2, 2)
		c.set(ks[0], 3, 3) // touched again: now the most recent
		c.set(ks[2], 4, 4) // evicts ks[1]
		assert.EqualValues(t, 3, c.expiry(ks[0], 0, 0))
		assert.EqualValues(t, 0, c.expiry(ks[1], 0, 0))
		assert.EqualValues(t, 4, c.expiry(ks[2], 0, 0))
		assert.Equal(t, 2, c.len())
	})
	t.Run("Concurrent", func(t *testing.T) {
		c := newTouchCache(256)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 2000 {
					k := cacheKey(g*100 + i%300)
					switch i % 3 {
					case 0:
						c.set(k, int64(i), int64(i))
					case 1:
						c.expiry(k, 0, 0)
					default:
						c.forget(k)
					}
				}
			})
		}
		wg.Wait()
		assert.LessOrEqual(t, c.len(), 256)
		total := 0
		for i := range c.shards {
			total += len(c.shards[i].m)
		}
		assert.Equal(t, total, c.len(), "size counter matches the maps")
	})
}
