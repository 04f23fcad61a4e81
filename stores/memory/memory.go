// Package memory is ginsession's embedded session store: a sharded
// in-process map with exact expiry and a background sweeper.
//
// It suits a single application instance. Sessions are lost when the process
// exits; several instances behind a load balancer need a shared store such
// as package stores/memcached.
//
// Records are stored by pointer and handed out shared, so a read decodes and
// copies nothing. This is safe because stores.Record values are immutable:
// writers build a new Record rather than modify one.
package memory

import (
	"context"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/securestack/ginsession/stores"
)

// DefaultSweepInterval is how often the sweeper removes expired items when
// WithSweepInterval is not given.
const DefaultSweepInterval = time.Minute

// shardCount is the number of independently locked shards. A power of two,
// so the shard index is a mask of the key's first bytes (keys are digests,
// so they are uniformly distributed).
const shardCount = 64

// sweepBatch bounds how many entries the sweeper examines per lock hold, so
// a sweep of a large shard never blocks readers for long.
const sweepBatch = 64

var _ stores.Store = (*Store)(nil)

// Store is an in-memory stores.Store. It is safe for concurrent use.
// The zero value is not usable; create one with New.
type Store struct {
	now    func() time.Time
	shards [shardCount]shard

	closed    atomic.Bool
	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

type shard struct {
	mu   sync.RWMutex
	m    map[stores.Key]entry
	peak int      // the most entries m held since it was made; guarded by mu
	_    [32]byte // keep shards on separate cache lines
}

// compactMin is the smallest peak at which Sweep rebuilds a shard's map
// once it holds less than a quarter of that: Go maps never shrink, so
// without it the tables of a million expired sessions would stay allocated
// for the store's life.
const compactMin = 128

type entry struct {
	rec       *stores.Record
	expiresAt int64 // Unix nanoseconds, see unixNano
}

// Bounds of the expiries an entry can hold: time.Time.UnixNano is
// undefined outside about 1678–2262.
var (
	maxExpiry = time.Unix(0, math.MaxInt64)
	minExpiry = time.Unix(0, math.MinInt64)
)

// unixNano returns t in Unix nanoseconds, saturated at the int64 range: an
// expiry past 2262 lives until then (the end of time for this store), and
// one before 1678 has expired, instead of wrapping around.
func unixNano(t time.Time) int64 {
	switch {
	case !t.Before(maxExpiry):
		return math.MaxInt64
	case !t.After(minExpiry):
		return math.MinInt64
	}
	return t.UnixNano()
}

// Option configures a Store.
type Option func(*config)

type config struct {
	now           func() time.Time
	sweepInterval time.Duration
}

// WithClock sets the function the store reads the time from. It exists for
// tests, which advance a fake clock instead of sleeping. The default is
// time.Now; nil also means time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithSweepInterval sets how often the background sweeper removes expired
// items. Expired items are never returned whether or not they were swept;
// sweeping only frees their memory. Zero or a negative interval disables
// the sweeper (items are then removed only when overwritten or deleted).
// The default is DefaultSweepInterval (one minute).
func WithSweepInterval(d time.Duration) Option {
	return func(c *config) { c.sweepInterval = d }
}

// New returns an empty Store and starts its sweeper. Call Close to stop the
// sweeper; a Store that is no longer used and not closed leaks a goroutine.
func New(opts ...Option) *Store {
	cfg := config{sweepInterval: DefaultSweepInterval}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	s := &Store{now: cfg.now, stop: make(chan struct{}), done: make(chan struct{})}
	for i := range s.shards {
		s.shards[i].m = make(map[stores.Key]entry)
	}
	if cfg.sweepInterval > 0 {
		go s.sweeper(cfg.sweepInterval)
	} else {
		close(s.done)
	}
	return s
}

func (s *Store) shard(k stores.Key) *shard {
	return &s.shards[k[0]&(shardCount-1)]
}

// Get implements stores.Store. The returned record is shared, not copied.
func (s *Store) Get(ctx context.Context, key stores.Key) (stores.Item, error) {
	if err := s.check(ctx); err != nil {
		return stores.Item{}, err
	}
	sh := s.shard(key)
	sh.mu.RLock()
	e, ok := sh.m[key]
	sh.mu.RUnlock()
	if !ok || e.expiresAt <= s.now().UnixNano() {
		return stores.Item{}, stores.ErrNotFound
	}
	return stores.Item{Record: e.rec, ExpiresAt: time.Unix(0, e.expiresAt)}, nil
}

// Add implements stores.Store.
func (s *Store) Add(ctx context.Context, key stores.Key, rec *stores.Record, expiresAt time.Time) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.m[key]; ok && e.expiresAt > s.now().UnixNano() {
		return stores.ErrExists
	}
	sh.m[key] = entry{rec: rec, expiresAt: unixNano(expiresAt)}
	sh.peak = max(sh.peak, len(sh.m))
	return nil
}

// Update implements stores.Store. fn runs exactly once, under the shard's
// lock, so it must be quick and must not call the store.
func (s *Store) Update(ctx context.Context, key stores.Key, fn stores.UpdateFunc) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[key]
	if !ok || e.expiresAt <= s.now().UnixNano() {
		return stores.ErrNotFound
	}
	next, exp, err := fn(stores.Item{Record: e.rec, ExpiresAt: time.Unix(0, e.expiresAt)})
	if err != nil {
		return err
	}
	if next == nil {
		delete(sh.m, key)
		return nil
	}
	sh.m[key] = entry{rec: next, expiresAt: unixNano(exp)}
	return nil
}

// Delete implements stores.Store.
func (s *Store) Delete(ctx context.Context, key stores.Key) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	delete(sh.m, key)
	sh.mu.Unlock()
	return nil
}

// Touch implements stores.Store.
func (s *Store) Touch(ctx context.Context, key stores.Key, expiresAt time.Time) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[key]
	if !ok || e.expiresAt <= s.now().UnixNano() {
		return stores.ErrNotFound
	}
	e.expiresAt = unixNano(expiresAt)
	sh.m[key] = e
	return nil
}

// Len returns the number of items held, including expired items that the
// sweeper has not yet removed.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// Close stops the sweeper and waits for it to exit. It is idempotent.
// Operations after Close return stores.ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
	})
	<-s.done
	return nil
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return stores.ErrClosed
	}
	return ctx.Err()
}

// sweeper removes expired entries every interval until Close.
func (s *Store) sweeper(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// Sweep removes every expired entry now and returns how many it removed.
// The sweeper calls it periodically; it is exported for tests and for
// callers that run their own schedule (WithSweepInterval(0)).
//
// Sweep never holds a shard's lock for more than sweepBatch entries: it
// collects expired keys under the read lock, then deletes them in batches
// under the write lock, re-checking each, so concurrent Gets wait at most
// one short batch; it yields the processor between batches. A shard left
// with less than a quarter of the most entries it held (at least
// compactMin) gets a new map holding just the live ones, so that the
// memory of expired sessions is returned, not only reused.
func (s *Store) Sweep() int {
	removed := 0
	var expired []stores.Key
	for i := range s.shards {
		sh := &s.shards[i]
		now := s.now().UnixNano()
		expired = expired[:0]
		sh.mu.RLock()
		for k, e := range sh.m {
			if e.expiresAt <= now {
				expired = append(expired, k)
			}
		}
		sh.mu.RUnlock()
		for len(expired) > 0 {
			n := min(len(expired), sweepBatch)
			sh.mu.Lock()
			for _, k := range expired[:n] {
				if e, ok := sh.m[k]; ok && e.expiresAt <= now {
					delete(sh.m, k)
					removed++
				}
			}
			sh.mu.Unlock()
			expired = expired[n:]
			// Let waiting goroutines run: on a busy machine a long sweep
			// would otherwise keep them off the CPU until preempted.
			runtime.Gosched()
		}
		sh.compact()
	}
	return removed
}

// compact rebuilds the shard's map when it holds less than a quarter of
// its peak. The copy runs under the write lock, but only when the shard
// has few entries left, so it is short.
func (sh *shard) compact() {
	sh.mu.RLock()
	due := sh.peak >= compactMin && len(sh.m) < sh.peak/4
	sh.mu.RUnlock()
	if !due {
		return
	}
	sh.mu.Lock()
	if sh.peak >= compactMin && len(sh.m) < sh.peak/4 {
		m := make(map[stores.Key]entry, len(sh.m))
		for k, e := range sh.m {
			m[k] = e
		}
		sh.m, sh.peak = m, len(m)
	}
	sh.mu.Unlock()
}
