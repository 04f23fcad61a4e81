package ginsession

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/securestack/ginsession/stores"
)

// DefaultMaxSessionsPerUser is the number of live sessions a user may hold
// when WithMaxSessionsPerUser is not given.
const DefaultMaxSessionsPerUser = 100

// tombstoneTTL is how long a revoked session's key stays blocked. It only
// needs to outlast a creation racing with the revocation (see kill).
const tombstoneTTL = 30 * time.Second

// SessionInfo describes one of a user's sessions without its bearer token,
// so it is safe to show in a page ("your devices").
type SessionInfo struct {
	// Handle is the session's public identifier; pass it to
	// DeleteSessionByHandle to end the session.
	Handle string
	// CreatedAt is when the session was created (login).
	CreatedAt time.Time
	// LastSeen is when the session was last active, accurate to the refresh
	// interval (WithRefreshInterval): the idle deadline is the only activity
	// record, which keeps reads free of writes.
	LastSeen time.Time
	// ExpiresAt is the session's current idle deadline.
	ExpiresAt time.Time
	// AbsoluteExpiresAt is the session's absolute deadline.
	AbsoluteExpiresAt time.Time
}

// userKey returns the store key of userID's index record. The "\x00user\x00"
// prefix keeps it apart from session keys, whose inputs are 43-character IDs.
func (m *Manager) userKey(userID string) stores.Key {
	return m.hash.key("\x00user\x00" + userID)
}

// register adds ref to userID's index record, creating the record if need
// be, and returns the references it dropped to respect the per-user limit
// (the oldest first).
func (m *Manager) register(ctx context.Context, userID string, ref stores.SessionRef) ([]stores.SessionRef, error) {
	ukey := m.userKey(userID)
	// Most logins find no index (a user with no live session): try to
	// create it first, which on memcached is one command.
	rec := indexRecord(userID, []stores.SessionRef{ref})
	err := m.store.Add(ctx, ukey, rec, rec.AbsoluteExpiry)
	if !errors.Is(err, stores.ErrExists) {
		return nil, err
	}
	var dropped []stores.SessionRef
	for range 8 {
		err := m.store.Update(ctx, ukey, func(cur stores.Item) (*stores.Record, time.Time, error) {
			now := m.now()
			refs := make([]stores.SessionRef, 0, len(cur.Record.Sessions)+1)
			for _, r := range cur.Record.Sessions {
				if now.Before(r.AbsoluteExpiry) {
					refs = append(refs, r)
				}
			}
			refs = append(refs, ref)
			dropped = nil
			if over := len(refs) - m.cfg.maxPerUser; over > 0 {
				dropped = slices.Clone(refs[:over])
				refs = refs[over:]
			}
			next := indexRecord(userID, refs)
			return next, next.AbsoluteExpiry, nil
		})
		if !errors.Is(err, stores.ErrNotFound) {
			return dropped, err
		}
		// The index expired or was removed since the Add: create it.
		err = m.store.Add(ctx, ukey, rec, rec.AbsoluteExpiry)
		if !errors.Is(err, stores.ErrExists) {
			return nil, err
		}
	}
	return nil, stores.ErrConflict
}

// indexRecord builds a user's index record; it lives as long as the
// longest-lived of its sessions.
func indexRecord(userID string, refs []stores.SessionRef) *stores.Record {
	rec := &stores.Record{UserID: userID, Sessions: refs}
	for _, r := range refs {
		if r.AbsoluteExpiry.After(rec.AbsoluteExpiry) {
			rec.AbsoluteExpiry = r.AbsoluteExpiry
		}
	}
	return rec
}

// kill ends the session stored under key for good. A plain delete could be
// undone by a creation that registered the key in the user's index just
// before a revocation read it but has not yet added the session: the add
// would land after the delete. So kill first adds a tombstone, which makes
// such an add fail (the creation then retries under a new ID, registered
// after the revocation); if the session exists, it deletes it.
func (m *Manager) kill(ctx context.Context, key stores.Key) error {
	err := m.store.Add(ctx, key, &stores.Record{}, m.now().Add(tombstoneTTL))
	if errors.Is(err, stores.ErrExists) {
		err = m.store.Delete(ctx, key)
	}
	return err
}

// DeleteUserSessions ends every session of userID ("log out everywhere"),
// for example after a password change or when an account is disabled.
// Sessions that requests are using at that moment stop working at once; an
// update in flight cannot bring one back.
//
// It reads and clears the user's index in one atomic step, then ends each
// listed session: one store operation per session (at most
// WithMaxSessionsPerUser), plus one. A per-user generation counter would
// make this one operation, but every request would then read a second key
// to compare generations; ginsession keeps reads at exactly one store
// lookup and pays on the rare revocation instead.
func (m *Manager) DeleteUserSessions(ctx context.Context, userID string) error {
	refs, err := m.takeRefs(ctx, userID, func(stores.SessionRef) bool { return true })
	if err != nil {
		return fmt.Errorf("ginsession: delete user sessions: %w", err)
	}
	var errs []error
	for _, r := range refs {
		if err := m.kill(ctx, r.Key); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ginsession: delete user sessions: %w", err)
	}
	return nil
}

// DeleteSessionByHandle ends the session of userID with the given public
// handle, as shown by ListUserSessions. It returns ErrNotFound if the user
// has no such session.
func (m *Manager) DeleteSessionByHandle(ctx context.Context, userID, handle string) error {
	refs, err := m.takeRefs(ctx, userID, func(r stores.SessionRef) bool { return r.Handle == handle })
	if err != nil {
		return fmt.Errorf("ginsession: delete session by handle: %w", err)
	}
	if len(refs) == 0 {
		return ErrNotFound
	}
	for _, r := range refs {
		if err := m.kill(ctx, r.Key); err != nil {
			return fmt.Errorf("ginsession: delete session by handle: %w", err)
		}
	}
	return nil
}

// takeRefs removes the references matching take from userID's index and
// returns them.
func (m *Manager) takeRefs(ctx context.Context, userID string, take func(stores.SessionRef) bool) ([]stores.SessionRef, error) {
	var taken []stores.SessionRef
	err := m.store.Update(ctx, m.userKey(userID), func(cur stores.Item) (*stores.Record, time.Time, error) {
		taken = nil
		var kept []stores.SessionRef
		for _, r := range cur.Record.Sessions {
			if take(r) {
				taken = append(taken, r)
			} else {
				kept = append(kept, r)
			}
		}
		next := indexRecord(cur.Record.UserID, kept)
		if next.AbsoluteExpiry.IsZero() {
			// An empty index lingers briefly; registrations reuse it.
			next.AbsoluteExpiry = m.now().Add(tombstoneTTL)
		}
		return next, next.AbsoluteExpiry, nil
	})
	if errors.Is(err, stores.ErrNotFound) {
		return nil, nil
	}
	return taken, err
}

// replaceRef points the index entry with the given handle at a new key,
// after a rotation. A missing index or entry is left alone.
func (m *Manager) replaceRef(ctx context.Context, userID, handle string, key stores.Key) error {
	err := m.store.Update(ctx, m.userKey(userID), func(cur stores.Item) (*stores.Record, time.Time, error) {
		refs := slices.Clone(cur.Record.Sessions)
		for i := range refs {
			if refs[i].Handle == handle {
				refs[i].Key = key
			}
		}
		next := indexRecord(cur.Record.UserID, refs)
		return next, next.AbsoluteExpiry, nil
	})
	if errors.Is(err, stores.ErrNotFound) {
		return nil
	}
	return err
}

// ListUserSessions returns userID's live sessions, oldest first, without
// their bearer tokens: show them on a "your devices" page and revoke one
// with DeleteSessionByHandle. It costs one store read per listed session.
func (m *Manager) ListUserSessions(ctx context.Context, userID string) ([]SessionInfo, error) {
	item, err := m.store.Get(ctx, m.userKey(userID))
	if errors.Is(err, stores.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ginsession: list user sessions: %w", err)
	}
	now := m.now()
	var out []SessionInfo
	for _, r := range item.Record.Sessions {
		it, err := m.store.Get(ctx, r.Key)
		if errors.Is(err, stores.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ginsession: list user sessions: %w", err)
		}
		rec := it.Record
		if !now.Before(rec.AbsoluteExpiry) || rec.Successor != (stores.Key{}) || rec.Handle != r.Handle {
			continue
		}
		exp := minTime(it.ExpiresAt, rec.AbsoluteExpiry)
		seen := exp.Add(-m.cfg.idle)
		if seen.Before(rec.CreatedAt) {
			seen = rec.CreatedAt
		}
		out = append(out, SessionInfo{
			Handle:            rec.Handle,
			CreatedAt:         rec.CreatedAt,
			LastSeen:          seen,
			ExpiresAt:         exp,
			AbsoluteExpiresAt: rec.AbsoluteExpiry,
		})
	}
	return out, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
