// Package stores defines the contract between ginsession's Manager and the
// places where sessions live.
//
// A Store is a small key-value primitive with expiry and atomic
// read-modify-write. The Manager builds every session feature (sliding and
// absolute expiry, rotation, atomic merges) on these few operations, so a new
// backend gets all of them by implementing Store and passing the conformance
// suite in package storetest.
//
// Stores never see a session ID. They are addressed by a Key, a 32-byte
// digest of the ID computed by the Manager, so a dump of a store (or its
// logs) cannot be replayed as a session cookie.
package stores

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"time"
)

// Errors returned by stores. Implementations return these (possibly wrapped
// with %w) so that callers can match them with errors.Is.
var (
	// ErrNotFound is returned when no live item exists for a key: it was
	// never written, it was deleted, or it expired.
	ErrNotFound = errors.New("stores: not found")

	// ErrExists is returned by Add when a live item already exists for the key.
	ErrExists = errors.New("stores: key already exists")

	// ErrConflict is returned by Update when the store could not apply the
	// change atomically within its retry bound because of concurrent writers.
	ErrConflict = errors.New("stores: too many concurrent updates")

	// ErrTooLarge is returned when an encoded record exceeds the store's
	// item size limit. The stored item, if any, is left unchanged.
	ErrTooLarge = errors.New("stores: record too large")

	// ErrUnavailable is returned (wrapped around the cause) when the
	// backend cannot be reached: a network error, a timeout, a server that
	// is down. It lets callers tell "store down" from "not found".
	ErrUnavailable = errors.New("stores: store unavailable")

	// ErrClosed is returned by any operation on a store after Close.
	ErrClosed = errors.New("stores: store closed")
)

// KeySize is the length of a Key in bytes.
const KeySize = 32

// Key addresses one item in a store. It is a digest of a secret (the
// Manager uses SHA-256 or HMAC-SHA-256 of the session ID), never the secret
// itself.
type Key [KeySize]byte

// String returns the key in unpadded base64url form (43 characters), which
// is safe for logs and for memcached keys.
func (k Key) String() string {
	return base64.RawURLEncoding.EncodeToString(k[:])
}

// Kind tells what a Record is. The Manager writes four kinds of records
// under keys of the same shape; stores keep the kind as they keep any
// other field and never interpret it.
type Kind uint8

const (
	// KindSession is a live session: user, data, deadlines and secrets.
	KindSession Kind = iota + 1

	// KindForward is a forwarding stub left by a rotation with a grace
	// period: the session now lives under Successor. A stub carries the
	// session's UserID and AbsoluteExpiry and nothing else.
	KindForward

	// KindIndex is a user's index: one SessionRef per session of the user
	// (see the Manager's ListUserSessions). It carries UserID, Sessions
	// and the AbsoluteExpiry of its longest-lived session.
	KindIndex

	// KindTombstone blocks a revoked session's key for a short while, so
	// that a creation racing the revocation cannot add the session after
	// the revocation deleted it. It carries nothing.
	KindTombstone
)

// String returns the kind's name, such as "session".
func (k Kind) String() string {
	switch k {
	case KindSession:
		return "session"
	case KindForward:
		return "forward"
	case KindIndex:
		return "index"
	case KindTombstone:
		return "tombstone"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// SecretSize is the length of a session's secret (Record.Secret) in bytes.
const SecretSize = 16

// Record is what a store keeps under a key: a session, a forwarding stub,
// a user's index or a tombstone, as Kind says. Each kind uses the fields
// its doc names; the others are zero. Its times are Unix nanoseconds,
// which keeps a record small and free of pointers the garbage collector
// would scan: the memory store holds millions of them.
//
// A Record is immutable once handed to a store: stores may share one
// Record between concurrent readers without copying, and writers build a
// new Record instead of modifying one. Data holds only the value types
// listed in CheckValue.
type Record struct {
	// Kind tells which of the four roles the record plays.
	Kind Kind

	// Persistent records that the session's cookie outlives the browser
	// session ("remember me"), so that rotations keep the choice.
	Persistent bool

	// Secret is a random value of the session that its rotations keep;
	// the Manager derives the session's CSRF token from it. All zero in
	// records written before it existed.
	Secret [SecretSize]byte

	// UserID is the application's identifier of the session's user. It
	// may be empty for anonymous sessions.
	UserID string

	// Handle is a public, non-secret identifier of the session (a UUID),
	// safe to show in pages such as a "your devices" list.
	Handle string

	// Data is the session's key-value data. Treat it as read-only.
	Data map[string]any

	// CreatedAt is when the session was first created, in Unix
	// nanoseconds. Rotation keeps it.
	CreatedAt int64

	// AbsoluteExpiry is the deadline after which the session is dead
	// whatever its activity, in Unix nanoseconds. Rotation and refresh
	// never move it.
	AbsoluteExpiry int64

	// RenewedAt is when the session's ID was last issued (creation or
	// rotation), in Unix nanoseconds.
	RenewedAt int64

	// Successor is, in a KindForward stub, the key the session moved to.
	Successor Key

	// Forwards lists, in a KindSession record, the keys the session was
	// rotated away from whose grace-period stubs are still live. A
	// rotation points every one of them at the new key, so that any ID of
	// a chain of rotations resolves to the live session in one step.
	Forwards []Forward

	// Sessions is set only in a KindIndex record: one entry per session
	// of the user.
	Sessions []SessionRef
}

// Forward is one entry of Record.Forwards.
type Forward struct {
	Key   Key   // the stub's key
	Until int64 // when the stub expires, in Unix nanoseconds
}

// SessionRef is one entry of a user's index record.
type SessionRef struct {
	// Key is the session's current store key.
	Key Key
	// Pending lists the keys of rotations of the session in progress:
	// each is registered here before its record is written, so that a
	// revocation that takes the entry ends the rotated session as well.
	Pending []Key
	// Handle is the session's public handle.
	Handle string
	// CreatedAt is when the session was created, in Unix nanoseconds.
	CreatedAt int64
	// ExpiresAt is the session's idle deadline as last written to the
	// index (at creation or rotation), in Unix nanoseconds: the session
	// lives at least until then unless it is deleted.
	ExpiresAt int64
	// AbsoluteExpiry is when the session ends at the latest, in Unix
	// nanoseconds.
	AbsoluteExpiry int64
}

// Item is what Get returns: a shared, read-only Record and what the store
// knows of its expiry.
type Item struct {
	// Record is the stored record. It is shared: never modify it.
	Record *Record

	// ExpiresAt is the item's expiry as known to the store. Stores with an
	// exact clock (memory) report it exactly; stores that cannot read an
	// item's remaining lifetime (memcached) report a time before which the
	// item will not expire by age: "at least until".
	ExpiresAt time.Time

	// Version identifies this state of the item for stores that implement
	// UpdaterFrom (memcached: the item's CAS value). Zero means unknown.
	Version uint64
}

// UpdateFunc computes the next version of an item from the current one.
// It returns the new record and its new expiry; a nil record deletes the
// item. An error aborts the update and is returned by Update as is.
//
// Stores may call an UpdateFunc more than once (optimistic retries), so it
// must have no side effects and must not modify cur.Record.
type UpdateFunc func(cur Item) (next *Record, expiresAt time.Time, err error)

// UpdaterFrom is implemented by stores whose Update can start from an item
// the caller already read, saving a read: UpdateFrom applies fn to cur and
// writes the result only if the stored item is still at cur.Version;
// otherwise it proceeds as Update, reading the current item and calling fn
// again. The Manager uses it for updates made during a request, whose
// session was read by the middleware. It has the semantics and errors of
// Update.
type UpdaterFrom interface {
	UpdateFrom(ctx context.Context, key Key, cur Item, fn UpdateFunc) error
}

// Store is the contract every session store implements. All methods are
// safe for concurrent use, take a context first, and return the errors
// above (wrapped where useful), so that callers can rely on errors.Is.
//
// Expiry times are absolute. An item whose expiry has passed is gone: Get
// returns ErrNotFound for it, Add may replace it, Update and Touch return
// ErrNotFound. An expiry in the past or now means the item expires at once.
type Store interface {
	// Get returns the live item stored under key, or ErrNotFound.
	// The returned Record is shared and must not be modified.
	Get(ctx context.Context, key Key) (Item, error)

	// Add stores rec under key with the given expiry only if no live item
	// exists there; otherwise it returns ErrExists and changes nothing.
	// The store takes ownership of rec: the caller must not modify it.
	Add(ctx context.Context, key Key, rec *Record, expiresAt time.Time) error

	// Update atomically replaces the live item under key with the result
	// of fn applied to it. If no live item exists it returns ErrNotFound
	// and never creates one, so an item deleted while an update is in
	// flight stays deleted. If fn returns a nil record the item is
	// deleted. Stores that retry optimistically return ErrConflict after
	// a bounded number of attempts.
	Update(ctx context.Context, key Key, fn UpdateFunc) error

	// Delete removes the item under key. Deleting a missing key is not an
	// error.
	Delete(ctx context.Context, key Key) error

	// Touch sets a new expiry for the live item under key without
	// rewriting its record, or returns ErrNotFound.
	Touch(ctx context.Context, key Key, expiresAt time.Time) error

	// Close releases the store's resources (background goroutines,
	// connections it owns). It is idempotent; operations after Close
	// return ErrClosed.
	Close() error
}
