package limiter

import (
	"time"

	"github.com/securestack/ginsession/stores"
)

// bucketsMax is the most buckets per window of a bucketed Table.
const bucketsMax = 64

// bucketLayout returns the bucket width w = window/K, where K is the
// largest divisor of window (in nanoseconds) not above bucketsMax (K = 64
// for any window that is a whole number of milliseconds); nb = K+1, the
// buckets stored per key, enough for the K+1 buckets that meet a window;
// and the shift that aligns bucket boundaries with multiples of w in Unix
// time, given the Table's base.
func bucketLayout(window int64, base time.Time) (width int64, nb int, shift int64) {
	k := int64(bucketsMax)
	for window%k != 0 {
		k--
	}
	width = window / k
	return width, int(k) + 1, floorMod(base.UnixNano(), width)
}

// decideBucketed decides at the key's clock c (t is the caller's now) from
// the bucket counts. An event is admitted when fewer than limit admissions
// lie in the nb buckets that meet (c-window, c]: the guarantee is kept,
// and a refusal is early by at most one bucket width. It requires s.mu
// held.
func (tb *Table) decideBucketed(s *shard, e *entry, i int, key string, t, c int64, detail bool) stores.Decision {
	nb := tb.nb
	cnt := s.counts[i*nb : i*nb+nb]
	b := floorDiv(c+tb.shift, tb.width)
	switch {
	case e.n == 0:
		e.head = b
	case b > e.head:
		if b-e.head >= int64(nb) {
			clear(cnt)
			e.n = 0
		} else {
			slot := mod(e.head, nb)
			for range b - e.head {
				if slot++; slot == nb {
					slot = 0
				}
				e.n -= int32(cnt[slot])
				cnt[slot] = 0
			}
		}
		e.head = b
	}
	if int(e.n) >= tb.limit {
		if !detail {
			return stores.Decision{}
		}
		wait := time.Duration(tb.bucketStart(tb.oldestBucket(cnt, e.head)) - t)
		return stores.Decision{RetryAfter: wait, ResetAfter: wait}
	}
	cnt[mod(b, nb)]++
	e.n++
	if tb.record != nil {
		tb.record(key, c)
	}
	d := stores.Decision{Allowed: true}
	if detail {
		d.Remaining = tb.limit - int(e.n)
		d.ResetAfter = time.Duration(tb.bucketStart(tb.oldestBucket(cnt, e.head)) - t)
	}
	return d
}

// oldestBucket returns the index of the bucket at whose start the oldest
// non-empty live bucket leaves the window: that bucket's index plus nb.
// The live buckets are head-nb+1 … head and at least one is non-empty.
func (tb *Table) oldestBucket(cnt []uint32, head int64) int64 {
	slot := mod(head+1, tb.nb) // slot of bucket head-nb+1
	for k := range int64(tb.nb) - 1 {
		if cnt[slot] != 0 {
			return head + 1 + k
		}
		if slot++; slot == tb.nb {
			slot = 0
		}
	}
	return head + int64(tb.nb)
}

// bucketStart returns the offset at which bucket j starts.
func (tb *Table) bucketStart(j int64) int64 { return j*tb.width - tb.shift }
