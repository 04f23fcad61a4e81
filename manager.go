package ginsession

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/memory"
)

// Manager runs the session lifecycle on a store: creation, lookup, atomic
// updates, sliding (idle) and absolute expiry, rotation and deletion, and
// the index of each user's sessions. It is independent of HTTP; the Gin
// glue (New, Login, Logout, Rotate, Update, Required, CSRF) is built on it.
//
// A Manager is safe for concurrent use. Create one per application with
// NewManager and share it; call Close when done.
type Manager struct {
	store     stores.Store
	ownsStore bool
	cfg       config
	now       func() time.Time
	loc       *time.Location // of the clock, for the times of Sessions
	hash      hasher
	cookie    cookieCodec
	// inContext is set when the store can update from an item read
	// earlier (stores.UpdaterFrom): the middleware then also binds the
	// session to the request's context, so that UpdateSession called with
	// c.Request.Context() writes with a single compare-and-swap.
	inContext bool
	// concurrent is set for stores reached over the network: a creation
	// then writes the user index and the session at the same time, one
	// round trip instead of two (see add). The memory store, where a
	// write costs less than starting a goroutine, writes them in turn.
	concurrent bool

	stats struct {
		malformed, unknown, storeErrors, refreshes atomic.Uint64
	}
	failures failureLog
	hints    indexHints

	closeOnce sync.Once
	closeErr  error
}

// NewManager returns a Manager storing sessions in store. A nil store means
// a new memory store (package stores/memory), which the Manager then owns
// and closes in Close.
//
// NewManager panics if the options are invalid (a non-positive or huge
// timeout, a __Host- cookie name without Secure, ...), with a message
// naming the option: such a configuration is a programming error, best
// caught at start-up.
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
	m := &Manager{store: store, cfg: cfg, now: cfg.now, loc: cfg.now().Location(), hash: newHasher(cfg.hashKey)}
	if store == nil {
		m.store = memory.New(memory.WithClock(cfg.now))
		m.ownsStore = true
	}
	_, m.inContext = m.store.(stores.UpdaterFrom)
	_, local := m.store.(*memory.Store)
	m.concurrent = !local
	if m.cfg.errorHandler == nil {
		m.cfg.errorHandler = m.defaultErrorHandler
	}
	m.cookie = newCookieCodec(&m.cfg)
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
	// StoreErrors counts store failures met while loading sessions, each
	// one exactly, however few of them were logged (see WithLogger).
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
// It is a full idle timeout away, but never past the absolute deadline abs
// (Unix nanoseconds).
func (m *Manager) idleDeadline(now time.Time, abs int64) time.Time {
	return minTime(now.Add(m.cfg.idle), time.Unix(0, abs))
}

// alive reports whether rec is before its absolute deadline at now.
func alive(rec *stores.Record, now time.Time) bool {
	return now.UnixNano() < rec.AbsoluteExpiry
}

// CreateSession creates a session for userID (which may be empty for an
// anonymous session) holding a copy of data, and returns it. The data's
// values must be of the types listed in stores.CheckValue; otherwise
// CreateSession returns a *stores.UnsupportedTypeError and creates nothing.
// With WithCreateLimiter, it returns a *RateLimitError (matching
// ErrRateLimited) when userID has created too many sessions; anonymous
// sessions created here all share the quota of the empty user ID (Login
// limits them per client IP instead).
//
// A session with a user ID is also recorded in the user's index, so that
// ListUserSessions and DeleteUserSessions can find it. Once the session is
// stored, if the user holds more than WithMaxSessionsPerUser live
// sessions, the oldest end. On error nothing has changed: no session was
// created and none ended.
//
// CreateSession does not set a cookie; in a Gin handler use Login, which
// also ends the session the request already carried.
func (m *Manager) CreateSession(ctx context.Context, userID string, data map[string]any) (*Session, error) {
	if err := m.limit(ctx, userID, m.now()); err != nil {
		return nil, err
	}
	return m.create(ctx, userID, data, false, "")
}

// create creates a session without consulting the creation limiter. The
// index entry with the handle replace, if not empty, is dropped as the new
// one is added (see register).
func (m *Manager) create(ctx context.Context, userID string, data map[string]any, persistent bool, replace string) (*Session, error) {
	clean, err := stores.MergeData(nil, data)
	if err != nil {
		return nil, fmt.Errorf("ginsession: create session: %w", err)
	}
	now := m.now()
	rec := &stores.Record{
		Kind:           stores.KindSession,
		UserID:         userID,
		Handle:         uuid.NewString(),
		Data:           clean,
		CreatedAt:      now.UnixNano(),
		AbsoluteExpiry: now.Add(m.cfg.absolute).UnixNano(),
		RenewedAt:      now.UnixNano(),
		Persistent:     persistent,
	}
	_, _ = rand.Read(rec.Secret[:]) // crypto/rand.Read never returns an error
	exp := m.idleDeadline(now, rec.AbsoluteExpiry)
	id, key, err := m.add(ctx, rec, exp, replace)
	if err != nil {
		return nil, fmt.Errorf("ginsession: create session: %w", err)
	}
	return m.session(id, key, stores.Item{Record: rec, ExpiresAt: exp}), nil
}

// add stores rec under a fresh ID, registered in its user's index, and
// returns the ID and its key.
//
// The index entry and the session are written before add returns, so a
// revocation (DeleteUserSessions) that starts after a creation finishes
// finds the session. They are written at the same time on network stores
// (m.concurrent), in one round trip: the ID is known to no one until add
// returns, so a session stored while its entry is not yet is unusable, and
// a creation that fails leaves at worst such an unreachable record. A
// revocation racing the creation either misses the entry (the creation
// then counts as after it, and the session is listed for the next one) or
// takes it and leaves a tombstone on its key, which makes the store's Add
// fail with ErrExists (as does a 256-bit collision, which does not happen
// in practice): a retry under a new ID, registered after the revocation,
// is then correct.
func (m *Manager) add(ctx context.Context, rec *stores.Record, expiresAt time.Time, replace string) (string, stores.Key, error) {
	for range 3 {
		id, key := m.newToken()
		if rec.UserID == "" {
			err := m.store.Add(ctx, key, rec, expiresAt)
			if errors.Is(err, stores.ErrExists) {
				continue
			}
			return id, key, err
		}
		ref := stores.SessionRef{
			Key: key, Handle: rec.Handle, CreatedAt: rec.CreatedAt,
			ExpiresAt: expiresAt.UnixNano(), AbsoluteExpiry: rec.AbsoluteExpiry,
		}
		var refs []stores.SessionRef
		var regErr, addErr error
		if m.concurrent {
			var wg sync.WaitGroup
			wg.Go(func() { refs, regErr = m.register(ctx, rec.UserID, ref, replace) })
			addErr = m.store.Add(ctx, key, rec, expiresAt)
			wg.Wait()
		} else {
			refs, regErr = m.register(ctx, rec.UserID, ref, replace)
			if regErr == nil {
				addErr = m.store.Add(ctx, key, rec, expiresAt)
			}
		}
		if regErr != nil {
			if addErr == nil && m.concurrent {
				_ = m.store.Delete(ctx, key) // tidying: no one knows the ID
			}
			return "", stores.Key{}, regErr
		}
		replace = "" // done
		if errors.Is(addErr, stores.ErrExists) {
			continue
		}
		if addErr != nil {
			// Leave the index as it was; a failure here only leaves an
			// entry for a session that does not exist, which the index
			// drops when it next checks its entries.
			_, _ = m.takeRefs(ctx, rec.UserID, func(r stores.SessionRef) bool { return r.Key == key })
			return "", stores.Key{}, addErr
		}
		if len(refs) > m.cfg.maxPerUser {
			// The new session is stored; ending the oldest is best
			// effort here, and retried by the next creation if it fails.
			_ = m.enforceCap(ctx, rec.UserID, key, refs)
		}
		return id, key, nil
	}
	return "", stores.Key{}, stores.ErrExists
}

// Replace is the Manager half of Login, for integrations other than the
// Gin helpers: it ends old (a session loaded during this request, or nil)
// and creates a session for userID holding data, with Login's options
// (RememberMe). The creation limiter (WithCreateLimiter) is asked first,
// keyed by userID, so a refused Replace returns a *RateLimitError and
// changes nothing. When old belongs to the same user, its entry in the
// user's index is replaced in the same write as the new one is added, and
// never counts against WithMaxSessionsPerUser. If the creation fails after
// old was deleted, old stays deleted: the caller should clear its cookie.
func (m *Manager) Replace(ctx context.Context, old *Session, userID string, data map[string]any, opts ...LoginOption) (*Session, error) {
	s, _, err := m.replace(ctx, old, userID, userID, data, opts)
	return s, err
}

// replace is Replace with the limiter keyed by limitKey. It reports
// whether old was deleted.
func (m *Manager) replace(ctx context.Context, old *Session, limitKey, userID string, data map[string]any, opts []LoginOption) (*Session, bool, error) {
	var cfg loginConfig
	for _, o := range opts {
		o(&cfg)
	}
	if err := m.limit(ctx, limitKey, m.now()); err != nil {
		return nil, false, err
	}
	replace := "" // the index entry the new session takes over
	if old != nil {
		same := userID != "" && old.UserID == userID
		if err := m.deleteKey(ctx, old.key, &old.item, !same); err != nil {
			return nil, false, err
		}
		if same {
			replace = old.Handle
		}
	}
	s, err := m.create(ctx, userID, data, cfg.remember, replace)
	if err != nil {
		if replace != "" {
			_, _ = m.takeRefs(ctx, userID, func(r stores.SessionRef) bool { return r.Handle == replace })
		}
		return nil, old != nil, err
	}
	return s, old != nil, nil
}

// GetSession returns the live session with the given ID. It returns an
// error matching ErrNotFound when the ID is malformed, unknown, deleted, or
// past its idle or absolute deadline, and a wrapped store error (for
// example matching stores.ErrUnavailable) when the store fails. An ID
// rotated away within the grace period (WithRotationGrace) resolves to the
// session's current state. GetSession does not extend the idle deadline;
// see RefreshSession.
func (m *Manager) GetSession(ctx context.Context, id string) (*Session, error) {
	key, ok := m.parseToken(id)
	if !ok {
		return nil, ErrNotFound
	}
	return m.load(ctx, id, key, m.now())
}

// maxForwards bounds how many grace-period stubs a lookup follows. A
// rotation points every live stub of the session at its new key, so one is
// the rule and two happen only while a rotation is in progress.
const maxForwards = 3

// load looks up the session live at now; the Session keeps the store item
// it was read from. An ID rotated away within the grace period resolves to
// the live session; the Session then keeps the ID it was asked for, with
// the live session's key.
func (m *Manager) load(ctx context.Context, id string, key stores.Key, now time.Time) (*Session, error) {
	item, err := m.store.Get(ctx, key)
	forwarded := false
	for hops := 0; err == nil && item.Record.Kind == stores.KindForward; hops++ {
		if hops == maxForwards {
			return nil, ErrNotFound
		}
		key, forwarded = item.Record.Successor, true
		item, err = m.store.Get(ctx, key)
	}
	if err != nil {
		if errors.Is(err, stores.ErrNotFound) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("ginsession: load session: %w", err)
	}
	if item.Record.Kind != stores.KindSession {
		return nil, ErrNotFound // a tombstone
	}
	if !alive(item.Record, now) {
		// Past its absolute deadline: gone. The store expires it soon
		// anyway, so removing it here is only tidying and its failure is
		// not reported.
		_ = m.store.Delete(ctx, key)
		return nil, ErrNotFound
	}
	s := m.session(id, key, item)
	s.forwarded = forwarded
	return s, nil
}

// Resume loads the session with the given ID for a request, as the
// middleware does, and maintains it: it rotates the ID when the session is
// due for renewal (WithRenewalInterval), or extends the idle deadline when
// that has gone stale by the refresh interval (WithRefreshInterval). It
// costs one store read when neither is due, which is most requests.
//
// A renewed session comes back under its new ID: when the returned ID
// differs from id, the caller must send the new cookie. Resume returns an
// error matching ErrNotFound for a malformed, unknown or expired ID, and a
// wrapped store error when the store fails; Stats counts each of these.
// The middleware is built on Resume, and so can other integrations, such
// as an adapter for another session API.
func (m *Manager) Resume(ctx context.Context, id string) (*Session, error) {
	key, ok := m.parseToken(id)
	if !ok {
		m.stats.malformed.Add(1)
		return nil, ErrNotFound
	}
	return m.resumeKey(ctx, id, key, m.now())
}

// resumeKey is Resume at now of a token already parsed into its store key.
func (m *Manager) resumeKey(ctx context.Context, id string, key stores.Key, now time.Time) (*Session, error) {
	s, err := m.resume(ctx, id, key, now)
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		m.stats.unknown.Add(1)
	default:
		m.stats.storeErrors.Add(1)
	}
	return s, err
}

// resume is Resume at now, without the counting.
func (m *Manager) resume(ctx context.Context, id string, key stores.Key, now time.Time) (*Session, error) {
	s, err := m.load(ctx, id, key, now)
	if err != nil {
		return nil, err
	}
	if m.cfg.renewal > 0 && !s.forwarded && now.Sub(s.renewedAt) >= m.cfg.renewal {
		r, err := m.rotate(ctx, s.key, &s.item, false)
		var rot *rotatedError
		switch {
		case errors.As(err, &rot):
			// A concurrent request renewed it first; this one goes on
			// with the previous ID, which the grace period keeps working.
			return s, nil
		case err != nil:
			return nil, err
		}
		return r, nil
	}
	next := m.idleDeadline(now, s.AbsoluteExpiresAt.UnixNano())
	if next.Sub(s.item.ExpiresAt) < max(m.cfg.refresh, 1) {
		return s, nil
	}
	if err := m.store.Touch(ctx, s.key, next); err != nil {
		return nil, m.storeErr("refresh session", err)
	}
	m.stats.refreshes.Add(1)
	s.ExpiresAt = next
	return s, nil
}

// Sentinel errors of update functions, never returned to callers as such.
var (
	// errExpired aborts a write to a session past its absolute deadline.
	errExpired = errors.New("ginsession: session expired")
	// errGone aborts a write that found another record than a session.
	errGone = errors.New("ginsession: session gone")
	// errChanged aborts the retirement of a rotated-away key whose data
	// changed since the new key's record was copied from it.
	errChanged = errors.New("ginsession: session changed")
)

// forwardError aborts a write that met a grace-period stub; the write is
// retried on the successor.
type forwardError struct{ to stores.Key }

func (e *forwardError) Error() string { return "ginsession: session rotated" }

// rotatedError reports that a concurrent rotation retired the key first.
type rotatedError struct{ to stores.Key }

func (e *rotatedError) Error() string { return "ginsession: session rotated concurrently" }

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
// In a Gin handler, pass the request's context, c.Request.Context(), which
// keeps the request's cancellation: when it holds the session the
// middleware loaded for this ID, stores that support it (memcached) write
// with a single compare-and-swap against the version the middleware read,
// instead of reading the session again. Update(c, data) does the same.
func (m *Manager) UpdateSession(ctx context.Context, id string, data map[string]any) error {
	key, ok := m.parseToken(id)
	if !ok {
		return ErrNotFound
	}
	if s := sessionFromContext(ctx); s != nil && s.ID == id {
		_, err := m.update(ctx, s.key, &s.item, data)
		return err
	}
	_, err := m.update(ctx, key, nil, data)
	return err
}

// UpdateLoaded merges data into s, a session loaded during this request
// (by Resume, GetSession or the middleware), as UpdateSession does, and
// returns the session as written, under the same ID. Stores that support
// it (memcached, Redis) write with a single compare-and-swap against the
// version s was loaded at, and read the session again only if another
// writer changed it meanwhile; nothing is lost either way. In a Gin
// handler, Update(c, data) is the same.
func (m *Manager) UpdateLoaded(ctx context.Context, s *Session, data map[string]any) (*Session, error) {
	next, err := m.update(ctx, s.key, &s.item, data)
	if err != nil {
		return nil, err
	}
	next.ID, next.forwarded = s.ID, s.forwarded
	return next, nil
}

// edit applies change to s, a session loaded during this request, with the
// version it was loaded at (see UpdateLoaded). change may run more than
// once and must not modify cur.
func (m *Manager) edit(ctx context.Context, s *Session, change func(cur *stores.Record) *stores.Record) (*Session, error) {
	next, err := m.updateKey(ctx, s.key, &s.item, change)
	if err != nil {
		return nil, err
	}
	next.ID, next.forwarded = s.ID, s.forwarded
	return next, nil
}

// update merges data into the session under key; from, if not nil, is the
// item as loaded for this request.
func (m *Manager) update(ctx context.Context, key stores.Key, from *stores.Item, data map[string]any) (*Session, error) {
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
	return m.updateKey(ctx, key, from, func(cur *stores.Record) *stores.Record {
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

// updateKey applies change to the live session under key, following
// grace-period stubs to the live session, and extends the idle deadline.
// from, if not nil, is the item as read earlier, for stores.UpdaterFrom. It
// returns the session as written, without its ID.
func (m *Manager) updateKey(ctx context.Context, key stores.Key, from *stores.Item, change func(cur *stores.Record) *stores.Record) (*Session, error) {
	var written stores.Item
	for range maxForwards + 1 {
		err := m.updateItem(ctx, key, from, func(cur stores.Item) (*stores.Record, time.Time, error) {
			switch cur.Record.Kind {
			case stores.KindForward:
				return nil, time.Time{}, &forwardError{to: cur.Record.Successor}
			case stores.KindSession:
			default:
				return nil, time.Time{}, errGone
			}
			now := m.now()
			if !alive(cur.Record, now) {
				return nil, time.Time{}, errExpired
			}
			next := change(cur.Record)
			written = stores.Item{Record: next, ExpiresAt: m.idleDeadline(now, next.AbsoluteExpiry)}
			return next, written.ExpiresAt, nil
		})
		var fwd *forwardError
		if errors.As(err, &fwd) {
			key, from = fwd.to, nil
			continue
		}
		if err != nil {
			return nil, m.storeErr("update session", err)
		}
		return m.session("", key, written), nil
	}
	return nil, ErrNotFound
}

// updateItem runs the store's Update of key, from the item read earlier
// when there is one and the store can use it.
func (m *Manager) updateItem(ctx context.Context, key stores.Key, from *stores.Item, fn stores.UpdateFunc) error {
	if uf, ok := m.store.(stores.UpdaterFrom); ok && from != nil {
		return uf.UpdateFrom(ctx, key, *from, fn)
	}
	return m.store.Update(ctx, key, fn)
}

// storeErr maps a store error to the Manager's documented errors.
func (m *Manager) storeErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, stores.ErrNotFound), errors.Is(err, errExpired), errors.Is(err, errGone):
		return ErrNotFound
	default:
		return fmt.Errorf("ginsession: %s: %w", op, err)
	}
}

// DeleteSession deletes the session with the given ID and removes it from
// its user's index. Deleting a missing, expired or malformed ID is not an
// error, so DeleteSession is idempotent. An ID rotated away within the
// grace period ends the live session and every ID it had.
func (m *Manager) DeleteSession(ctx context.Context, id string) error {
	key, ok := m.parseToken(id)
	if !ok {
		return nil
	}
	return m.deleteKey(ctx, key, nil, true)
}

// DeleteLoaded deletes s, a session loaded during this request, as
// DeleteSession does, and removes it from its user's index. It writes from
// the version s was loaded at, which saves the read DeleteSession makes
// (one compare-and-swap on memcached and Redis). Deleting a session that is
// already gone is not an error.
func (m *Manager) DeleteLoaded(ctx context.Context, s *Session) error {
	return m.deleteKey(ctx, s.key, &s.item, true)
}

// deleteKey ends the session under key, following grace-period stubs to
// the live session. from, if not nil, is the item read earlier. With
// unindex, the session's entry leaves its user's index; Login leaves it
// for the registration of the session that replaces it to drop.
func (m *Manager) deleteKey(ctx context.Context, key stores.Key, from *stores.Item, unindex bool) error {
	var stubs []stores.Key // stubs met on the way, deleted at the end
	var ended *stores.Record
	err := errors.New("unreachable")
	for range maxForwards + 1 {
		err = m.updateItem(ctx, key, from, func(cur stores.Item) (*stores.Record, time.Time, error) {
			switch cur.Record.Kind {
			case stores.KindForward:
				return nil, time.Time{}, &forwardError{to: cur.Record.Successor}
			case stores.KindSession:
				ended = cur.Record
				return nil, time.Time{}, nil
			default:
				return nil, time.Time{}, errGone // a tombstone: leave it
			}
		})
		var fwd *forwardError
		if !errors.As(err, &fwd) {
			break
		}
		stubs = append(stubs, key)
		key, from = fwd.to, nil
	}
	if errors.Is(err, stores.ErrNotFound) || errors.Is(err, errGone) {
		err = nil
	}
	if err != nil {
		return m.storeErr("delete session", err)
	}
	if ended != nil {
		for _, f := range ended.Forwards {
			stubs = append(stubs, f.Key)
		}
		if ended.UserID != "" && unindex {
			// The session is gone; its index entry, if this fails, is
			// dropped when the index next checks its entries.
			_, _ = m.takeRefs(ctx, ended.UserID, func(r stores.SessionRef) bool { return r.Handle == ended.Handle })
		}
	}
	// The stubs forward to a deleted session and resolve to nothing; this
	// only frees them early.
	for _, k := range stubs {
		_ = m.store.Delete(ctx, k)
	}
	return nil
}

// RefreshSession extends the session's idle deadline to a full idle
// timeout from now, never past its absolute deadline, without rewriting
// its data. It returns an error matching ErrNotFound if the session does
// not exist. The middleware refreshes sessions automatically (see
// WithRefreshInterval); call RefreshSession for activity that does not
// pass through it.
func (m *Manager) RefreshSession(ctx context.Context, id string) error {
	key, ok := m.parseToken(id)
	if !ok {
		return ErrNotFound
	}
	now := m.now()
	s, err := m.load(ctx, id, key, now)
	if err != nil {
		return err
	}
	return m.storeErr("refresh session", m.store.Touch(ctx, s.key, m.idleDeadline(now, s.AbsoluteExpiresAt.UnixNano())))
}

// RotateSession replaces the session's ID with a fresh one and returns the
// session under its new ID. User, data, handle, CSRF token, creation time
// and absolute deadline are kept; the old ID stops working at once, or
// after the grace period set by WithRotationGrace. Rotate the ID when
// privileges change (login, logout of an elevated role, password change)
// to defeat session fixation; see
// https://cheatsheetseries.owasp.org/cheatsheets/Session_Management_Cheat_Sheet.html#renew-the-session-id-after-any-privilege-level-change
//
// Rotation is safe against concurrent revocation: a DeleteUserSessions or
// DeleteSessionByHandle that runs while the rotation is in progress ends
// the session under both IDs. On any other error the old ID keeps working.
//
// In a Gin handler use Rotate, which also sets the new cookie.
func (m *Manager) RotateSession(ctx context.Context, id string) (*Session, error) {
	key, ok := m.parseToken(id)
	if !ok {
		return nil, ErrNotFound
	}
	return m.rotate(ctx, key, nil, true)
}

// maxRotateAttempts bounds the retries of a rotation whose session keeps
// changing, or keeps being rotated by others, while it runs.
const maxRotateAttempts = 4

// rotate gives the session under key a new ID. from, if not nil, is its
// item as read earlier. A session rotated by someone else meanwhile is
// rotated again from its new key when follow is set; otherwise rotate
// returns a *rotatedError.
func (m *Manager) rotate(ctx context.Context, key stores.Key, from *stores.Item, follow bool) (*Session, error) {
	for range maxRotateAttempts {
		if from == nil {
			it, err := m.store.Get(ctx, key)
			if err != nil {
				return nil, m.storeErr("rotate session", err)
			}
			from = &it
		}
		switch from.Record.Kind {
		case stores.KindForward:
			key, from = from.Record.Successor, nil
			continue
		case stores.KindSession:
		default:
			return nil, ErrNotFound
		}
		s, err := m.rotateFrom(ctx, key, *from)
		var rot *rotatedError
		if follow && errors.As(err, &rot) {
			key, from = rot.to, nil
			continue
		}
		return s, err
	}
	return nil, fmt.Errorf("ginsession: rotate session: %w", ErrConflict)
}

// rotateFrom moves the session cur, read under oldKey, to a new ID:
//
//  1. register the new key in the user's index entry, so that a
//     revocation from then on ends the session under either key;
//  2. store the session under the new key (a tombstone there means a
//     revocation took the entry: the session is ended);
//  3. retire the old key, atomically, if it still holds the session as
//     copied: delete it, or leave a grace-period stub;
//  4. point the older stubs at the new key, and the index entry too.
//
// If step 3 fails, the new key is deleted and the old one works on, unless
// the session was ended meanwhile. Steps 4 are tidying: a failure leaves a
// longer chain of stubs, or an index entry with the new key still pending,
// both of which are handled.
func (m *Manager) rotateFrom(ctx context.Context, oldKey stores.Key, cur stores.Item) (*Session, error) {
	rec := cur.Record
	now := m.now()
	if !alive(rec, now) {
		return nil, ErrNotFound
	}
	newID, newKey := m.newToken()
	next := *rec
	next.RenewedAt = now.UnixNano()
	next.Forwards = nil
	for _, f := range rec.Forwards {
		if now.UnixNano() < f.Until {
			next.Forwards = append(next.Forwards, f)
		}
	}
	var stub *stores.Record
	var stubExp time.Time
	if m.cfg.grace > 0 {
		stubExp = minTime(now.Add(m.cfg.grace), time.Unix(0, rec.AbsoluteExpiry))
		stub = &stores.Record{Kind: stores.KindForward, UserID: rec.UserID, AbsoluteExpiry: rec.AbsoluteExpiry, Successor: newKey}
		next.Forwards = append(next.Forwards, stores.Forward{Key: oldKey, Until: stubExp.UnixNano()})
	}
	exp := m.idleDeadline(now, next.AbsoluteExpiry)

	// 1. Register.
	if rec.UserID != "" {
		if err := m.addPending(ctx, rec.UserID, rec.Handle, newKey); err != nil {
			return nil, m.storeErr("rotate session", err)
		}
	}
	abandon := func() {
		_ = m.store.Delete(ctx, newKey)
		if rec.UserID != "" {
			_ = m.dropPending(ctx, rec.UserID, rec.Handle, newKey)
		}
	}
	// 2. Store under the new key.
	if err := m.store.Add(ctx, newKey, &next, exp); err != nil {
		if rec.UserID != "" {
			_ = m.dropPending(ctx, rec.UserID, rec.Handle, newKey)
		}
		if errors.Is(err, stores.ErrExists) {
			return nil, ErrNotFound // revoked while rotating
		}
		return nil, fmt.Errorf("ginsession: rotate session: %w", err)
	}
	// 3. Retire the old key.
	from := &cur
	var err error
	for range maxRotateAttempts {
		var fresh *stores.Record
		err = m.updateItem(ctx, oldKey, from, func(c stores.Item) (*stores.Record, time.Time, error) {
			r := c.Record
			switch {
			case r.Kind == stores.KindForward:
				return nil, time.Time{}, &rotatedError{to: r.Successor}
			case r.Kind != stores.KindSession || r.Handle != rec.Handle:
				return nil, time.Time{}, errGone
			case r != rec && !reflect.DeepEqual(r.Data, rec.Data):
				fresh = r
				return nil, time.Time{}, errChanged
			case stub == nil:
				return nil, time.Time{}, nil
			}
			return stub, stubExp, nil
		})
		if !errors.Is(err, errChanged) {
			break
		}
		// An update landed on the old key after the copy: carry it over
		// to the new key, which no one else knows yet, and try again.
		rec, from = fresh, nil
		err = m.store.Update(ctx, newKey, func(c stores.Item) (*stores.Record, time.Time, error) {
			n := *c.Record
			n.Data = fresh.Data
			return &n, c.ExpiresAt, nil
		})
		if err != nil {
			break
		}
		next.Data = fresh.Data
		err = errChanged
	}
	if err != nil {
		abandon()
		var rot *rotatedError
		if errors.As(err, &rot) {
			return nil, err
		}
		if errors.Is(err, errChanged) {
			return nil, fmt.Errorf("ginsession: rotate session: %w", ErrConflict)
		}
		return nil, m.storeErr("rotate session", err)
	}
	// 4. Tidy.
	for _, f := range next.Forwards {
		if f.Key == oldKey {
			continue
		}
		_ = m.store.Update(ctx, f.Key, func(c stores.Item) (*stores.Record, time.Time, error) {
			if c.Record.Kind != stores.KindForward {
				return nil, time.Time{}, errGone
			}
			s := *c.Record
			s.Successor = newKey
			return &s, c.ExpiresAt, nil
		})
	}
	if rec.UserID != "" {
		_ = m.commitPending(ctx, rec.UserID, rec.Handle, newKey, exp)
	}
	return m.session(newID, newKey, stores.Item{Record: &next, ExpiresAt: exp}), nil
}

// limit applies the creation limiter, if any, to key.
func (m *Manager) limit(ctx context.Context, key string, now time.Time) error {
	if m.cfg.limiter == nil {
		return nil
	}
	d, err := m.cfg.limiter.ReserveAtContext(ctx, key, now)
	if err != nil {
		return fmt.Errorf("ginsession: create session: %w", err)
	}
	if !d.Allowed {
		return &RateLimitError{RetryAfter: d.RetryAfter}
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
