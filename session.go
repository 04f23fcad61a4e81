package ginsession

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/securestack/ginsession/stores"
)

// Session is one user's session as seen by a request.
//
// A Session is a snapshot: its Data map is shared with the store and with
// concurrent requests, so it must be treated as read-only. Change session
// data with Update in a handler or Manager.UpdateSession, which merge
// atomically. A Session value is safe for concurrent reads.
//
// The ID is a bearer credential and never leaves the Session by accident:
// it is left out of its JSON encoding, of its slog value (LogValue) and of
// its fmt output (String, GoString), which show the Handle instead.
type Session struct {
	// ID is the session's bearer token, the value of the session cookie.
	// It is a secret: never log it, put it in a URL, or show it in a page
	// (show Handle instead).
	ID string `json:"-"`

	// Handle is a public, non-secret identifier of the session (a UUID),
	// stable across rotations. Use it to list and revoke sessions, for
	// example on a "your devices" page.
	Handle string `json:"handle"`

	// UserID is the application's identifier of the session's user, as
	// given to CreateSession or Login. Empty for anonymous sessions.
	UserID string `json:"userId"`

	// Data is the session's key-value data, read-only (see the type doc).
	Data map[string]any `json:"data"`

	// CreatedAt is when the session was created. Rotation keeps it.
	CreatedAt time.Time `json:"createdAt"`

	// ExpiresAt is the idle deadline: the session ends then unless a
	// request or RefreshSession extends it. With the memcached store it is
	// a lower bound ("at least until"), as memcached does not report an
	// item's remaining lifetime.
	ExpiresAt time.Time `json:"expiresAt"`

	// AbsoluteExpiresAt is the deadline after which the session ends
	// whatever its activity. Refresh and rotation never move it.
	AbsoluteExpiresAt time.Time `json:"absoluteExpiresAt"`

	// Persistent reports that the session's cookie outlives the browser
	// session ("remember me"), with a Max-Age reaching AbsoluteExpiresAt.
	Persistent bool `json:"persistent"`

	key       stores.Key
	renewedAt time.Time
	forwarded bool        // loaded through a rotation grace-period stub
	item      stores.Item // the store item the session was loaded from
}

// Get returns the value stored under key and whether it was present. The
// value is shared with the store: read it, never modify it (the typed
// getters return copies of slices and maps).
func (s *Session) Get(key string) (any, bool) {
	v, ok := s.Data[key]
	return v, ok
}

// Exists reports whether the session's data holds key.
func (s *Session) Exists(key string) bool {
	_, ok := s.Data[key]
	return ok
}

// Keys returns the keys of the session's data, sorted.
func (s *Session) Keys() []string {
	return slices.Sorted(maps.Keys(s.Data))
}

// Value returns the value stored under key as a T: the zero T when the key
// is missing or holds a value of another type (an int is not an int64).
// Slices and maps come back as copies, which the caller may modify. T is
// any type listed in stores.CheckValue.
//
//	n := ginsession.Value[int](s, "visits")
func Value[T any](s *Session, key string) T {
	v, _ := Lookup[T](s, key)
	return v
}

// Lookup is Value that also reports whether key held a T.
func Lookup[T any](s *Session, key string) (T, bool) {
	raw := s.Data[key]
	v, ok := raw.(T)
	if !ok {
		var zero T
		return zero, false
	}
	switch raw.(type) {
	case []byte, []string, []int, []any, map[string]string, map[string]any:
		// Mutable: hand out a copy. Other values are returned as they
		// are, without boxing them again.
		v = stores.CloneValue(raw).(T)
	}
	return v, true
}

// GetString returns the string stored under key, or "" if the key is
// missing or holds another type.
func (s *Session) GetString(key string) string { return Value[string](s, key) }

// GetBool returns the bool stored under key, or false if the key is missing
// or holds another type.
func (s *Session) GetBool(key string) bool { return Value[bool](s, key) }

// GetInt returns the int stored under key, or 0 if the key is missing or
// holds another type.
func (s *Session) GetInt(key string) int { return Value[int](s, key) }

// GetInt64 returns the int64 stored under key, or 0 if the key is missing
// or holds another type.
func (s *Session) GetInt64(key string) int64 { return Value[int64](s, key) }

// GetFloat64 returns the float64 stored under key, or 0 if the key is
// missing or holds another type.
func (s *Session) GetFloat64(key string) float64 { return Value[float64](s, key) }

// GetBytes returns a copy of the []byte stored under key, or nil if the key
// is missing or holds another type.
func (s *Session) GetBytes(key string) []byte { return Value[[]byte](s, key) }

// GetTime returns the time.Time stored under key, or the zero time if the
// key is missing or holds another type.
func (s *Session) GetTime(key string) time.Time { return Value[time.Time](s, key) }

// GetDuration returns the time.Duration stored under key, or 0 if the key
// is missing or holds another type.
func (s *Session) GetDuration(key string) time.Duration { return Value[time.Duration](s, key) }

// GetStrings returns a copy of the []string stored under key, or nil if the
// key is missing or holds another type.
func (s *Session) GetStrings(key string) []string { return Value[[]string](s, key) }

// LogValue implements slog.LogValuer: a session logs as its handle, user
// and deadlines, never its ID or data.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("handle", s.Handle),
		slog.String("user", s.UserID),
		slog.Time("expires", s.ExpiresAt),
		slog.Time("absolute_expires", s.AbsoluteExpiresAt),
	)
}

// String describes the session by its handle and user, never its ID. A
// nil *Session prints as <nil>.
func (s Session) String() string {
	return fmt.Sprintf("session %s of user %q", s.Handle, s.UserID)
}

// GoString is String, so that %#v does not print the ID either.
func (s Session) GoString() string { return s.String() }

// csrfSecret returns the session's secret, zero for sessions stored before
// sessions had one.
func (s *Session) csrfSecret() [stores.SecretSize]byte {
	if s.item.Record == nil {
		return [stores.SecretSize]byte{}
	}
	return s.item.Record.Secret
}

// session returns the Session of item, stored under key, with the given
// ID. Its times are in the location of the Manager's clock.
func (m *Manager) session(id string, key stores.Key, item stores.Item) *Session {
	rec := item.Record
	abs := time.Unix(0, rec.AbsoluteExpiry).In(m.loc)
	return &Session{
		ID:                id,
		Handle:            rec.Handle,
		UserID:            rec.UserID,
		Data:              rec.Data,
		CreatedAt:         time.Unix(0, rec.CreatedAt).In(m.loc),
		ExpiresAt:         minTime(item.ExpiresAt.In(m.loc), abs),
		AbsoluteExpiresAt: abs,
		Persistent:        rec.Persistent,
		key:               key,
		renewedAt:         time.Unix(0, rec.RenewedAt).In(m.loc),
		item:              item,
	}
}
