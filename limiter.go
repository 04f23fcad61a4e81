package ginsession

import (
	"context"
	"fmt"
	"time"

	"github.com/securestack/ginsession/internal/limiter"
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

// limiterBackendRetry is the RetryAfter of a refusal caused by a backend
// error under FailClosed.
const limiterBackendRetry = time.Second

// The engine switches to buckets above limiter.ExactMax: this fails to
// compile unless that is LimiterExactMax, as documented.
var _ = [1]struct{}{}[LimiterExactMax-limiter.ExactMax]

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
	limit  int
	window time.Duration

	// table is the in-process table (internal/limiter); nil with a backend.
	table *limiter.Table

	backend     LimiterBackend
	backendMode FailMode
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
	if window > limiter.MaxWindow {
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
		window:      window,
		backend:     cfg.backend,
		backendMode: cfg.backendMode,
	}
	if l.backend == nil {
		l.table = limiter.New(limit, window, cfg.maxKeys, cfg.capMode == FailOpen)
	}
	return l
}

// Limit returns the most events the Limiter admits per key and window.
func (l *Limiter) Limit() int { return l.limit }

// Window returns the Limiter's window.
func (l *Limiter) Window() time.Duration { return l.window }

// Len returns the number of keys the in-process table tracks, including
// idle keys not yet dropped. It is zero with a backend.
func (l *Limiter) Len() int {
	if l.table == nil {
		return 0
	}
	return l.table.Len()
}

// Allow is shorthand for AllowAt(key, time.Now()).
func (l *Limiter) Allow(key string) bool {
	return l.AllowAt(key, time.Now())
}

// AllowAt reports whether an event for key at now is admitted, and records
// it if so. With the in-process table it does not allocate, except to
// start tracking a new key.
func (l *Limiter) AllowAt(key string, now time.Time) bool {
	if l.table == nil {
		return l.ReserveAt(key, now).Allowed
	}
	return l.table.Allow(key, now)
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
	if l.table == nil {
		d, _ := l.ReserveAtContext(context.Background(), key, now)
		return d
	}
	return l.table.Reserve(key, now)
}

// ReserveAtContext is ReserveAt for a backend that does I/O: ctx bounds
// the backend's work, and a backend error is returned as a *LimiterError
// together with the decision taken under the backend fail mode
// (WithBackendFailMode). With the in-process table it ignores ctx and
// never fails.
func (l *Limiter) ReserveAtContext(ctx context.Context, key string, now time.Time) (Decision, error) {
	if l.table != nil {
		return l.table.Reserve(key, now), nil
	}
	d, err := l.backend.Admit(ctx, key, l.limit, l.window, now)
	if err == nil {
		return d, nil
	}
	if l.backendMode == FailOpen {
		return Decision{Allowed: true}, &LimiterError{Err: err, Allowed: true}
	}
	return Decision{RetryAfter: limiterBackendRetry, ResetAfter: limiterBackendRetry}, &LimiterError{Err: err}
}
