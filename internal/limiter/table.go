package limiter

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/securestack/ginsession/stores"
)

const (
	// ExactMax is the largest limit for which a Table keeps the exact
	// admission times of each key (ginsession.LimiterExactMax). Above it, a
	// Table counts admissions in up to 64 buckets per window.
	ExactMax = 64

	// MaxWindow is the largest window a Table accepts (about 146 years).
	MaxWindow = time.Duration(1) << 62
)

const (
	// shardsMax is the number of shards of a Table with at least
	// shardsMax*shardMinKeys keys.
	shardsMax = 64
	// shardMinKeys is the smallest per-shard key cap that justifies
	// another shard.
	shardMinKeys = 16
	// sweepPerOp is how many entries every operation examines for
	// idleness, so that idle keys are dropped without a goroutine.
	sweepPerOp = 2
	// sweepAtCap bounds the extra entries examined when a new key finds
	// its shard full.
	sweepAtCap = 256
	// compactMin is the smallest capacity at which a shard shrinks its
	// tables when they are mostly empty.
	compactMin = 1024
	// timeMax bounds the offsets from the Table's base time (about 73
	// years either way), so that sums with a window never overflow.
	timeMax = int64(1) << 61
)

// Table is the in-process admission history of a ginsession.Limiter. It
// is split into up to 64 shards, each with its own mutex, chosen by a
// seeded hash of the key, so callers with different keys rarely contend.
//
// Every operation on a shard examines two of its entries, in turn, and
// drops those idle for a full window by the latest time the shard has
// seen; a shard also shrinks its tables once they are mostly empty. So the
// memory of idle keys is reclaimed as traffic goes on, without a goroutine
// and with nothing to close, and the number of keys is capped in any case.
//
// A Table is safe for concurrent use. The zero value is not usable; use
// New.
type Table struct {
	limit   int
	window  int64 // nanoseconds
	windowD time.Duration

	// Bucketed mode: width is the bucket width, nb = K+1 the buckets
	// stored per key, and shift aligns bucket boundaries with multiples of
	// width in Unix time. Exact mode: all three are zero.
	width int64
	nb    int
	shift int64

	base   time.Time
	seed   maphash.Seed
	mask   uint64
	shards []shard

	// capOpen admits a new key untracked, instead of refusing it, when its
	// shard is at its cap and no tracked key is idle.
	capOpen bool

	// record, when set (by tests), is called with every admission's
	// recorded offset from base, under the shard's lock.
	record func(key string, at int64)
}

// shard is one part of the Table. Entries are dense: idx maps a key to its
// position in keys and ents, and to its slots in times (exact mode, limit
// per entry) or counts (bucketed mode, nb per entry). All fields are
// guarded by mu.
type shard struct {
	mu     sync.Mutex
	idx    map[string]int32
	keys   []string
	ents   []entry
	times  []int64
	counts []uint32

	max    int   // key cap of the shard
	cursor int   // next entry the sweep examines
	hw     int64 // latest offset seen by the shard
	floor  int64 // earliest offset a new key may be decided at

	_ [64]byte // keep shards on separate cache lines
}

// entry is one key's state.
type entry struct {
	// seen is the latest instant the key was decided at (its clock).
	seen int64
	// head is, in exact mode, the ring position of the oldest admission in
	// the window; in bucketed mode, the index of the newest bucket.
	head int64
	// n is the number of admissions in the window (exact) or in the live
	// buckets (bucketed).
	n int32
}

// New returns a Table that admits at most limit events per key in any
// interval of length window, and tracks at most about maxKeys keys. It
// expects 0 < limit < 2^31, 0 < window <= MaxWindow and maxKeys > 0, as
// ginsession.NewLimiter checks.
//
// The key cap applies per shard: a Table has up to 64 shards, fewer when
// maxKeys is small, each capped at its share of maxKeys rounded up, so it
// may hold up to maxKeys+63 keys. When a new key finds its shard full of
// keys that are not idle, the Table admits it untracked if capOpen is set
// (ginsession.FailOpen) and refuses it otherwise (ginsession.FailClosed).
func New(limit int, window time.Duration, maxKeys int, capOpen bool) *Table {
	tb := &Table{
		limit:   limit,
		window:  int64(window),
		windowD: window,
		base:    time.Now(),
		seed:    maphash.MakeSeed(),
		capOpen: capOpen,
	}
	if limit > ExactMax {
		tb.width, tb.nb, tb.shift = bucketLayout(tb.window, tb.base)
	}
	n := shardsMax
	for n > 1 && n*shardMinKeys > maxKeys {
		n /= 2
	}
	tb.mask = uint64(n - 1)
	tb.shards = make([]shard, n)
	perShard := (maxKeys + n - 1) / n
	for i := range tb.shards {
		s := &tb.shards[i]
		s.idx = make(map[string]int32)
		s.max = perShard
		s.hw = -timeMax
		s.floor = -timeMax
	}
	return tb
}

// Len returns the number of keys the Table tracks, including idle keys not
// yet dropped.
func (tb *Table) Len() int {
	n := 0
	for i := range tb.shards {
		s := &tb.shards[i]
		s.mu.Lock()
		n += len(s.ents)
		s.mu.Unlock()
	}
	return n
}

// Allow reports whether an event for key at now is admitted, and records
// it if so. It does not allocate, except to start tracking a new key.
func (tb *Table) Allow(key string, now time.Time) bool {
	return tb.decide(key, now, false).Allowed
}

// Reserve is Allow returning the whole Decision: how many events remain,
// and when to retry after a refusal.
func (tb *Table) Reserve(key string, now time.Time) stores.Decision {
	return tb.decide(key, now, true)
}

// Shards returns the number of shards, a power of two.
func (tb *Table) Shards() int { return len(tb.shards) }

// ShardOf returns the index of the shard that holds key, in [0, Shards()).
// Benchmarks use it to give parallel goroutines a shard each: a shard
// judges idleness by the latest time any of its keys saw.
func (tb *Table) ShardOf(key string) int {
	return int(maphash.String(tb.seed, key) & tb.mask)
}

// offset returns now as nanoseconds from tb.base, within ±timeMax. It uses
// the monotonic clock readings when both times have one.
func (tb *Table) offset(now time.Time) int64 {
	t := int64(now.Sub(tb.base))
	return min(max(t, -timeMax), timeMax)
}

// decide runs the policy for key at now. Without detail, only Allowed is
// set.
func (tb *Table) decide(key string, now time.Time, detail bool) stores.Decision {
	t := tb.offset(now)
	s := &tb.shards[maphash.String(tb.seed, key)&tb.mask]
	s.mu.Lock()
	d := tb.decideLocked(s, key, t, detail)
	s.mu.Unlock()
	return d
}

// decideLocked decides at the key's clock, the latest of t and the
// instants the key was decided at before. It requires s.mu held.
func (tb *Table) decideLocked(s *shard, key string, t int64, detail bool) stores.Decision {
	s.hw = max(s.hw, t)
	tb.sweepLocked(s, sweepPerOp)
	i, ok := s.idx[key]
	if !ok {
		if len(s.ents) >= s.max && !tb.reclaimLocked(s) {
			if tb.capOpen {
				return stores.Decision{Allowed: true, Remaining: tb.limit - 1, ResetAfter: tb.windowD}
			}
			return stores.Decision{RetryAfter: tb.windowD, ResetAfter: tb.windowD}
		}
		i = tb.insertLocked(s, key)
	}
	e := &s.ents[i]
	c := max(t, e.seen)
	e.seen = c
	if tb.nb == 0 {
		return tb.decideExact(s, e, int(i), key, t, c, detail)
	}
	return tb.decideBucketed(s, e, int(i), key, t, c, detail)
}

// insertLocked starts tracking key and returns its index. The new entry's
// clock starts at the shard's floor. The key is copied, so that a key cut
// from a larger string (such as a header) does not keep it alive. It
// requires s.mu held.
func (tb *Table) insertLocked(s *shard, key string) int32 {
	key = strings.Clone(key)
	i := int32(len(s.ents))
	s.ents = append(s.ents, entry{seen: s.floor})
	s.keys = append(s.keys, key)
	if tb.nb == 0 {
		s.times = append(s.times, make([]int64, tb.limit)...)
	} else {
		s.counts = append(s.counts, make([]uint32, tb.nb)...)
	}
	s.idx[key] = i
	return i
}

// sweepLocked examines up to n entries from the cursor and drops those
// idle for a full window by the shard's latest time. A dropped key's
// admissions all lie a window or more before hw; the shard's floor keeps
// its successor from being decided earlier than one window after its last
// event. It reports whether it dropped any. It requires s.mu held.
func (tb *Table) sweepLocked(s *shard, n int) bool {
	dropped := false
	for ; n > 0 && len(s.ents) > 0; n-- {
		if s.cursor >= len(s.ents) {
			s.cursor = 0
			tb.compactLocked(s)
		}
		e := &s.ents[s.cursor]
		if e.seen <= s.hw-tb.window {
			s.floor = max(s.floor, e.seen+tb.window)
			tb.removeLocked(s, s.cursor)
			dropped = true
			continue
		}
		s.cursor++
	}
	return dropped
}

// reclaimLocked looks for an idle entry to drop when the shard is full.
// It requires s.mu held.
func (tb *Table) reclaimLocked(s *shard) bool {
	for range sweepAtCap / sweepPerOp {
		if tb.sweepLocked(s, sweepPerOp) {
			return true
		}
	}
	return false
}

// removeLocked drops entry i by moving the last entry into its place.
// It requires s.mu held.
func (tb *Table) removeLocked(s *shard, i int) {
	last := len(s.ents) - 1
	delete(s.idx, s.keys[i])
	if i != last {
		s.ents[i] = s.ents[last]
		s.keys[i] = s.keys[last]
		s.idx[s.keys[i]] = int32(i)
		if tb.nb == 0 {
			copy(s.times[i*tb.limit:(i+1)*tb.limit], s.times[last*tb.limit:])
		} else {
			copy(s.counts[i*tb.nb:(i+1)*tb.nb], s.counts[last*tb.nb:])
		}
	}
	s.keys[last] = ""
	s.ents = s.ents[:last]
	s.keys = s.keys[:last]
	if tb.nb == 0 {
		s.times = s.times[:last*tb.limit]
	} else {
		s.counts = s.counts[:last*tb.nb]
	}
}

// compactLocked shrinks the shard's tables, map included (Go maps never
// shrink), when they are mostly empty, as after a flood of distinct keys.
// It runs once per sweep pass. It requires s.mu held.
func (tb *Table) compactLocked(s *shard) {
	if cap(s.ents) < compactMin || len(s.ents) > cap(s.ents)/4 {
		return
	}
	n := len(s.ents)
	s.ents = append(make([]entry, 0, 2*n), s.ents...)
	s.keys = append(make([]string, 0, 2*n), s.keys...)
	if tb.nb == 0 {
		s.times = append(make([]int64, 0, 2*n*tb.limit), s.times...)
	} else {
		s.counts = append(make([]uint32, 0, 2*n*tb.nb), s.counts...)
	}
	s.idx = make(map[string]int32, 2*n)
	for i, k := range s.keys {
		s.idx[k] = int32(i)
	}
}
