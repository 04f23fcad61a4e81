package memcached

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/codec"
	"github.com/securestack/ginsession/stores/internal/keylock"
	"github.com/securestack/ginsession/stores/internal/retry"
)

// Defaults of the options and of the clients that NewFromServers builds.
const (
	// DefaultPrefix is the key prefix when WithPrefix is not given.
	DefaultPrefix = "gs:"

	// DefaultMaxItemSize is the item size limit when WithMaxItemSize is
	// not given: memcached's default (its -I flag), 1 MiB.
	DefaultMaxItemSize = 1 << 20

	// DefaultMaxAttempts is how many times Update tries its
	// compare-and-swap when WithMaxAttempts is not given.
	DefaultMaxAttempts = 64

	// DefaultTouchCacheSize is the number of refreshed expiries a Store
	// remembers when WithTouchCacheSize is not given.
	DefaultTouchCacheSize = 1 << 16

	// DefaultTimeout is the dial, read and write timeout of the clients
	// that NewFromServers builds: 500ms, gomemcache's default, hundreds of
	// times a memcached round trip on a LAN. It bounds how long a request
	// waits for a hung or unreachable server (a refused connection fails
	// at once). The deadline also runs while the calling goroutine waits
	// for a CPU, so a much tighter one turns a busy process's scheduling
	// delays into spurious stores.ErrUnavailable errors.
	DefaultTimeout = 500 * time.Millisecond

	// DefaultMaxIdleConns is the number of idle connections per server
	// kept by the clients that NewFromServers builds. gomemcache keeps 2,
	// so that under concurrency most requests open (and close) a TCP
	// connection of their own; see the package documentation for the
	// figures.
	DefaultMaxIdleConns = 64
)

// itemOverhead is what memcached counts against its item size limit
// besides the key and the value: its item header, CAS value and the
// value's trailing CRLF, rounded up.
const itemOverhead = 64

// Errors without per-call state, allocated once.
var (
	errNotFound = fmt.Errorf("memcached: %w", stores.ErrNotFound)
	errExists   = fmt.Errorf("memcached: %w", stores.ErrExists)
	errClosed   = fmt.Errorf("memcached: %w", stores.ErrClosed)
	errConflict = fmt.Errorf("memcached: update: %w", stores.ErrConflict)
)

var _ stores.Store = (*Store)(nil)

// Store is a stores.Store on memcached. It is safe for concurrent use.
// The zero value is not usable; create one with New or NewFromServers.
type Store struct {
	client      client
	owned       bool // NewFromServers built client.mc, and Close closes it
	maxItemSize int
	maxAttempts int
	touches     *touchCache
	locks       keylock.Table
	now         func() time.Time
	bufs        sync.Pool // of *[]byte, for encoding
	closed      atomic.Bool
}

// Option configures a Store.
type Option func(*config)

type config struct {
	prefix         string
	maxItemSize    int
	maxAttempts    int
	touchCacheSize int
}

// WithPrefix sets the prefix of the store's memcached keys, which lets
// several applications share a server. A key is the prefix followed by
// the 43-character base64url form of a stores.Key. The prefix is at most
// 207 bytes (memcached keys are at most 250), without spaces or control
// characters. The default is DefaultPrefix ("gs:").
func WithPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// WithMaxItemSize sets the server's item size limit in bytes (memcached's
// -I flag). A write whose item would exceed it fails with
// stores.ErrTooLarge without reaching the server, and leaves the stored
// item unchanged. A server reply "object too large" maps to the same
// error, so a limit set too high is safe, merely slower to fail. The
// default is DefaultMaxItemSize (1 MiB).
func WithMaxItemSize(bytes int) Option {
	return func(c *config) { c.maxItemSize = bytes }
}

// WithMaxAttempts sets how many times Update tries its compare-and-swap
// when other writers keep changing the item, before it gives up with
// stores.ErrConflict. The default is DefaultMaxAttempts (64).
func WithMaxAttempts(n int) Option {
	return func(c *config) { c.maxAttempts = n }
}

// WithTouchCacheSize sets how many expiries set by Touch the store
// remembers. memcached's touch changes an item's lifetime but not its
// value, and memcached does not report lifetimes, so without this memory
// Get would report the expiry written with the value, older than the
// refresh: callers that refresh when the expiry draws near would refresh
// on every request. Zero disables it. The default is
// DefaultTouchCacheSize (65536 entries, a few MiB at most).
func WithTouchCacheSize(n int) Option {
	return func(c *config) { c.touchCacheSize = n }
}

// New returns a Store on client, which the caller configured and keeps
// owning: the Store never closes it, not even its idle connections, so the
// caller may share it with other code (a LimiterBackend, say). Set the
// client's MaxIdleConns above the number of concurrent requests
// (gomemcache's default of 2 makes most requests dial; DefaultMaxIdleConns
// is a good start) and its Timeout (DefaultTimeout). New panics if client is
// nil or an option is invalid.
func New(client *memcache.Client, opts ...Option) *Store {
	if client == nil {
		panic("memcached.New: nil client")
	}
	s, err := build(client, opts)
	if err != nil {
		panic("memcached.New: " + err.Error())
	}
	return s
}

// NewFromServers returns a Store on a client it builds for the given
// server addresses (host:port, or a Unix socket path), with DefaultTimeout
// and DefaultMaxIdleConns. Close closes that client. It returns an error
// if no address is given, an address does not resolve, or an option is
// invalid.
func NewFromServers(addrs []string, opts ...Option) (*Store, error) {
	if len(addrs) == 0 {
		return nil, errors.New("memcached.NewFromServers: no server address")
	}
	ss := new(memcache.ServerList)
	if err := ss.SetServers(addrs...); err != nil {
		return nil, fmt.Errorf("memcached.NewFromServers: %w", err)
	}
	client := memcache.NewFromSelector(ss)
	client.Timeout = DefaultTimeout
	client.MaxIdleConns = DefaultMaxIdleConns
	s, err := build(client, opts)
	if err != nil {
		return nil, fmt.Errorf("memcached.NewFromServers: %w", err)
	}
	s.owned = true
	return s, nil
}

func build(mc *memcache.Client, opts []Option) (*Store, error) {
	cfg := config{
		prefix:         DefaultPrefix,
		maxItemSize:    DefaultMaxItemSize,
		maxAttempts:    DefaultMaxAttempts,
		touchCacheSize: DefaultTouchCacheSize,
	}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := makeClient(mc, cfg.prefix)
	if err != nil {
		return nil, fmt.Errorf("WithPrefix: %w", err)
	}
	if cfg.maxItemSize <= len(cfg.prefix)+digestLen+itemOverhead {
		return nil, fmt.Errorf("WithMaxItemSize(%d): too small", cfg.maxItemSize)
	}
	if cfg.maxAttempts < 1 {
		return nil, fmt.Errorf("WithMaxAttempts(%d): want at least 1", cfg.maxAttempts)
	}
	if cfg.touchCacheSize < 0 {
		return nil, fmt.Errorf("WithTouchCacheSize(%d): negative", cfg.touchCacheSize)
	}
	return &Store{
		client:      c,
		maxItemSize: cfg.maxItemSize,
		maxAttempts: cfg.maxAttempts,
		touches:     newTouchCache(cfg.touchCacheSize),
		now:         time.Now,
	}, nil
}

// key returns the memcached key of k.
func (s *Store) key(k stores.Key) string {
	return s.client.key(k)
}

// check returns the error that stops an operation before it starts.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

// Get implements stores.Store. Item.ExpiresAt is the expiry written with
// the record, or a later one set since by this process's Touch: the item
// lives at least until then. A Touch from another process is not seen, so
// the reported expiry may be in the past for an item that lives on.
func (s *Store) Get(ctx context.Context, key stores.Key) (stores.Item, error) {
	if err := s.check(ctx); err != nil {
		return stores.Item{}, err
	}
	it, err := s.client.get("get", s.key(key))
	if err != nil {
		if errors.Is(err, memcache.ErrCacheMiss) {
			return stores.Item{}, errNotFound
		}
		return stores.Item{}, err
	}
	item, err := s.decode("get", key, it.Value)
	item.Version = it.CasID
	return item, err
}

// decode decodes a stored value into an Item.
func (s *Store) decode(op string, key stores.Key, value []byte) (stores.Item, error) {
	rec, exp, written, err := codec.Decode(value)
	if err != nil {
		return stores.Item{}, fmt.Errorf("memcached: %s: %w", op, err)
	}
	exp = s.touches.expiry(key, exp, written)
	return stores.Item{Record: rec, ExpiresAt: time.Unix(0, exp)}, nil
}

// encode encodes rec for storage under mk into a pooled buffer, which the
// caller returns with putBuf. It fails with stores.ErrTooLarge if the item
// would exceed the size limit.
func (s *Store) encode(op, mk string, rec *stores.Record, expiresAt, now time.Time) (*[]byte, error) {
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b, err := codec.Append((*bp)[:0], rec, unixNano(expiresAt), now.UnixNano())
	if err != nil {
		s.putBuf(bp)
		return nil, err
	}
	*bp = b
	if size := len(mk) + len(b) + itemOverhead; size > s.maxItemSize {
		s.putBuf(bp)
		return nil, fmt.Errorf("memcached: %s: %w: item of %d bytes, over the limit of %d (WithMaxItemSize)", op, stores.ErrTooLarge, size, s.maxItemSize)
	}
	return bp, nil
}

// maxPooledBuf bounds the buffers kept for reuse.
const maxPooledBuf = 64 << 10

func (s *Store) putBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledBuf {
		s.bufs.Put(bp)
	}
}

// Add implements stores.Store with memcached's add.
func (s *Store) Add(ctx context.Context, key stores.Key, rec *stores.Record, expiresAt time.Time) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	mk := s.key(key)
	now := s.now()
	bp, err := s.encode("add", mk, rec, expiresAt, now)
	if err != nil {
		return err
	}
	defer s.putBuf(bp)
	it := &memcache.Item{Key: mk, Value: *bp, Expiration: expiration(expiresAt, now)}
	err = s.client.add("add", it)
	switch {
	case err == nil:
		s.touches.forget(key)
		return nil
	case errors.Is(err, memcache.ErrNotStored):
		return errExists
	default:
		return err
	}
}

// Update implements stores.Store with memcached's gets and cas. Updates of
// one key through one Store take turns (fn runs while others wait), so
// only writers in other processes can make a cas fail; Update then tries
// again, up to WithMaxAttempts times, the first few at once and then after
// a short random pause, honouring ctx between attempts. A cas on an item
// deleted meanwhile fails, so Update never brings a deleted item back. fn
// may run once per attempt.
func (s *Store) Update(ctx context.Context, key stores.Key, fn stores.UpdateFunc) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	unlock, err := s.locks.Lock(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	mk := s.key(key)
	for attempt := range s.maxAttempts {
		if err := s.check(ctx); err != nil {
			return err
		}
		if err := retry.Pause(ctx, attempt); err != nil {
			return err
		}
		err := s.tryUpdate(key, mk, fn, nil)
		if !errors.Is(err, memcache.ErrCASConflict) {
			return err
		}
	}
	return errConflict
}

var _ stores.UpdaterFrom = (*Store)(nil)

// UpdateFrom implements stores.UpdaterFrom: its first attempt is a single
// cas of fn(cur) against cur.Version, without a gets. If the item changed
// since cur was read, it continues as Update.
func (s *Store) UpdateFrom(ctx context.Context, key stores.Key, cur stores.Item, fn stores.UpdateFunc) error {
	if cur.Version == 0 || cur.Record == nil {
		return s.Update(ctx, key, fn)
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	unlock, err := s.locks.Lock(ctx, key)
	if err != nil {
		return err
	}
	err = s.tryUpdate(key, s.key(key), fn, &cur)
	unlock()
	if !errors.Is(err, memcache.ErrCASConflict) {
		return err
	}
	return s.Update(ctx, key, fn)
}

// tryUpdate makes one attempt at Update, from the item it reads or, when
// from is not nil, from that item as read before. It returns
// memcache.ErrCASConflict if another writer changed the item first.
func (s *Store) tryUpdate(key stores.Key, mk string, fn stores.UpdateFunc, from *stores.Item) error {
	var it *memcache.Item
	var cur stores.Item
	if from != nil {
		it, cur = &memcache.Item{Key: mk, CasID: from.Version}, *from
	} else {
		var err error
		if it, err = s.client.get("update", mk); err != nil {
			if errors.Is(err, memcache.ErrCacheMiss) {
				return errNotFound
			}
			return err
		}
		if cur, err = s.decode("update", key, it.Value); err != nil {
			return err
		}
		cur.Version = it.CasID
	}
	next, expiresAt, err := fn(cur)
	if err != nil {
		return err
	}
	now := s.now()
	if next == nil {
		// Delete, but only if the item is unchanged: a cas that
		// expires it at once.
		it.Value, it.Expiration = nil, expireNow
	} else {
		bp, err := s.encode("update", mk, next, expiresAt, now)
		if err != nil {
			return err
		}
		defer s.putBuf(bp)
		it.Value, it.Expiration = *bp, expiration(expiresAt, now)
	}
	err = s.client.cas("update", it)
	switch {
	case err == nil:
		s.touches.forget(key)
		return nil
	case errors.Is(err, memcache.ErrCASConflict):
		return err
	case errors.Is(err, memcache.ErrCacheMiss), errors.Is(err, memcache.ErrNotStored):
		return errNotFound
	default:
		return err
	}
}

// Delete implements stores.Store with memcached's delete.
func (s *Store) Delete(ctx context.Context, key stores.Key) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	err := s.client.delete("delete", s.key(key))
	s.touches.forget(key)
	if err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
		return err
	}
	return nil
}

// Touch implements stores.Store with memcached's touch, which sets the
// item's lifetime without rewriting its value. The Store remembers the new
// expiry for Get (see WithTouchCacheSize).
func (s *Store) Touch(ctx context.Context, key stores.Key, expiresAt time.Time) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	now := s.now()
	exp := expiration(expiresAt, now)
	err := s.client.touch("touch", s.key(key), exp)
	switch {
	case err == nil:
		if exp == expireNow {
			s.touches.forget(key)
		} else {
			s.touches.set(key, unixNano(expiresAt), now.UnixNano())
		}
		return nil
	case errors.Is(err, memcache.ErrCacheMiss):
		return errNotFound
	default:
		return err
	}
}

// Close marks the store closed and, if NewFromServers built its client,
// closes the client's idle connections. A client passed to New is left
// alone. Close is idempotent; operations after Close return
// stores.ErrClosed. Operations already running finish.
func (s *Store) Close() error {
	if s.closed.Swap(true) || !s.owned {
		return nil
	}
	if err := s.client.mc.Close(); err != nil {
		return fmt.Errorf("memcached: close: %w", err)
	}
	return nil
}
