package ginsession

import (
	"github.com/gin-gonic/gin"
)

// Context keys under which the middleware stores the session and the
// Manager.
const (
	// SessionKey holds the request's *Session when it has a live one:
	// c.MustGet(SessionKey).(*Session). Behind Required, MustGet is safe.
	SessionKey = "session"
	// ManagerKey holds the *Manager that served the request; it is always set.
	ManagerKey = "sessionManager"
)

// New returns the Gin middleware that loads each request's session:
//
//  1. It sets ManagerKey to m.
//  2. It reads the session cookie. A value that is not a well-formed ID is
//     treated as no session, without any store call, and the cookie is
//     cleared. Such cookies are counted (Manager.Stats), not logged.
//  3. It looks the session up. A missing or expired session is no session,
//     and the stale cookie is cleared. A store error goes to the error
//     handler (WithErrorHandler; by default 503).
//  4. If the session is due for renewal (WithRenewalInterval) it rotates
//     its ID and sets the new cookie; else if the idle deadline has gone
//     stale by at least the refresh interval, it extends it with a store
//     touch. Most requests write nothing.
//  5. It sets SessionKey to the *Session and calls the next handler. Nothing
//     happens after the handler returns: cookies are only ever set by the
//     middleware and by Login, Logout and Rotate, before the response body
//     is written.
func New(m *Manager) gin.HandlerFunc {
	if m == nil {
		panic("ginsession.New expects a non-nil *Manager")
	}
	return m.handle
}
