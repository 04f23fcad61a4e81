package ginsession

import (
	"time"

	"github.com/securestack/ginsession/stores"
)

// Session is one user's session as seen by a request.
//
// A Session is a snapshot: its Data map is shared with the store and with
// concurrent requests, so it must be treated as read-only. Change session
// data with Manager.UpdateSession, which merges atomically. A Session value
// is safe for concurrent reads.
type Session struct {
	// ID is the session's bearer token, the value of the session cookie.
	// It is a secret: never log it, put it in a URL, or show it in a page
	// (show Handle instead).
	ID string

	// Handle is a public, non-secret identifier of the session (a UUID),
	// stable across rotations. Use it to list and revoke sessions, for
	// example on a "your devices" page.
	Handle string

	// UserID is the application's identifier of the session's user, as
	// given to CreateSession or Login. Empty for anonymous sessions.
	UserID string

	// Data is the session's key-value data, read-only (see the type doc).
	Data map[string]any

	// CreatedAt is when the session was created. Rotation keeps it.
	CreatedAt time.Time

	// ExpiresAt is the idle deadline: the session ends then unless a
	// request or RefreshSession extends it. With the memcached store it is
	// a lower bound ("at least until"), as memcached does not report an
	// item's remaining lifetime.
	ExpiresAt time.Time

	// AbsoluteExpiresAt is the deadline after which the session ends
	// whatever its activity. Refresh and rotation never move it.
	AbsoluteExpiresAt time.Time

	key       stores.Key
	renewedAt time.Time
	forwarded bool        // loaded through a rotation grace-period stub
	item      stores.Item // the store item the session was loaded from
}

// Get returns the value stored under key and whether it was present.
func (s *Session) Get(key string) (any, bool) {
	v, ok := s.Data[key]
	return v, ok
}

// GetString returns the string stored under key, or "" if the key is
// missing or holds another type.
func (s *Session) GetString(key string) string {
	v, _ := s.Data[key].(string)
	return v
}

func newSession(id string, key stores.Key, rec *stores.Record, expiresAt time.Time) *Session {
	if expiresAt.After(rec.AbsoluteExpiry) {
		expiresAt = rec.AbsoluteExpiry
	}
	return &Session{
		ID:                id,
		Handle:            rec.Handle,
		UserID:            rec.UserID,
		Data:              rec.Data,
		CreatedAt:         rec.CreatedAt,
		ExpiresAt:         expiresAt,
		AbsoluteExpiresAt: rec.AbsoluteExpiry,
		key:               key,
		renewedAt:         rec.RenewedAt,
	}
}
