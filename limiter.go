package ginsession

import (
	"context"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/securestack/ginsession/stores"
)

// Decision is the outcome of one admission attempt; see stores.Decision.
type Decision = stores.Decision

// LimiterBackend keeps the admission history of a Limiter; see
// stores.LimiterBackend. The default is the Limiter's own in-process table.
type LimiterBackend = stores.LimiterBackend

const (
	// DefaultLimiterMaxKeys is the number of keys a Limiter tracks when
	// WithMaxKeys is not given.
	DefaultLimiterMaxKeys = 1 << 20

	// LimiterExactMax is the largest limit for which a Limiter keeps the
	// exact admission times of each key. Above it, a Limiter counts
	// admissions in 64 buckets per window (see Limiter).
	LimiterExactMax = 64
)

const (
	// limShardsMax is the number of shards of a Limiter with at least
	// limShardsMax*limShardMinKeys keys.
	limShardsMax = 64
	// limShardMinKeys is the smallest per-shard key cap that justifies
	// another shard.
	limShardMinKeys = 16
	// limBucketsMax is the most buckets per window of a bucketed Limiter.
	limBucketsMax = 64
	// limSweepPerOp is how many entries every operation examines for
	// idleness, so that idle keys are dropped without a goroutine.
	limSweepPerOp = 2
	// limSweepAtCap bounds the extra entries examined when a new key finds
	// its shard full.
	limSweepAtCap = 256
	// limCompactMin is the smallest capacity at which a shard shrinks its
	// tables when they are mostly empty.
	limCompactMin = 1024
	// limTimeMax bounds the offsets from the Limiter's base time (about 73
	// years either way), so that sums with a window never overflow.
	limTimeMax = int64(1) << 61
	// limWindowMax is the largest accepted window (about 146 years).
	limWindowMax = time.Duration(1) << 62
	// limBackendRetry is the RetryAfter of a refusal caused by a backend
	// error under FailClosed.
	limBackendRetry = time.Second
)

// FailMode says what a Limiter decides when it cannot apply its policy: at
// its key cap (WithCapFailMode) or when its backend fails
// (WithBackendFailMode).
type FailMode int

const (
	// FailClosed refuses the event. It is the default: a limiter that
	// gives way exactly when it is flooded protects nothing.
	FailClosed FailMode = iota

	// FailOpen admits the event without recording it. Such admissions are
	// outside the Limiter's guarantee.
	FailOpen
)

// String returns "FailClosed" or "FailOpen".
func (m FailMode) String() string {
	switch m {
	case FailClosed:
		return "FailClosed"
	case FailOpen:
		return "FailOpen"
	}
	return fmt.Sprintf("FailMode(%d)", int(m))
}

// LimiterOption configures a Limiter. Options are applied in order by
// NewLimiter, which panics with a message naming the option when the result
// is invalid.
type LimiterOption func(*limiterConfig)

type limiterConfig struct {
	maxKeys     int
	capMode     FailMode
	backend     LimiterBackend
	backendMode FailMode
}

// WithMaxKeys caps the number of keys the in-process table tracks at once,
// so that a flood of distinct keys cannot exhaust memory. The cap applies
// per shard (the table has up to 64), so the table may hold up to n+63 keys.
// When a new key finds its shard full of keys that are not idle, the
// Limiter decides by its cap mode (WithCapFailMode). n must be positive.
// The default is DefaultLimiterMaxKeys (1,048,576 keys, which take about
// 175 MB at a limit of 5; see Limiter for the memory per key). It has no effect with
// WithLimiterBackend.
func WithMaxKeys(n int) LimiterOption {
	return func(c *limiterConfig) { c.maxKeys = n }
}

// WithCapFailMode sets what a Limiter decides for a new key when the
// in-process table is at its cap (WithMaxKeys) and no tracked key is idle.
//
// FailClosed (the default) refuses the new key; keys already tracked keep
// their exact limits, and new keys get in again as soon as tracked keys go
// idle, at most one window after their last event. A flood of distinct keys
// then costs new clients, not memory or the guarantee. FailOpen admits the
// new key untracked: service for new clients continues, but a flood of
// distinct keys is not limited at all while the table is full.
func WithCapFailMode(m FailMode) LimiterOption {
	return func(c *limiterConfig) { c.capMode = m }
}

// WithLimiterBackend makes the Limiter keep its history in b instead of its
// in-process table, for example memcached.NewLimiterBackend to share one
// limit between several application instances. b receives the Limiter's
// keys unchanged: give each Limiter sharing a store its own backend prefix.
// The default is the in-process table.
func WithLimiterBackend(b LimiterBackend) LimiterOption {
	return func(c *limiterConfig) { c.backend = b }
}

// WithBackendFailMode sets what a Limiter decides when its backend returns
// an error (WithLimiterBackend). ReserveAtContext returns the error, a
// *LimiterError, with that decision; Allow, AllowAt and ReserveAt return
// only the decision.
//
// FailClosed (the default) refuses while the backend is down, with a
// RetryAfter of one second. When sessions live in the same memcached, they
// cannot be created during the outage anyway, and an attacker gains nothing
// from an outage. FailOpen admits while the backend is down, which keeps a
// route available but unlimited.
func WithBackendFailMode(m FailMode) LimiterOption {
	return func(c *limiterConfig) { c.backendMode = m }
}

// LimiterError reports that a Limiter's backend failed. ReserveAtContext
// returns it together with the decision taken under the backend fail mode
// (WithBackendFailMode). errors.Is sees through it to the backend's error,
// which wraps stores.ErrUnavailable when the backend is unreachable and
// stores.ErrConflict when concurrent writers exhausted its retries.
type LimiterError struct {
	// Err is the backend's error.
	Err error

	// Allowed reports the decision taken under the fail mode: true with
	// FailOpen, false with FailClosed.
	Allowed bool
}

func (e *LimiterError) Error() string {
	verdict := "refused"
	if e.Allowed {
		verdict = "admitted"
	}
	return fmt.Sprintf("ginsession: rate limiter backend failed (event %s): %v", verdict, e.Err)
}

// Unwrap returns the backend's error.
func (e *LimiterError) Unwrap() error { return e.Err }

// Limiter is a sliding-window rate limiter: for every key, no interval of
// length window ever holds more than limit admitted events. Unlike fixed
// windows, token buckets and the two-window estimate, it never admits a
// burst of up to twice the limit around a window boundary.
//
// # Model
//
// With a limit of at most LimiterExactMax (64), the Limiter keeps each
// key's last limit admission times in a ring and admits an event at t
// exactly when fewer than limit admissions lie in (t-window, t]: it is
// exact, refusing nothing that the ideal sliding log would admit.
//
// Above that, memory per key would grow with the limit, so the Limiter
// counts admissions in buckets of width w = window/K, where K is the
// largest divisor of the window's nanoseconds not above 64 (K = 64 for any
// window that is a whole number of milliseconds). It admits an event at t
// when fewer than limit admissions lie in the K+1 buckets that meet
// (t-window, t]. The guarantee is kept, and the refusal is early by at most
// one bucket: a refusal at t means that at least limit admissions lie in
// (t-window-w, t]. With a one-minute window, that is 0.94 s.
//
// # Time
//
// Each key has a clock that never goes backwards: the Limiter works at the
// latest instant it has seen for the key, so when now steps back, the
// event is decided, and if admitted recorded, at that latest instant. Time
// stands still for the key until now catches up, which can only refuse
// more: on the recorded admission times, the guarantee holds whatever the
// clock does. A key that was dropped when idle starts again no earlier than
// one window after its last event. Allow, and AllowAt given values from
// time.Now, use the monotonic clock reading, so wall-clock steps do not
// affect them; times without one (time.Date, parsed or rounded times) are
// compared by wall clock.
//
// Idleness is judged by the latest time a shard has seen (see Memory), so
// the callers of one Limiter should share one clock: a key whose callers
// run more than a window behind the others may be dropped, and is then
// decided at the others' time, as any dropped key that comes back.
//
// # Memory
//
// The in-process table is split into up to 64 shards, each with its own
// mutex, chosen by a seeded hash of the key, so callers with different
// keys rarely contend. A key costs its entry (24 bytes), its ring (8 bytes
// per unit of limit) or buckets (4 bytes each, up to 65), its slot in the
// shard's map, and the Limiter's own copy of the key string, with slack
// from the growth of these tables: with keys such as IPv4 addresses, about
// 130 bytes at a limit of 1, 165 at 5, 660 at 64 and 420 above
// LimiterExactMax, whatever the limit (measured by BenchmarkLimiterMemory
// with one million keys). Keep keys short: hash long ones. Every operation on a shard examines two of its entries, in turn,
// and drops those idle for a full window by the latest time the shard has
// seen; a shard also shrinks its tables once they are mostly empty. So the
// memory of idle keys is reclaimed as traffic goes on, without a goroutine
// and with nothing to close, and the number of keys is capped in any case
// (WithMaxKeys, WithCapFailMode).
//
// # Backends
//
// WithLimiterBackend replaces the in-process table with a LimiterBackend,
// such as the memcached one that application instances share. The
// context-taking ReserveAtContext reports backend errors; the other
// methods decide by the backend fail mode (WithBackendFailMode).
//
// A Limiter is safe for concurrent use. The zero value is not usable; use
// NewLimiter.
type Limiter struct {
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
	shards []limShard

	capMode     FailMode
	backend     LimiterBackend
	backendMode FailMode

	// record, when set (by tests), is called with every admission's
	// recorded offset from base, under the shard's lock.
	record func(key string, at int64)
}

// limShard is one part of the in-process table. Entries are dense: idx
// maps a key to its position in keys and ents, and to its slots in times
// (exact mode, limit per entry) or counts (bucketed mode, nb per entry).
// All fields are guarded by mu.
type limShard struct {
	mu     sync.Mutex
	idx    map[string]int32
	keys   []string
	ents   []limEntry
	times  []int64
	counts []uint32

	max    int   // key cap of the shard
	cursor int   // next entry the sweep examines
	hw     int64 // latest offset seen by the shard
	floor  int64 // earliest offset a new key may be decided at

	_ [64]byte // keep shards on separate cache lines
}

// limEntry is one key's state.
type limEntry struct {
	// seen is the latest instant the key was decided at (its clock).
	seen int64
	// head is, in exact mode, the ring position of the oldest admission in
	// the window; in bucketed mode, the index of the newest bucket.
	head int64
	// n is the number of admissions in the window (exact) or in the live
	// buckets (bucketed).
	n int32
}

// NewLimiter returns a Limiter that admits at most limit events per key in
// any interval of length window. It panics if limit is not positive, if
// window is not positive or exceeds 146 years, or if an option is invalid.
func NewLimiter(limit int, window time.Duration, opts ...LimiterOption) *Limiter {
	if limit <= 0 {
		panic("ginsession.NewLimiter expects limit > 0")
	}
	if limit > 1<<31-1 {
		panic("ginsession.NewLimiter expects limit < 2^31")
	}
	if window <= 0 {
		panic("ginsession.NewLimiter expects window > 0")
	}
	if window > limWindowMax {
		panic("ginsession.NewLimiter expects window <= 2^62ns (146 years)")
	}
	cfg := limiterConfig{maxKeys: DefaultLimiterMaxKeys}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxKeys <= 0 {
		panic(fmt.Sprintf("ginsession.NewLimiter: WithMaxKeys(%d) expects n > 0", cfg.maxKeys))
	}
	if cfg.capMode != FailClosed && cfg.capMode != FailOpen {
		panic(fmt.Sprintf("ginsession.NewLimiter: WithCapFailMode(%v) expects FailClosed or FailOpen", cfg.capMode))
	}
	if cfg.backendMode != FailClosed && cfg.backendMode != FailOpen {
		panic(fmt.Sprintf("ginsession.NewLimiter: WithBackendFailMode(%v) expects FailClosed or FailOpen", cfg.backendMode))
	}

	l := &Limiter{
		limit:       limit,
		window:      int64(window),
		windowD:     window,
		base:        time.Now(),
		seed:        maphash.MakeSeed(),
		capMode:     cfg.capMode,
		backend:     cfg.backend,
		backendMode: cfg.backendMode,
	}
	if l.backend != nil {
		return l
	}
	if limit > LimiterExactMax {
		k := int64(limBucketsMax)
		for l.window%k != 0 {
			k--
		}
		l.width = l.window / k
		l.nb = int(k) + 1
		l.shift = limFloorMod(l.base.UnixNano(), l.width)
	}
	n := limShardsMax
	for n > 1 && n*limShardMinKeys > cfg.maxKeys {
		n /= 2
	}
	l.mask = uint64(n - 1)
	l.shards = make([]limShard, n)
	perShard := (cfg.maxKeys + n - 1) / n
	for i := range l.shards {
		s := &l.shards[i]
		s.idx = make(map[string]int32)
		s.max = perShard
		s.hw = -limTimeMax
		s.floor = -limTimeMax
	}
	return l
}

// Limit returns the most events the Limiter admits per key and window.
func (l *Limiter) Limit() int { return l.limit }

// Window returns the Limiter's window.
func (l *Limiter) Window() time.Duration { return l.windowD }

// Len returns the number of keys the in-process table tracks, including
// idle keys not yet dropped. It is zero with a backend.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.ents)
		s.mu.Unlock()
	}
	return n
}

// Allow is shorthand for AllowAt(key, time.Now()).
func (l *Limiter) Allow(key string) bool {
	return l.AllowAt(key, time.Now())
}

// AllowAt reports whether an event for key at now is admitted, and records
// it if so. With the in-process table it does not allocate, except to
// start tracking a new key.
func (l *Limiter) AllowAt(key string, now time.Time) bool {
	if l.backend != nil {
		return l.ReserveAt(key, now).Allowed
	}
	return l.decide(key, now, false).Allowed
}

// Reserve is shorthand for ReserveAt(key, time.Now()).
func (l *Limiter) Reserve(key string) Decision {
	return l.ReserveAt(key, time.Now())
}

// ReserveAt is AllowAt returning the whole Decision: how many events
// remain, and when to retry after a refusal. With a backend, an error is
// turned into the backend fail mode's decision; use ReserveAtContext to see
// it.
func (l *Limiter) ReserveAt(key string, now time.Time) Decision {
	if l.backend != nil {
		d, _ := l.ReserveAtContext(context.Background(), key, now)
		return d
	}
	return l.decide(key, now, true)
}

// ReserveAtContext is ReserveAt for a backend that does I/O: ctx bounds
// the backend's work, and a backend error is returned as a *LimiterError
// together with the decision taken under the backend fail mode
// (WithBackendFailMode). With the in-process table it ignores ctx and
// never fails.
func (l *Limiter) ReserveAtContext(ctx context.Context, key string, now time.Time) (Decision, error) {
	if l.backend == nil {
		return l.decide(key, now, true), nil
	}
	d, err := l.backend.Admit(ctx, key, l.limit, l.windowD, now)
	if err == nil {
		return d, nil
	}
	if l.backendMode == FailOpen {
		return Decision{Allowed: true}, &LimiterError{Err: err, Allowed: true}
	}
	return Decision{RetryAfter: limBackendRetry, ResetAfter: limBackendRetry}, &LimiterError{Err: err}
}

// offset returns now as nanoseconds from l.base, within ±limTimeMax. It
// uses the monotonic clock readings when both times have one.
func (l *Limiter) offset(now time.Time) int64 {
	t := int64(now.Sub(l.base))
	return min(max(t, -limTimeMax), limTimeMax)
}

// decide runs the in-process policy for key at now. Without detail, only
// Allowed is set.
func (l *Limiter) decide(key string, now time.Time, detail bool) Decision {
	t := l.offset(now)
	s := &l.shards[maphash.String(l.seed, key)&l.mask]
	s.mu.Lock()
	d := l.decideLocked(s, key, t, detail)
	s.mu.Unlock()
	return d
}

// decideLocked requires s.mu held.
func (l *Limiter) decideLocked(s *limShard, key string, t int64, detail bool) Decision {
	s.hw = max(s.hw, t)
	l.sweepLocked(s, limSweepPerOp)
	i, ok := s.idx[key]
	if !ok {
		if len(s.ents) >= s.max && !l.reclaimLocked(s) {
			if l.capMode == FailOpen {
				return Decision{Allowed: true, Remaining: l.limit - 1, ResetAfter: l.windowD}
			}
			return Decision{RetryAfter: l.windowD, ResetAfter: l.windowD}
		}
		i = l.insertLocked(s, key)
	}
	e := &s.ents[i]
	c := max(t, e.seen)
	e.seen = c
	if l.nb == 0 {
		return l.decideExact(s, e, int(i), key, t, c, detail)
	}
	return l.decideBucketed(s, e, int(i), key, t, c, detail)
}

// decideExact decides at the key's clock c (t is the caller's now) from
// the ring of admission times. It requires s.mu held.
func (l *Limiter) decideExact(s *limShard, e *limEntry, i int, key string, t, c int64, detail bool) Decision {
	lim := l.limit
	ring := s.times[i*lim : i*lim+lim]
	cut := c - l.window
	for e.n > 0 && ring[e.head] <= cut {
		e.head++
		if e.head == int64(lim) {
			e.head = 0
		}
		e.n--
	}
	if int(e.n) >= lim {
		if !detail {
			return Decision{}
		}
		wait := time.Duration(ring[e.head] + l.window - t)
		return Decision{RetryAfter: wait, ResetAfter: wait}
	}
	pos := int(e.head) + int(e.n)
	if pos >= lim {
		pos -= lim
	}
	ring[pos] = c
	e.n++
	if l.record != nil {
		l.record(key, c)
	}
	d := Decision{Allowed: true}
	if detail {
		d.Remaining = lim - int(e.n)
		d.ResetAfter = time.Duration(ring[e.head] + l.window - t)
	}
	return d
}

// decideBucketed decides at the key's clock c (t is the caller's now) from
// the bucket counts. It requires s.mu held.
func (l *Limiter) decideBucketed(s *limShard, e *limEntry, i int, key string, t, c int64, detail bool) Decision {
	nb := l.nb
	cnt := s.counts[i*nb : i*nb+nb]
	b := limFloorDiv(c+l.shift, l.width)
	switch {
	case e.n == 0:
		e.head = b
	case b > e.head:
		if b-e.head >= int64(nb) {
			clear(cnt)
			e.n = 0
		} else {
			slot := limMod(e.head, nb)
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
	if int(e.n) >= l.limit {
		if !detail {
			return Decision{}
		}
		wait := time.Duration(l.bucketStart(l.oldestBucket(cnt, e.head)) - t)
		return Decision{RetryAfter: wait, ResetAfter: wait}
	}
	cnt[limMod(b, nb)]++
	e.n++
	if l.record != nil {
		l.record(key, c)
	}
	d := Decision{Allowed: true}
	if detail {
		d.Remaining = l.limit - int(e.n)
		d.ResetAfter = time.Duration(l.bucketStart(l.oldestBucket(cnt, e.head)) - t)
	}
	return d
}

// oldestBucket returns the index of the bucket at whose start the oldest
// non-empty live bucket leaves the window: that bucket's index plus nb.
// The live buckets are head-nb+1 … head and at least one is non-empty.
func (l *Limiter) oldestBucket(cnt []uint32, head int64) int64 {
	slot := limMod(head+1, l.nb) // slot of bucket head-nb+1
	for k := range int64(l.nb) - 1 {
		if cnt[slot] != 0 {
			return head + 1 + k
		}
		if slot++; slot == l.nb {
			slot = 0
		}
	}
	return head + int64(l.nb)
}

// bucketStart returns the offset at which bucket j starts.
func (l *Limiter) bucketStart(j int64) int64 { return j*l.width - l.shift }

// insertLocked starts tracking key and returns its index. The new entry's
// clock starts at the shard's floor. The key is copied, so that a key cut
// from a larger string (such as a header) does not keep it alive. It
// requires s.mu held.
func (l *Limiter) insertLocked(s *limShard, key string) int32 {
	key = strings.Clone(key)
	i := int32(len(s.ents))
	s.ents = append(s.ents, limEntry{seen: s.floor})
	s.keys = append(s.keys, key)
	if l.nb == 0 {
		s.times = append(s.times, make([]int64, l.limit)...)
	} else {
		s.counts = append(s.counts, make([]uint32, l.nb)...)
	}
	s.idx[key] = i
	return i
}

// sweepLocked examines up to n entries from the cursor and drops those
// idle for a full window by the shard's latest time. A dropped key's
// admissions all lie a window or more before hw; the shard's floor keeps
// its successor from being decided earlier than one window after its last
// event. It reports whether it dropped any. It requires s.mu held.
func (l *Limiter) sweepLocked(s *limShard, n int) bool {
	dropped := false
	for ; n > 0 && len(s.ents) > 0; n-- {
		if s.cursor >= len(s.ents) {
			s.cursor = 0
			l.compactLocked(s)
		}
		e := &s.ents[s.cursor]
		if e.seen <= s.hw-l.window {
			s.floor = max(s.floor, e.seen+l.window)
			l.removeLocked(s, s.cursor)
			dropped = true
			continue
		}
		s.cursor++
	}
	return dropped
}

// reclaimLocked looks for an idle entry to drop when the shard is full.
// It requires s.mu held.
func (l *Limiter) reclaimLocked(s *limShard) bool {
	for range limSweepAtCap / limSweepPerOp {
		if l.sweepLocked(s, limSweepPerOp) {
			return true
		}
	}
	return false
}

// removeLocked drops entry i by moving the last entry into its place.
// It requires s.mu held.
func (l *Limiter) removeLocked(s *limShard, i int) {
	last := len(s.ents) - 1
	delete(s.idx, s.keys[i])
	if i != last {
		s.ents[i] = s.ents[last]
		s.keys[i] = s.keys[last]
		s.idx[s.keys[i]] = int32(i)
		if l.nb == 0 {
			copy(s.times[i*l.limit:(i+1)*l.limit], s.times[last*l.limit:])
		} else {
			copy(s.counts[i*l.nb:(i+1)*l.nb], s.counts[last*l.nb:])
		}
	}
	s.keys[last] = ""
	s.ents = s.ents[:last]
	s.keys = s.keys[:last]
	if l.nb == 0 {
		s.times = s.times[:last*l.limit]
	} else {
		s.counts = s.counts[:last*l.nb]
	}
}

// compactLocked shrinks the shard's tables, map included (Go maps never
// shrink), when they are mostly empty, as after a flood of distinct keys.
// It runs once per sweep pass. It requires s.mu held.
func (l *Limiter) compactLocked(s *limShard) {
	if cap(s.ents) < limCompactMin || len(s.ents) > cap(s.ents)/4 {
		return
	}
	n := len(s.ents)
	s.ents = append(make([]limEntry, 0, 2*n), s.ents...)
	s.keys = append(make([]string, 0, 2*n), s.keys...)
	if l.nb == 0 {
		s.times = append(make([]int64, 0, 2*n*l.limit), s.times...)
	} else {
		s.counts = append(make([]uint32, 0, 2*n*l.nb), s.counts...)
	}
	s.idx = make(map[string]int32, 2*n)
	for i, k := range s.keys {
		s.idx[k] = int32(i)
	}
}

// limFloorDiv returns ⌊a/b⌋ for b > 0.
func limFloorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// limFloorMod returns a mod b in [0, b) for b > 0.
func limFloorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// limMod returns j mod n in [0, n) for n > 0.
func limMod(j int64, n int) int {
	m := int(j % int64(n))
	if m < 0 {
		m += n
	}
	return m
}
