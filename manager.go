package ginsession

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/memory"
)

// Manager runs the session lifecycle on a store: creation, lookup, atomic
// updates, sliding (idle) and absolute expiry, rotation and deletion. It is
// independent of HTTP; the Gin glue (New, Login, Logout, Rotate, Required)
// is built on it.
//
// A Manager is safe for concurrent use. Create one per application with
// NewManager and share it; call Close when done.
type Manager struct {
	store     stores.Store
	ownsStore bool
	cfg       config
	now       func() time.Time
	hash      hasher
	cookie    cookieCodec

	stats struct {
		malformed, unknown, storeErrors, refreshes atomic.Uint64
	}

	closeOnce sync.Once
	closeErr  error
}

// NewManager returns a Manager storing sessions in store. A nil store means
// a new memory store (package stores/memory), which the Manager then owns
// and closes in Close.
//
// NewManager panics if the options are invalid (a non-positive timeout, a
// __Host- cookie name without Secure, ...), with a message naming the
// option: such a configuration is a programming error, best caught at
// start-up.
func NewManager(store stores.Store, opts ...Option) *Manager {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if _, set := cfg.setBy["refresh"]; !set {
		cfg.refresh = min(DefaultRefreshInterval, cfg.idle/10)
	}
	if err := cfg.validate(); err != nil {
		panic("ginsession.NewManager: " + err.Error())
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if cfg.errorHandler == nil {
		cfg.errorHandler = defaultErrorHandler(cfg.logger)
	}
	m := &Manager{store: store, cfg: cfg, now: cfg.now, hash: newHasher(cfg.hashKey)}
	if store == nil {
		m.store = memory.New(memory.WithClock(cfg.now))
		m.ownsStore = true
	}
	m.cookie = newCookieCodec(&cfg)
	return m
}

// Store returns the Manager's store.
func (m *Manager) Store() stores.Store { return m.store }

// Close releases the Manager's resources. It closes the store if NewManager
// created it (a nil store was given); a store passed in by the caller stays
// open, to be closed by its owner. Close is idempotent.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		if m.ownsStore {
			m.closeErr = m.store.Close()
		}
	})
	return m.closeErr
}

// Stats are counters of what the Manager has seen since it was created.
type Stats struct {
	// Malformed counts session cookies that were not well-formed IDs
	// (junk, probing, truncation). They never reach the store.
	Malformed uint64
	// Unknown counts well-formed IDs that the store did not know, or knew
	// only as expired.
	Unknown uint64
	// StoreErrors counts store failures met while loading sessions.
	StoreErrors uint64
	// Refreshes counts idle-deadline extensions written by the middleware.
	Refreshes uint64
}

// Stats returns a snapshot of the Manager's counters.
func (m *Manager) Stats() Stats {
	return Stats{
		Malformed:   m.stats.malformed.Load(),
		Unknown:     m.stats.unknown.Load(),
		StoreErrors: m.stats.storeErrors.Load(),
		Refreshes:   m.stats.refreshes.Load(),
	}
}

// idleDeadline returns the idle deadline of a session active at now.
// It is a full idle timeout away, but never past the absolute deadline abs.
func (m *Manager) idleDeadline(now, abs time.Time) time.Time {
	d := now.Add(m.cfg.idle)
	if d.After(abs) {
		return abs
	}
	return d
}

// CreateSession creates a session for userID (which may be empty for an
// anonymous session) holding a copy of data, and returns it. The data's
// values must be of the types listed in stores.CheckValue; otherwise
// CreateSession returns a *stores.UnsupportedTypeError and creates nothing.
// With WithCreateLimiter, it returns a *RateLimitError (matching
// ErrRateLimited) when userID has created too many sessions.
//
// A session with a user ID is also recorded in the user's index, so that
// ListUserSessions and DeleteUserSessions can find it; past
// WithMaxSessionsPerUser sessions, the user's oldest session ends.
//
// CreateSession does not set a cookie; in a Gin handler use Login, which
// also ends the session the request already carried.
func (m *Manager) CreateSession(ctx context.Context, userID string, data map[string]any) (*Session, error) {
	now := m.now()
	if err := m.limit(ctx, userID, now); err != nil {
		return nil, err
	}
	clean, err := stores.MergeData(nil, data)
	if err != nil {
		return nil, fmt.Errorf("ginsession: create session: %w", err)
	}
	now = now.Round(0)
	rec := &stores.Record{
		UserID:         userID,
		Handle:         uuid.NewString(),
		Data:           clean,
		CreatedAt:      now,
		AbsoluteExpiry: now.Add(m.cfg.absolute),
		RenewedAt:      now,
	}
	exp := m.idleDeadline(now, rec.AbsoluteExpiry)
	id, key, err := m.add(ctx, rec, exp)
	if err != nil {
		return nil, fmt.Errorf("ginsession: create session: %w", err)
	}
	return newSession(id, key, rec, exp), nil
}

// add stores rec under a fresh ID, registered in its user's index first,
// and returns the ID and its key. Add fails with ErrExists only when a
// concurrent revocation left a tombstone on the key just registered (or on
// a 256-bit collision, which does not happen in practice); a retry under a
// new ID is then correct.
func (m *Manager) add(ctx context.Context, rec *stores.Record, expiresAt time.Time) (string, stores.Key, error) {
	for range 3 {
		id := newID()
		key := m.hash.key(id)
		if rec.UserID != "" {
			dropped, err := m.register(ctx, rec.UserID, stores.SessionRef{
				Key: key, Handle: rec.Handle, CreatedAt: rec.CreatedAt, AbsoluteExpiry: rec.AbsoluteExpiry,
			})
			if err != nil {
				return "", stores.Key{}, err
			}
			for _, d := range dropped {
				if err := m.kill(ctx, d.Key); err != nil {
					return "", stores.Key{}, err
				}
			}
		}
		err := m.store.Add(ctx, key, rec, expiresAt)
		if errors.Is(err, stores.ErrExists) {
			continue
		}
		return id, key, err
	}
	return "", stores.Key{}, stores.ErrExists
}

// GetSession returns the live session with the given ID. It returns an
// error matching ErrNotFound when the ID is malformed, unknown, deleted, or
// past its idle or absolute deadline, and a wrapped store error (for
// example matching stores.ErrUnavailable) when the store fails. GetSession
// does not extend the idle deadline; see RefreshSession.
func (m *Manager) GetSession(ctx context.Context, id string) (*Session, error) {
	return m.load(ctx, id, m.now())
}

// load looks up the session live at now; the Session keeps the store item
// it was read from. An ID rotated away within the grace period
// (WithRotationGrace) resolves to its successor; the Session then keeps the
// ID it was asked for, with the successor's key.
func (m *Manager) load(ctx context.Context, id string, now time.Time) (*Session, error) {
	if !wellFormed(id) {
		return nil, ErrNotFound
	}
	key := m.hash.key(id)
	item, err := m.store.Get(ctx, key)
	forwarded := false
	if err == nil && item.Record.Successor != (stores.Key{}) {
		key, forwarded = item.Record.Successor, true
		item, err = m.store.Get(ctx, key)
	}
	if err != nil {
		if errors.Is(err, stores.ErrNotFound) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("ginsession: load session: %w", err)
	}
	if !now.Before(item.Record.AbsoluteExpiry) {
		// Past its absolute deadline (or a tombstone, whose deadline is
		// zero): gone. The store expires it soon anyway, so removing it
		// here is only tidying and its failure is not reported.
		if item.Record.Handle != "" {
			_ = m.store.Delete(ctx, key)
		}
		return nil, ErrNotFound
	}
	s := newSession(id, key, item.Record, item.ExpiresAt)
	s.forwarded, s.item = forwarded, item
	return s, nil
}

// errExpired aborts an update of a session past its absolute deadline.
var errExpired = errors.New("ginsession: session expired")

// forwardError aborts an update that met a grace-period stub; the update is
// retried on the successor.
type forwardError struct{ to stores.Key }

func (e *forwardError) Error() string { return "ginsession: session rotated" }

// UpdateSession merges data into the session's stored data, atomically: a
// nil value removes its key, any other value sets it, and keys not named
// are kept. Two concurrent updates of different keys both keep their
// writes. The update counts as activity and extends the idle deadline.
//
// It returns an error matching ErrNotFound if the session does not exist
// (an update never brings a deleted session back), a
// *stores.UnsupportedTypeError for an unsupported value, ErrTooLarge when
// the store's size limit is exceeded, and ErrConflict if the store could
// not apply the change within its retry bound. On error nothing is written.
//
// Inside a Gin handler, pass the *gin.Context as ctx (or use Update): when
// ctx holds the request's session under SessionKey, stores that support it
// (memcached) write with a single compare-and-swap against the version the
// middleware read, instead of reading the session again.
func (m *Manager) UpdateSession(ctx context.Context, id string, data map[string]any) error {
	if !wellFormed(id) {
		return ErrNotFound
	}
	var from *Session
	if s, ok := ctx.Value(SessionKey).(*Session); ok && s != nil && s.ID == id {
		from = s
	}
	_, err := m.update(ctx, m.hash.key(id), from, data)
	return err
}

// update merges data into the session under key; from, if not nil, is the
// session as loaded for this request.
func (m *Manager) update(ctx context.Context, key stores.Key, from *Session, data map[string]any) (*Session, error) {
	// Validate and copy the caller's values once, outside the store's
	// critical section or retry loop.
	set, err := stores.MergeData(nil, data)
	if err != nil {
		return nil, fmt.Errorf("ginsession: update session: %w", err)
	}
	var unset []string
	for k, v := range data {
		if v == nil {
			unset = append(unset, k)
		}
	}
	var cur *stores.Item
	if from != nil && !from.forwarded && from.key == key {
		cur = &from.item
	}
	return m.updateKey(ctx, key, cur, func(now time.Time, cur *stores.Record) *stores.Record {
		next := *cur
		next.Data = make(map[string]any, len(cur.Data)+len(set))
		maps.Copy(next.Data, cur.Data)
		for _, k := range unset {
			delete(next.Data, k)
		}
		maps.Copy(next.Data, set)
		return &next
	})
}

// updateKey applies change to the live session under key, following a
// grace-period stub to its successor, and extends the idle deadline. from,
// if not nil, is the item as read earlier, for stores.UpdaterFrom. It
// returns the session as written, without its ID.
func (m *Manager) updateKey(ctx context.Context, key stores.Key, from *stores.Item, change func(now time.Time, cur *stores.Record) *stores.Record) (*Session, error) {
	var written *stores.Record
	var writtenExp time.Time
	for range 2 {
		fn := func(cur stores.Item) (*stores.Record, time.Time, error) {
			if cur.Record.Successor != (stores.Key{}) {
				return nil, time.Time{}, &forwardError{to: cur.Record.Successor}
			}
			now := m.now()
			if !now.Before(cur.Record.AbsoluteExpiry) {
				return nil, time.Time{}, errExpired
			}
			next := change(now, cur.Record)
			written, writtenExp = next, m.idleDeadline(now, next.AbsoluteExpiry)
			return written, writtenExp, nil
		}
		var err error
		if uf, ok := m.store.(stores.UpdaterFrom); ok && from != nil {
			err = uf.UpdateFrom(ctx, key, *from, fn)
		} else {
			err = m.store.Update(ctx, key, fn)
		}
		var fwd *forwardError
		if errors.As(err, &fwd) {
			key, from = fwd.to, nil
			continue
		}
		if err != nil {
			return nil, m.storeErr("update session", err)
		}
		return newSession("", key, written, writtenExp), nil
	}
	return nil, ErrNotFound
}

// storeErr maps a store error to the Manager's documented errors.
func (m *Manager) storeErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, stores.ErrNotFound), errors.Is(err, errExpired):
		return ErrNotFound
	default:
		return fmt.Errorf("ginsession: %s: %w", op, err)
	}
}

// DeleteSession deletes the session with the given ID. Deleting a missing,
// expired or malformed ID is not an error, so DeleteSession is idempotent.
// An ID rotated away within the grace period ends its successor too.
func (m *Manager) DeleteSession(ctx context.Context, id string) error {
	if !wellFormed(id) {
		return nil
	}
	return m.deleteKey(ctx, m.hash.key(id))
}

func (m *Manager) deleteKey(ctx context.Context, key stores.Key) error {
	if m.cfg.grace <= 0 {
		return m.storeErr("delete session", m.store.Delete(ctx, key))
	}
	// With a grace period the ID may be a stub: take it and its successor.
	var next stores.Key
	err := m.store.Update(ctx, key, func(cur stores.Item) (*stores.Record, time.Time, error) {
		next = cur.Record.Successor
		return nil, time.Time{}, nil
	})
	if err == nil && next != (stores.Key{}) {
		err = m.store.Delete(ctx, next)
	}
	if errors.Is(err, stores.ErrNotFound) {
		err = nil
	}
	return m.storeErr("delete session", err)
}

// RefreshSession extends the session's idle deadline to a full idle
// timeout from now, never past its absolute deadline, without rewriting
// its data. It returns an error matching ErrNotFound if the session does
// not exist. The middleware refreshes sessions automatically (see
// WithRefreshInterval); call RefreshSession for activity that does not
// pass through it.
func (m *Manager) RefreshSession(ctx context.Context, id string) error {
	now := m.now()
	s, err := m.load(ctx, id, now)
	if err != nil {
		return err
	}
	return m.storeErr("refresh session", m.store.Touch(ctx, s.key, m.idleDeadline(now, s.AbsoluteExpiresAt)))
}

// RotateSession replaces the session's ID with a fresh one and returns the
// session under its new ID. User, data, handle, creation time and absolute
// deadline are kept; the old ID stops working at once, or after the grace
// period set by WithRotationGrace. Rotate the ID when privileges change
// (login, logout of an elevated role, password change) to defeat session
// fixation; see
// https://cheatsheetseries.owasp.org/cheatsheets/Session_Management_Cheat_Sheet.html#renew-the-session-id-after-any-privilege-level-change
//
// In a Gin handler use Rotate, which also sets the new cookie.
func (m *Manager) RotateSession(ctx context.Context, id string) (*Session, error) {
	if !wellFormed(id) {
		return nil, ErrNotFound
	}
	return m.rotateKey(ctx, m.hash.key(id))
}

func (m *Manager) rotateKey(ctx context.Context, oldKey stores.Key) (*Session, error) {
	newID := newID()
	newKey := m.hash.key(newID)
	// Take the record and retire the old ID in one atomic step, so an
	// update racing with the rotation cannot land on the old ID and be lost.
	var rec *stores.Record
	err := m.store.Update(ctx, oldKey, func(cur stores.Item) (*stores.Record, time.Time, error) {
		if cur.Record.Successor != (stores.Key{}) {
			return nil, time.Time{}, errExpired // already rotated: use the new ID
		}
		now := m.now()
		if !now.Before(cur.Record.AbsoluteExpiry) {
			return nil, time.Time{}, errExpired
		}
		rec = cur.Record
		if m.cfg.grace <= 0 {
			return nil, time.Time{}, nil
		}
		stub := &stores.Record{UserID: rec.UserID, AbsoluteExpiry: rec.AbsoluteExpiry, Successor: newKey}
		return stub, minTime(now.Add(m.cfg.grace), rec.AbsoluteExpiry), nil
	})
	if err != nil {
		return nil, m.storeErr("rotate session", err)
	}
	now := m.now().Round(0)
	next := *rec
	next.RenewedAt = now
	exp := m.idleDeadline(now, next.AbsoluteExpiry)
	if err := m.store.Add(ctx, newKey, &next, exp); err != nil {
		// Put the session back under its old ID rather than lose it.
		if rerr := m.restore(ctx, oldKey, rec, exp); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, fmt.Errorf("ginsession: rotate session: %w", err)
	}
	if next.UserID != "" {
		if err := m.replaceRef(ctx, next.UserID, next.Handle, newKey); err != nil {
			return nil, fmt.Errorf("ginsession: rotate session: %w", err)
		}
	}
	return newSession(newID, newKey, &next, exp), nil
}

// restore puts rec back under key after a failed rotation.
func (m *Manager) restore(ctx context.Context, key stores.Key, rec *stores.Record, exp time.Time) error {
	err := m.store.Add(ctx, key, rec, exp)
	if errors.Is(err, stores.ErrExists) { // the grace stub: replace it
		err = m.store.Update(ctx, key, func(stores.Item) (*stores.Record, time.Time, error) { return rec, exp, nil })
	}
	return err
}

// Middleware returns the Gin middleware that loads each request's session.
// It is the same as New(m).
func (m *Manager) Middleware() gin.HandlerFunc { return New(m) }

// limit applies the creation limiter, if any.
func (m *Manager) limit(ctx context.Context, userID string, now time.Time) error {
	if m.cfg.limiter == nil {
		return nil
	}
	d, err := m.cfg.limiter.ReserveAtContext(ctx, userID, now)
	if err != nil {
		return fmt.Errorf("ginsession: create session: %w", err)
	}
	if !d.Allowed {
		return &RateLimitError{RetryAfter: d.RetryAfter}
	}
	return nil
}

func defaultErrorHandler(logger *slog.Logger) ErrorHandler {
	return func(c *gin.Context, err error) {
		if !errors.Is(err, context.Canceled) {
			logger.ErrorContext(c.Request.Context(), "ginsession: cannot load session",
				slog.String("method", c.Request.Method),
				slog.String("path", c.FullPath()),
				slog.Any("error", err))
		}
		c.AbortWithStatusJSON(503, gin.H{"error": "session store unavailable"})
	}
}
