package ginsession

import (
	"errors"
	"fmt"
	"time"

	"github.com/securestack/ginsession/stores"
)

// Errors returned by the Manager, matched with errors.Is. Errors from the
// store are wrapped, so errors.Is also matches the sentinels of package
// stores (for example stores.ErrUnavailable when memcached is down).
var (
	// ErrNotFound is returned for a session ID that is malformed, unknown,
	// deleted, or expired (idle or absolute). The cases are deliberately
	// indistinguishable to callers.
	ErrNotFound = errors.New("ginsession: session not found")

	// ErrRateLimited is returned by CreateSession (and Login) when the
	// creation limiter refuses. The concrete error is a *RateLimitError,
	// which tells when to retry.
	ErrRateLimited = errors.New("ginsession: rate limited")

	// ErrNoSession is returned by the Gin helpers (Rotate, Logout, Update)
	// when the request carries no live session.
	ErrNoSession = errors.New("ginsession: no session in request")

	// ErrNoManager is returned by the Gin helpers when the request did not
	// pass through the middleware (New or Manager.Middleware).
	ErrNoManager = errors.New("ginsession: no Manager in context; use the ginsession middleware")

	// ErrConflict is returned by UpdateSession when concurrent writers kept
	// the store from applying the change within its retry bound. Nothing
	// was written; the caller may retry.
	ErrConflict = stores.ErrConflict

	// ErrTooLarge is returned when a session's data exceeds the store's
	// item size limit. The stored session is left unchanged.
	ErrTooLarge = stores.ErrTooLarge
)

// RateLimitError is the concrete error behind ErrRateLimited. It matches
// ErrRateLimited with errors.Is and is retrieved with errors.As.
type RateLimitError struct {
	// RetryAfter is how long until the limiter admits the key again.
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("ginsession: rate limited; retry after %s", e.RetryAfter)
}

// Is reports whether target is ErrRateLimited.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }
