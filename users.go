package ginsession

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/securestack/ginsession/stores"
)

// DefaultMaxSessionsPerUser is the number of live sessions a user may hold
// when WithMaxSessionsPerUser is not given.
const DefaultMaxSessionsPerUser = 100

// tombstoneTTL is how long a revoked session's key stays blocked, and an
// emptied user index lingers. It only needs to outlast a creation or a
// rotation racing with the revocation (see kill and rotateFrom).
const tombstoneTTL = 30 * time.Second

// SessionInfo describes one of a user's sessions without its bearer token,
// so it is safe to show in a page ("your devices").
type SessionInfo struct {
	// Handle is the session's public identifier; pass it to
	// DeleteSessionByHandle to end the session.
	Handle string `json:"handle"`
	// CreatedAt is when the session was created (login).
	CreatedAt time.Time `json:"createdAt"`
	// LastSeen is when the session was last active, accurate to the refresh
	// interval (WithRefreshInterval): the idle deadline is the only activity
	// record, which keeps reads free of writes.
	LastSeen time.Time `json:"lastSeen"`
	// ExpiresAt is the session's current idle deadline.
	ExpiresAt time.Time `json:"expiresAt"`
	// AbsoluteExpiresAt is the session's absolute deadline.
	AbsoluteExpiresAt time.Time `json:"absoluteExpiresAt"`
}

// The user index.
//
// Each user with sessions has one KindIndex record under a key derived
// from the user ID. It lists the user's sessions (stores.SessionRef), the
// oldest first, and lives as long as the longest-lived of them. Every
// change is an atomic Update of that one record, so the index needs
// nothing from a store beyond the stores.Store contract, and each
// operation touches one key (Redis Cluster needs no hash tags).
//
// Entries are added before their session is stored, and a revocation takes
// entries out of the index before it ends their sessions, so no session
// escapes a revocation that runs concurrently with its creation or
// rotation (see kill). Entries are removed when their session is deleted;
// sessions that end by idling out are found, and their entries dropped,
// when the cap is reached or when the index is listed.

// userKey returns the store key of userID's index record. The "\x00user\x00"
// prefix keeps it apart from session keys, whose inputs are 43-character IDs.
func (m *Manager) userKey(userID string) stores.Key {
	return m.hash.key("\x00user\x00" + userID)
}

// indexRecord builds a user's index record; it lives as long as the
// longest-lived of its sessions, or, empty, for tombstoneTTL from now.
func (m *Manager) indexRecord(userID string, refs []stores.SessionRef) *stores.Record {
	rec := &stores.Record{Kind: stores.KindIndex, UserID: userID, Sessions: refs}
	for _, r := range refs {
		rec.AbsoluteExpiry = max(rec.AbsoluteExpiry, r.AbsoluteExpiry)
	}
	if len(refs) == 0 {
		// An empty index lingers briefly, which tells a rotation in
		// flight that its entry was taken (see addPending).
		rec.AbsoluteExpiry = m.now().Add(tombstoneTTL).UnixNano()
	}
	return rec
}

// updateIndex applies change to userID's index atomically. change gets the
// current entries, which it must not modify, and returns the next ones.
func (m *Manager) updateIndex(ctx context.Context, userID string, change func(now time.Time, refs []stores.SessionRef) ([]stores.SessionRef, error)) error {
	return m.store.Update(ctx, m.userKey(userID), func(cur stores.Item) (*stores.Record, time.Time, error) {
		if cur.Record.Kind != stores.KindIndex {
			return nil, time.Time{}, fmt.Errorf("ginsession: user index holds a %s record", cur.Record.Kind)
		}
		refs, err := change(m.now(), cur.Record.Sessions)
		if err != nil {
			return nil, time.Time{}, err
		}
		next := m.indexRecord(userID, refs)
		return next, time.Unix(0, next.AbsoluteExpiry), nil
	})
}

// register adds ref to userID's index record, creating the record if need
// be, and returns the entries the index then holds. An entry with the
// handle replace, if not empty, is dropped in the same write: Login uses
// it when the session it replaces belongs to the same user.
//
// It tries the cheaper operation first: adding a new index for a user
// without one (one command on memcached), or updating the index of a user
// known to have one (see indexHints), which saves a failing add.
func (m *Manager) register(ctx context.Context, userID string, ref stores.SessionRef, replace string) ([]stores.SessionRef, error) {
	ukey := m.userKey(userID)
	rec := m.indexRecord(userID, []stores.SessionRef{ref})
	tryAdd := replace == "" && !m.hints.has(ukey)
	for range 8 {
		if tryAdd {
			err := m.store.Add(ctx, ukey, rec, time.Unix(0, rec.AbsoluteExpiry))
			if !errors.Is(err, stores.ErrExists) {
				if err == nil {
					m.hints.add(ukey)
				}
				return rec.Sessions, err
			}
		}
		var refs []stores.SessionRef
		err := m.updateIndex(ctx, userID, func(now time.Time, cur []stores.SessionRef) ([]stores.SessionRef, error) {
			refs = make([]stores.SessionRef, 0, len(cur)+1)
			for _, r := range cur {
				if now.UnixNano() < r.AbsoluteExpiry && (replace == "" || r.Handle != replace) {
					refs = append(refs, r)
				}
			}
			refs = append(refs, ref)
			return refs, nil
		})
		if !errors.Is(err, stores.ErrNotFound) {
			if err == nil {
				m.hints.add(ukey)
			}
			return refs, err
		}
		// The index expired or was removed: create it.
		m.hints.remove(ukey)
		tryAdd = true
	}
	return nil, stores.ErrConflict
}

// enforceCap ends userID's oldest sessions while the user holds more than
// WithMaxSessionsPerUser live ones, never the session under keep, which
// was just created; refs are the index's entries as its registration left
// them. Entries whose recorded idle deadline has passed are checked first:
// those whose session has ended are dropped without ending anything, so
// that only live sessions count.
func (m *Manager) enforceCap(ctx context.Context, userID string, keep stores.Key, refs []stores.SessionRef) error {
	now := m.now()
	dead := map[stores.Key]bool{}
	for _, r := range refs {
		if r.Key == keep || now.UnixNano() < r.ExpiresAt {
			continue // live unless deleted, and deletions remove their entry
		}
		_, alive, err := m.refInfo(ctx, r, now)
		if err != nil {
			return m.storeErr("enforce session cap", err)
		}
		if !alive {
			dead[r.Key] = true
		}
	}
	if len(refs)-len(dead) <= m.cfg.maxPerUser {
		// Dead entries alone brought the user under the cap; they are
		// dropped when the index is next written.
		return nil
	}
	var victims []stores.SessionRef
	err := m.updateIndex(ctx, userID, func(now time.Time, cur []stores.SessionRef) ([]stores.SessionRef, error) {
		victims = victims[:0]
		refs := make([]stores.SessionRef, 0, len(cur))
		for _, r := range cur {
			if !dead[r.Key] && now.UnixNano() < r.AbsoluteExpiry {
				refs = append(refs, r)
			}
		}
		over := len(refs) - m.cfg.maxPerUser
		kept := refs[:0]
		for _, r := range refs {
			if over > 0 && r.Key != keep {
				victims = append(victims, r)
				over--
				continue
			}
			kept = append(kept, r)
		}
		return kept, nil
	})
	if err != nil {
		return m.storeErr("enforce session cap", err)
	}
	for _, r := range victims {
		if err := m.killRef(ctx, r); err != nil {
			return m.storeErr("enforce session cap", err)
		}
	}
	return nil
}

// indexHints remembers, in process, users whose index exists, so that
// their logins update it at once instead of trying to add it first. A
// wrong hint costs one store operation, never correctness. It holds at most
// about hintShards*hintsPerShard users, forgetting a shard's worth when
// full. It is safe for concurrent use; the zero value is ready.
type indexHints struct {
	shards [hintShards]hintShard
}

type hintShard struct {
	mu sync.Mutex
	m  map[stores.Key]struct{} // guarded by mu
}

const (
	hintShards    = 16
	hintsPerShard = 4096
)

func (h *indexHints) shard(k stores.Key) *hintShard {
	return &h.shards[k[0]%hintShards]
}

func (h *indexHints) has(k stores.Key) bool {
	sh := h.shard(k)
	sh.mu.Lock()
	_, ok := sh.m[k]
	sh.mu.Unlock()
	return ok
}

func (h *indexHints) add(k stores.Key) {
	sh := h.shard(k)
	sh.mu.Lock()
	if sh.m == nil || len(sh.m) >= hintsPerShard {
		sh.m = make(map[stores.Key]struct{})
	}
	sh.m[k] = struct{}{}
	sh.mu.Unlock()
}

func (h *indexHints) remove(k stores.Key) {
	sh := h.shard(k)
	sh.mu.Lock()
	delete(sh.m, k)
	sh.mu.Unlock()
}

// refInfo reports whether the session of index entry r is live, and
// describes it if so. It looks under the entry's key, following a
// grace-period stub, then under its pending keys.
func (m *Manager) refInfo(ctx context.Context, r stores.SessionRef, now time.Time) (SessionInfo, bool, error) {
	for _, key := range append([]stores.Key{r.Key}, r.Pending...) {
		it, err := m.store.Get(ctx, key)
		if err == nil && it.Record.Kind == stores.KindForward {
			it, err = m.store.Get(ctx, it.Record.Successor)
		}
		if errors.Is(err, stores.ErrNotFound) {
			continue
		}
		if err != nil {
			return SessionInfo{}, false, err
		}
		rec := it.Record
		if rec.Kind != stores.KindSession || rec.Handle != r.Handle || !alive(rec, now) {
			continue
		}
		created, abs := time.Unix(0, rec.CreatedAt).In(m.loc), time.Unix(0, rec.AbsoluteExpiry).In(m.loc)
		exp := minTime(it.ExpiresAt.In(m.loc), abs)
		seen := exp.Add(-m.cfg.idle)
		if seen.Before(created) {
			seen = created
		}
		return SessionInfo{
			Handle:            rec.Handle,
			CreatedAt:         created,
			LastSeen:          seen,
			ExpiresAt:         exp,
			AbsoluteExpiresAt: abs,
		}, true, nil
	}
	return SessionInfo{}, false, nil
}

// kill ends the session stored under key for good. A plain delete could be
// undone by a creation or rotation that registered the key in the user's
// index just before a revocation took the entry but has not yet stored the
// session: the store would land after the delete. So kill first adds a
// tombstone, which makes such an add fail (a creation then retries under a
// new ID, registered after the revocation; a rotation gives up); if the
// session exists, it deletes it.
func (m *Manager) kill(ctx context.Context, key stores.Key) error {
	err := m.store.Add(ctx, key, &stores.Record{Kind: stores.KindTombstone}, m.now().Add(tombstoneTTL))
	if errors.Is(err, stores.ErrExists) {
		err = m.store.Delete(ctx, key)
	}
	return err
}

// killRef ends the session of index entry r under its key and under the
// keys of the rotations in progress.
func (m *Manager) killRef(ctx context.Context, r stores.SessionRef) error {
	errs := []error{m.kill(ctx, r.Key)}
	for _, k := range r.Pending {
		errs = append(errs, m.kill(ctx, k))
	}
	return errors.Join(errs...)
}

// DeleteUserSessions ends every session of userID ("log out everywhere"),
// for example after a password change or when an account is disabled.
// Sessions that requests are using at that moment stop working at once; an
// update in flight cannot bring one back, and a session being rotated ends
// under its old and its new ID. Once it returns, no session of the user
// created or rotated before the call is alive.
//
// It reads and clears the user's index in one atomic step, then ends each
// listed session: one or two store operations per session (at most
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
		if err := m.killRef(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ginsession: delete user sessions: %w", err)
	}
	return nil
}

// DeleteSessionByHandle ends the session of userID with the given public
// handle, as shown by ListUserSessions, under every ID it has (a rotation
// in progress included). It returns ErrNotFound if the user has no such
// session.
func (m *Manager) DeleteSessionByHandle(ctx context.Context, userID, handle string) error {
	refs, err := m.takeRefs(ctx, userID, func(r stores.SessionRef) bool { return r.Handle == handle })
	if err != nil {
		return fmt.Errorf("ginsession: delete session by handle: %w", err)
	}
	if len(refs) == 0 {
		return ErrNotFound
	}
	for _, r := range refs {
		if err := m.killRef(ctx, r); err != nil {
			return fmt.Errorf("ginsession: delete session by handle: %w", err)
		}
	}
	return nil
}

// takeRefs removes the entries matching take from userID's index and
// returns them. A missing index has nothing to take.
func (m *Manager) takeRefs(ctx context.Context, userID string, take func(stores.SessionRef) bool) ([]stores.SessionRef, error) {
	var taken []stores.SessionRef
	err := m.updateIndex(ctx, userID, func(_ time.Time, cur []stores.SessionRef) ([]stores.SessionRef, error) {
		taken = nil
		var kept []stores.SessionRef
		for _, r := range cur {
			if take(r) {
				taken = append(taken, r)
			} else {
				kept = append(kept, r)
			}
		}
		return kept, nil
	})
	if errors.Is(err, stores.ErrNotFound) {
		return nil, nil
	}
	return taken, err
}

// errNoEntry reports that a rotation found no index entry for its session:
// a revocation took it, so the session is ending.
var errNoEntry = fmt.Errorf("ginsession: session revoked: %w", ErrNotFound)

// addPending registers newKey as a rotation in progress of userID's
// session with the given handle. It fails with an error matching
// ErrNotFound when the index holds no entry for the session, which means
// that a revocation took it. A missing index (lost by the store, or expired
// after the revocation's linger) is created with the entry: the rotation
// then checks that the session is still alive when it retires the old key.
func (m *Manager) addPending(ctx context.Context, userID, handle string, newKey stores.Key) error {
	found := false
	err := m.updateIndex(ctx, userID, func(_ time.Time, cur []stores.SessionRef) ([]stores.SessionRef, error) {
		refs := slices.Clone(cur)
		for i := range refs {
			if refs[i].Handle == handle {
				refs[i].Pending = append(slices.Clone(refs[i].Pending), newKey)
				found = true
				return refs, nil
			}
		}
		return nil, errNoEntry
	})
	if !errors.Is(err, stores.ErrNotFound) || found {
		return err
	}
	return errNoEntry
}

// dropPending unregisters a rotation in progress that gave up.
func (m *Manager) dropPending(ctx context.Context, userID, handle string, key stores.Key) error {
	return m.editRef(ctx, userID, handle, func(r *stores.SessionRef) {
		r.Pending = slices.DeleteFunc(slices.Clone(r.Pending), func(k stores.Key) bool { return k == key })
	})
}

// commitPending makes newKey the key of userID's session with the given
// handle, once the rotation to it has retired the old key.
func (m *Manager) commitPending(ctx context.Context, userID, handle string, newKey stores.Key, expiresAt time.Time) error {
	return m.editRef(ctx, userID, handle, func(r *stores.SessionRef) {
		r.Key, r.ExpiresAt = newKey, expiresAt.UnixNano()
		r.Pending = slices.DeleteFunc(slices.Clone(r.Pending), func(k stores.Key) bool { return k == newKey })
		if len(r.Pending) == 0 {
			r.Pending = nil
		}
	})
}

// editRef applies edit to a copy of the entry with the given handle. A
// missing index or entry is left alone.
func (m *Manager) editRef(ctx context.Context, userID, handle string, edit func(r *stores.SessionRef)) error {
	err := m.updateIndex(ctx, userID, func(_ time.Time, cur []stores.SessionRef) ([]stores.SessionRef, error) {
		refs := slices.Clone(cur)
		for i := range refs {
			if refs[i].Handle == handle {
				edit(&refs[i])
			}
		}
		return refs, nil
	})
	if errors.Is(err, stores.ErrNotFound) {
		return nil
	}
	return err
}

// ListUserSessions returns userID's live sessions, oldest first, without
// their bearer tokens: show them on a "your devices" page and revoke one
// with DeleteSessionByHandle. Sessions that have ended (logged out,
// deleted, idle or absolute expired) are never listed. It costs one store
// read per session in the index, and one write when it finds entries of
// ended sessions, which it drops.
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
	dead := map[stores.Key]bool{}
	for _, r := range item.Record.Sessions {
		if now.UnixNano() >= r.AbsoluteExpiry {
			continue
		}
		info, alive, err := m.refInfo(ctx, r, now)
		if err != nil {
			return nil, fmt.Errorf("ginsession: list user sessions: %w", err)
		}
		if !alive {
			dead[r.Key] = true
			continue
		}
		out = append(out, info)
	}
	if len(dead) > 0 {
		// Drop the entries of ended sessions, but only those past their
		// recorded idle deadline: an entry whose session is not stored
		// yet (a creation in progress) is younger than that. Tidying
		// only: a failure leaves entries that the next listing drops.
		_, _ = m.takeRefs(ctx, userID, func(r stores.SessionRef) bool { return dead[r.Key] && now.UnixNano() > r.ExpiresAt })
	}
	return out, nil
}
