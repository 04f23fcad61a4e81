package limiter

import (
	"time"

	"github.com/securestack/ginsession/stores"
)

// decideExact decides at the key's clock c (t is the caller's now) from
// the ring of the key's latest admission times (up to limit, the oldest at
// e.head). An event is admitted exactly when fewer than limit admissions
// lie in (c-window, c], as the ideal sliding log would. It requires s.mu
// held.
func (tb *Table) decideExact(s *shard, e *entry, i int, key string, t, c int64, detail bool) stores.Decision {
	lim := tb.limit
	ring := s.times[i*lim : i*lim+lim]
	cut := c - tb.window
	for e.n > 0 && ring[e.head] <= cut {
		e.head++
		if e.head == int64(lim) {
			e.head = 0
		}
		e.n--
	}
	if int(e.n) >= lim {
		if !detail {
			return stores.Decision{}
		}
		wait := time.Duration(ring[e.head] + tb.window - t)
		return stores.Decision{RetryAfter: wait, ResetAfter: wait}
	}
	pos := int(e.head) + int(e.n)
	if pos >= lim {
		pos -= lim
	}
	ring[pos] = c
	e.n++
	if tb.record != nil {
		tb.record(key, c)
	}
	d := stores.Decision{Allowed: true}
	if detail {
		d.Remaining = lim - int(e.n)
		d.ResetAfter = time.Duration(ring[e.head] + tb.window - t)
	}
	return d
}
