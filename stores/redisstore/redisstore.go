package redisstore

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/codec"
	"github.com/securestack/ginsession/stores/internal/keylock"
	"github.com/securestack/ginsession/stores/internal/retry"
)

// Defaults of the options.
const (
	// DefaultPrefix is the key prefix when WithPrefix is not given.
	DefaultPrefix = "gs:"

	// DefaultMaxItemSize is the size limit of a stored value when
	// WithMaxItemSize is not given: 1 MiB, as memcached's default item
	// size, so that sessions move between the two stores.
	DefaultMaxItemSize = 1 << 20

	// DefaultMaxAttempts is how many times Update tries its
	// compare-and-swap when WithMaxAttempts is not given.
	DefaultMaxAttempts = 64
)

const (
	// maxPrefixLen bounds the key prefix.
	maxPrefixLen = 512

	// maxValueSize is Redis's default limit on a bulk string
	// (proto-max-bulk-len, 512 MiB). The server drops the connection of a
	// client that sends a longer one.
	maxValueSize = 512 << 20

	// versionSize is the length of the version that starts a value.
	versionSize = 8
	// headerSize is the length of a value's version and expiry.
	headerSize = versionSize + 8
)

// maxExpiry is the latest expiry a Store keeps, as the memory store does:
// time.Time.UnixNano ends in 2262. Later expiries are capped there.
var maxExpiry = time.Unix(0, math.MaxInt64)

var (
	_ stores.Store       = (*Store)(nil)
	_ stores.UpdaterFrom = (*Store)(nil)
)

// Store is a stores.Store on Redis. It is safe for concurrent use. The
// zero value is not usable; create one with New.
type Store struct {
	client      redis.UniversalClient
	prefix      string
	maxItemSize int
	maxAttempts int
	wait        *waitPolicy // nil without WithWait
	locks       keylock.Table
	now         func() time.Time
	bufs        sync.Pool // of *[]byte, for encoding
	closed      atomic.Bool
}

// waitPolicy is WithWait's configuration, and where to send WAIT.
type waitPolicy struct {
	replicas int
	timeout  time.Duration
	single   *redis.Client        // a single server or a Sentinel failover client
	cluster  *redis.ClusterClient // or a cluster
}

// Option configures a Store.
type Option func(*config)

type config struct {
	prefix       string
	maxItemSize  int
	maxAttempts  int
	waitReplicas int
	waitTimeout  time.Duration
	waitSet      bool
}

// WithPrefix sets the prefix of the store's Redis keys, which lets several
// applications share a server. A key is the prefix followed by the
// 43-character base64url form of a stores.Key. The prefix is at most 512
// bytes, without control characters, and must not hold a Redis Cluster
// hash tag ("{...}"), which would put every session in one slot, on one
// node. The default is DefaultPrefix ("gs:").
func WithPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// WithMaxItemSize sets the size limit of a stored value in bytes: the
// encoded record plus a 16-byte header (version and expiry). A write over it fails with
// stores.ErrTooLarge without reaching the server, and leaves the stored
// item unchanged. It is at most 512 MiB, Redis's own limit on a value
// (proto-max-bulk-len), past which the server drops the connection and the
// error would look like an outage. The default is DefaultMaxItemSize
// (1 MiB).
func WithMaxItemSize(bytes int) Option {
	return func(c *config) { c.maxItemSize = bytes }
}

// WithMaxAttempts sets how many times Update tries its compare-and-swap
// when other writers keep changing the item, before it gives up with
// stores.ErrConflict. The default is DefaultMaxAttempts (64).
func WithMaxAttempts(n int) Option {
	return func(c *config) { c.maxAttempts = n }
}

// WithWait makes every write (Add, Update, UpdateFrom, Touch, Delete)
// wait until at least replicas replicas acknowledged it, with Redis's
// `WAIT replicas timeout` sent right after the write on the same
// connection (one round trip), and fail with an error matching
// ErrNotReplicated (and stores.ErrUnavailable) when fewer did within
// timeout.
//
// Redis replicates asynchronously: a primary acknowledges a write before
// any replica has it, so a failover can lose the last writes, such as a
// logout that deleted a session, which then comes back. WAIT narrows that
// window; it does not close it. An acknowledged write is in the replicas'
// memory, not necessarily on their disks, and a failover may still promote
// a replica that lacked it. A write that times out is not rolled back: it
// stays on the primary and may reach the replicas later. WAIT does not
// make Redis strongly consistent; it makes a lost write less likely and an
// unreplicated one visible.
//
// replicas must be at least 1 and timeout at least 1ms (WAIT's 0 would
// block forever) and below the client's ReadTimeout, which bounds the
// reply's wait. The client must be a *redis.Client (a single server, or a
// Sentinel failover client from redis.NewFailoverClient) or a
// *redis.ClusterClient (WAIT goes to the key's primary). Off by default.
func WithWait(replicas int, timeout time.Duration) Option {
	return func(c *config) {
		c.waitReplicas, c.waitTimeout, c.waitSet = replicas, timeout, true
	}
}

// New returns a Store on client, the application's go-redis client: a
// single server (redis.NewClient), a Sentinel failover client
// (redis.NewFailoverClient) or a Cluster client (redis.NewClusterClient),
// as redis.NewUniversalClient returns them. The caller keeps owning the
// client: Close does not close it. See the package documentation for the
// client settings a session store needs. The server must be Redis 7.0 or
// later (or Valkey).
//
// New panics if client is nil or an option is invalid.
func New(client redis.UniversalClient, opts ...Option) *Store {
	if client == nil {
		panic("redisstore.New: nil client")
	}
	cfg := config{
		prefix:      DefaultPrefix,
		maxItemSize: DefaultMaxItemSize,
		maxAttempts: DefaultMaxAttempts,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := checkPrefix("WithPrefix", cfg.prefix); err != nil {
		panic("redisstore.New: " + err.Error())
	}
	if cfg.maxItemSize <= headerSize || cfg.maxItemSize > maxValueSize {
		panic(fmt.Sprintf("redisstore.New: WithMaxItemSize(%d): want more than %d bytes and at most 512 MiB (Redis's proto-max-bulk-len)", cfg.maxItemSize, headerSize))
	}
	if cfg.maxAttempts < 1 {
		panic(fmt.Sprintf("redisstore.New: WithMaxAttempts(%d): want at least 1", cfg.maxAttempts))
	}
	if cc, ok := client.(*redis.ClusterClient); ok {
		if o := cc.Options(); o.ReadOnly || o.RouteByLatency || o.RouteRandomly {
			// Reads are plain GETs, which such a client sends to
			// replicas, where a revoked session can still be found.
			panic("redisstore.New: the client routes reads to replicas (ReadOnly, RouteByLatency or RouteRandomly), which can serve a session after its logout")
		}
	}
	s := &Store{
		client:      client,
		prefix:      cfg.prefix,
		maxItemSize: cfg.maxItemSize,
		maxAttempts: cfg.maxAttempts,
		now:         time.Now,
	}
	if cfg.waitSet {
		w, err := newWaitPolicy(client, cfg.waitReplicas, cfg.waitTimeout)
		if err != nil {
			panic("redisstore.New: " + err.Error())
		}
		s.wait = w
	}
	return s
}

func newWaitPolicy(client redis.UniversalClient, replicas int, timeout time.Duration) (*waitPolicy, error) {
	name := fmt.Sprintf("WithWait(%d, %v)", replicas, timeout)
	if replicas < 1 {
		return nil, fmt.Errorf("%s: want at least 1 replica", name)
	}
	if timeout < time.Millisecond {
		return nil, fmt.Errorf("%s: want a timeout of at least 1ms (WAIT's 0 blocks forever)", name)
	}
	w := &waitPolicy{replicas: replicas, timeout: timeout}
	var readTimeout time.Duration
	switch c := client.(type) {
	case *redis.Client:
		w.single, readTimeout = c, c.Options().ReadTimeout
	case *redis.ClusterClient:
		w.cluster, readTimeout = c, c.Options().ReadTimeout
	default:
		return nil, fmt.Errorf("%s: needs a *redis.Client or *redis.ClusterClient, not %T (WAIT must follow the write on its connection)", name, client)
	}
	if readTimeout > 0 && timeout >= readTimeout {
		return nil, fmt.Errorf("%s: timeout not below the client's ReadTimeout (%v), which would expire first", name, readTimeout)
	}
	return w, nil
}

// checkPrefix reports whether prefix is a valid key prefix for option.
func checkPrefix(option, prefix string) error {
	if len(prefix) > maxPrefixLen {
		return fmt.Errorf("%s: %d bytes, more than %d", option, len(prefix), maxPrefixLen)
	}
	for i := 0; i < len(prefix); i++ {
		if c := prefix[i]; c < ' ' || c == 0x7f {
			return fmt.Errorf("%s(%q): control character at byte %d", option, prefix, i)
		}
	}
	// Redis Cluster hashes only the part between the first '{' and the
	// next '}', if not empty. Keys end in base64url, without braces.
	if i := strings.IndexByte(prefix, '{'); i >= 0 {
		if j := strings.IndexByte(prefix[i+1:], '}'); j > 0 {
			return fmt.Errorf("%s(%q): holds a Redis Cluster hash tag, which would put every key in one slot", option, prefix)
		}
	}
	return nil
}

// key returns the Redis key of k.
func (s *Store) key(k stores.Key) string {
	var arr [64]byte
	b := append(arr[:0], s.prefix...)
	b = base64.RawURLEncoding.AppendEncode(b, k[:])
	return string(b)
}

// check returns the error that stops an operation before it starts.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

// Get implements stores.Store with one command, a plain GET: the value
// carries the item's expiry, to the millisecond, which writes and Touch
// (from any process) keep equal to the key's; Item.Version is the value's
// random version.
func (s *Store) Get(ctx context.Context, key stores.Key) (stores.Item, error) {
	if err := s.check(ctx); err != nil {
		return stores.Item{}, err
	}
	return s.get(ctx, "get", s.key(key))
}

// get reads and decodes the item under the Redis key rk.
func (s *Store) get(ctx context.Context, op, rk string) (stores.Item, error) {
	value, err := s.client.Get(ctx, rk).Result()
	if err != nil {
		if errors.Is(err, redis.Nil) {
			return stores.Item{}, errNotFound
		}
		return stores.Item{}, fail(ctx, op, err)
	}
	if len(value) <= headerSize {
		return stores.Item{}, fmt.Errorf("redisstore: %s: %w: value of %d bytes", op, codec.ErrMalformed, len(value))
	}
	rec, _, _, err := codec.Decode([]byte(value[headerSize:]))
	if err != nil {
		return stores.Item{}, fmt.Errorf("redisstore: %s: %w", op, err)
	}
	return stores.Item{
		Record:    rec,
		ExpiresAt: fromUnixMilli(int64(binary.BigEndian.Uint64([]byte(value[versionSize:headerSize])))),
		Version:   binary.BigEndian.Uint64([]byte(value[:versionSize])),
	}, nil
}

// fromUnixMilli converts a PEXPIRETIME reply into a time. A key without an
// expiry (written by something else) lives until maxExpiry.
func fromUnixMilli(ms int64) time.Time {
	if ms < 0 || ms > maxExpiry.UnixMilli() {
		return time.UnixMilli(maxExpiry.UnixMilli())
	}
	return time.UnixMilli(ms)
}

// pxat returns the PXAT (Unix milliseconds) of an item expiring at
// expiresAt, judged at now: the expiry rounded down to the millisecond
// (an item never outlives its expiry), capped at maxExpiry, and 1 (a
// moment long past, for Redis too) for an expiry at or before now. It is
// always positive: go-redis and Redis give a zero or negative expiry other
// meanings, among them "never expire".
func pxat(expiresAt, now time.Time) int64 {
	switch {
	case !expiresAt.After(now):
		return 1
	case !expiresAt.Before(maxExpiry):
		return maxExpiry.UnixMilli()
	}
	return max(1, expiresAt.UnixMilli())
}

// unixNano returns t in Unix nanoseconds, saturated at the int64 range.
func unixNano(t time.Time) int64 {
	switch {
	case !t.Before(maxExpiry):
		return math.MaxInt64
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	}
	return t.UnixNano()
}

// newVersion returns a random, non-zero version. Versions are random, not
// counters: keys such as a user's index are deleted and created again, and
// a counter restarting at 1 would let a compare-and-swap from before the
// deletion succeed (ABA).
func newVersion() uint64 {
	for {
		if v := rand.Uint64(); v != 0 {
			return v
		}
	}
}

// encode returns, in a pooled buffer that the caller returns with putBuf,
// the value of rec at a new version, expiring at expiresAt. It fails with
// stores.ErrTooLarge if the value exceeds the size limit.
func (s *Store) encode(op string, rec *stores.Record, expiresAt, now time.Time) (*[]byte, error) {
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b := binary.BigEndian.AppendUint64((*bp)[:0], newVersion())
	b = binary.BigEndian.AppendUint64(b, uint64(pxat(expiresAt, now)))
	b, err := codec.Append(b, rec, unixNano(expiresAt), now.UnixNano())
	if err != nil {
		s.putBuf(bp)
		return nil, err
	}
	*bp = b
	if len(b) > s.maxItemSize {
		s.putBuf(bp)
		return nil, fmt.Errorf("redisstore: %s: %w: value of %d bytes, over the limit of %d (WithMaxItemSize)", op, stores.ErrTooLarge, len(b), s.maxItemSize)
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

// Add implements stores.Store with one command: SET key value NX PXAT t
// GET. GET returns the value already stored, if any: when it carries the
// new value's version, the SET is this Add's own, applied by an attempt of
// the client whose reply was lost, and Add succeeds instead of reporting
// stores.ErrExists. An expiry at or before now stores nothing that
// outlives the command.
func (s *Store) Add(ctx context.Context, key stores.Key, rec *stores.Record, expiresAt time.Time) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	now := s.now()
	bp, err := s.encode("add", rec, expiresAt, now)
	if err != nil {
		return err
	}
	defer s.putBuf(bp)
	value, rk := *bp, s.key(key)
	args := redis.SetArgs{Mode: "NX", ExpireAt: time.UnixMilli(pxat(expiresAt, now)), Get: true}
	cmd, acks := write(ctx, s, rk, func(c redis.Cmdable, _ bool) *redis.StatusCmd {
		return c.SetArgs(ctx, rk, value, args)
	})
	old, err := cmd.Result()
	switch {
	case errors.Is(err, redis.Nil): // no value was there: stored
	case err != nil:
		return fail(ctx, "add", err)
	case len(old) < versionSize || old[:versionSize] != string(value[:versionSize]):
		return errExists
	}
	return s.checkAcks(ctx, "add", acks)
}

// Update implements stores.Store: it reads the item (one command) and
// replaces it with a compare-and-swap script (one command) that fails if
// another writer changed it in between. Updates of one key through one
// Store take turns (fn runs while others wait), so only writers in other
// processes can make it fail; Update then tries again, up to
// WithMaxAttempts times, the first few at once and then after a short
// random pause, honouring ctx between attempts. The swap fails on an item
// deleted meanwhile, so Update never brings a deleted item back. fn may
// run once per attempt.
//
// A swap whose reply is lost and that the client sends again is
// recognized by its new version and counts once. A deletion (fn returning
// a nil record) sent again finds the item gone and reports
// stores.ErrNotFound: the item is deleted either way.
func (s *Store) Update(ctx context.Context, key stores.Key, fn stores.UpdateFunc) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	unlock, err := s.locks.Lock(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	rk := s.key(key)
	for attempt := range s.maxAttempts {
		if err := s.check(ctx); err != nil {
			return err
		}
		if err := retry.Pause(ctx, attempt); err != nil {
			return err
		}
		cur, err := s.get(ctx, "update", rk)
		if err != nil {
			return err
		}
		if err := s.swap(ctx, rk, cur, fn); !errors.Is(err, errSwapConflict) {
			return err
		}
	}
	return errConflict
}

// UpdateFrom implements stores.UpdaterFrom: its first attempt is the
// compare-and-swap script alone, one command, of fn(cur) against
// cur.Version. If the item changed since cur was read, it continues as
// Update; if it was deleted, it returns stores.ErrNotFound.
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
	err = s.swap(ctx, s.key(key), cur, fn)
	unlock()
	if !errors.Is(err, errSwapConflict) {
		return err
	}
	return s.Update(ctx, key, fn)
}

// errSwapConflict is swap's report that another version is stored.
var errSwapConflict = errors.New("redisstore: version changed")

// swap writes fn(cur) under rk if the stored version is still cur's. It
// returns errSwapConflict if it is not.
func (s *Store) swap(ctx context.Context, rk string, cur stores.Item, fn stores.UpdateFunc) error {
	next, expiresAt, err := fn(cur)
	if err != nil {
		return err
	}
	var from [versionSize]byte
	binary.BigEndian.PutUint64(from[:], cur.Version)
	var value []byte // empty: delete
	var at int64
	if next != nil {
		now := s.now()
		bp, err := s.encode("update", next, expiresAt, now)
		if err != nil {
			return err
		}
		defer s.putBuf(bp)
		value, at = *bp, pxat(expiresAt, now)
	}
	cmd, acks := write(ctx, s, rk, func(c redis.Cmdable, eval bool) *redis.Cmd {
		if eval {
			return casScript.Eval(ctx, c, []string{rk}, from[:], value, at)
		}
		return casScript.EvalSha(ctx, c, []string{rk}, from[:], value, at)
	})
	res, err := cmd.Int()
	if err != nil {
		return fail(ctx, "update", err)
	}
	switch res {
	case casWritten:
		return s.checkAcks(ctx, "update", acks)
	case casMissing:
		return errNotFound
	default:
		return errSwapConflict
	}
}

// Delete implements stores.Store with DEL. With WithWait, deleting a
// missing key writes nothing and waits for nothing.
func (s *Store) Delete(ctx context.Context, key stores.Key) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	rk := s.key(key)
	cmd, acks := write(ctx, s, rk, func(c redis.Cmdable, _ bool) *redis.IntCmd {
		return c.Del(ctx, rk)
	})
	n, err := cmd.Result()
	switch {
	case err != nil:
		return fail(ctx, "delete", err)
	case n == 0:
		return nil
	}
	return s.checkAcks(ctx, "delete", acks)
}

// Touch implements stores.Store with one command (touchScript), which
// sets the key's expiry and the copy of it in the value without rewriting
// the record. An expiry at or before now deletes the item. On a full
// server (maxmemory under noeviction), which refuses the rewrite of the
// copy, it sets the key's expiry alone, with one more command.
func (s *Store) Touch(ctx context.Context, key stores.Key, expiresAt time.Time) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	rk := s.key(key)
	at := pxat(expiresAt, s.now())
	var field [8]byte
	binary.BigEndian.PutUint64(field[:], uint64(at))
	cmd, acks := write(ctx, s, rk, func(c redis.Cmdable, eval bool) *redis.Cmd {
		if eval {
			return touchScript.Eval(ctx, c, []string{rk}, field[:], at)
		}
		return touchScript.EvalSha(ctx, c, []string{rk}, field[:], at)
	})
	n, err := cmd.Int()
	if err != nil && (redis.IsOOMError(err) || redis.HasErrorPrefix(err, "OOM ")) {
		// A full server (maxmemory, noeviction) refuses SETRANGE but
		// takes PEXPIREAT, which grows nothing: set the key's expiry
		// alone. Get then reports the value's older expiry, a time the
		// item lives at least until, as the Store contract allows, and
		// the next refresh writes both again.
		var pcmd *redis.BoolCmd
		pcmd, acks = write(ctx, s, rk, func(c redis.Cmdable, _ bool) *redis.BoolCmd {
			return c.PExpireAt(ctx, rk, time.UnixMilli(at))
		})
		var ok bool
		ok, err = pcmd.Result()
		if err == nil && !ok {
			n = 0
		} else {
			n = 1
		}
	}
	switch {
	case err != nil:
		return fail(ctx, "touch", err)
	case n == 0:
		return errNotFound
	}
	return s.checkAcks(ctx, "touch", acks)
}

// Close marks the store closed. It does not close the client, which the
// caller owns. It is idempotent; operations after Close return
// stores.ErrClosed. Operations already running finish.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

// write runs one write command, which mk builds on c (as EVAL rather than
// EVALSHA when eval is set), and returns it; its error is the command's.
// Without WithWait it runs on the store's client, and a script that the
// server does not know is sent again with EVAL. With WithWait, the command
// and a WAIT run in one pipeline on the connection of the key's primary,
// and write also returns the WAIT.
func write[C redis.Cmder](ctx context.Context, s *Store, rk string, mk func(c redis.Cmdable, eval bool) C) (C, *redis.IntCmd) {
	if s.wait == nil {
		cmd := mk(s.client, false)
		if isNoScript(cmd.Err()) {
			cmd = mk(s.client, true)
		}
		return cmd, nil
	}
	cmd, acks := waitWrite(ctx, s, rk, mk, false)
	if isNoScript(cmd.Err()) {
		cmd, acks = waitWrite(ctx, s, rk, mk, true)
	}
	return cmd, acks
}

// waitWrite is write's path under WithWait.
func waitWrite[C redis.Cmder](ctx context.Context, s *Store, rk string, mk func(c redis.Cmdable, eval bool) C, eval bool) (C, *redis.IntCmd) {
	w := s.wait
	for attempt := 0; ; attempt++ {
		node := w.single
		if w.cluster != nil {
			var err error
			if node, err = w.cluster.MasterForKey(ctx, rk); err != nil {
				// Build the command without sending it, to carry
				// the error.
				cmd := mk(s.client.Pipeline(), eval)
				cmd.SetErr(err)
				return cmd, nil
			}
		}
		var cmd C
		acks := redis.NewIntCmd(ctx, "wait", w.replicas, w.timeout.Milliseconds())
		_, _ = node.Pipelined(ctx, func(p redis.Pipeliner) error {
			cmd = mk(p, eval)
			return p.Process(ctx, acks)
		})
		if w.cluster != nil && attempt == 0 && isRedirect(cmd.Err()) {
			// The slot moved: learn the new layout and try again.
			w.cluster.ReloadState(ctx)
			continue
		}
		return cmd, acks
	}
}

// isRedirect reports whether err is a cluster's MOVED or ASK reply.
func isRedirect(err error) bool {
	if _, ok := redis.IsMovedError(err); ok {
		return true
	}
	_, ok := redis.IsAskError(err)
	return ok
}

// checkAcks checks the reply of the WAIT that followed a write (nil
// without WithWait).
func (s *Store) checkAcks(ctx context.Context, op string, acks *redis.IntCmd) error {
	if acks == nil {
		return nil
	}
	n, err := acks.Result()
	if err != nil {
		return fail(ctx, op, err)
	}
	if n < int64(s.wait.replicas) {
		return fmt.Errorf("redisstore: %s: %w: %d of %d within %v: %w", op, ErrNotReplicated, n, s.wait.replicas, s.wait.timeout, stores.ErrUnavailable)
	}
	return nil
}
